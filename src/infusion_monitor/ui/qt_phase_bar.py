"""The session's phase and its ONE next action, confirmed by a second press; undo with a reason.

No modal dialog: the first press arms the button ("Confirm: Start infusion"), a second press
within ``CONFIRM_MS`` does it, anything else (Cancel, the timeout) disarms it. Undoing the last
phase asks a reason inline and writes an amendment that voids the marker (both stay visible).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.checks import Advisory, Baseline
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_log import coloured
from infusion_monitor.ui.qt_minute_model import hhmm

CONFIRM_MS = 5000

#: The next deliberate action from each phase (None before check-in: the form does it).
NEXT_ACTION: dict[Phase | None, str | None] = {
    None: None,
    Phase.CHECK_IN: "Start baseline",
    Phase.BASELINE: "Start infusion",
    Phase.INFUSION: "End infusion",
    Phase.OBSERVATION: "Discharge…",
    Phase.DISCHARGED: "Close",
    Phase.CLOSED: None,
}

#: How a phase marker is labelled on the trend charts.
MARKER_LABELS = {
    # Short: the label is drawn rotated in the HR plot, which is about 100 px high at 1366×768.
    Phase.CHECK_IN: "Check-in", Phase.BASELINE: "Baseline", Phase.INFUSION: "Inf. start",
    Phase.OBSERVATION: "Inf. end", Phase.DISCHARGED: "Discharge", Phase.CLOSED: "Closed",
}


class PhaseBar(QFrame):
    """Current phase, the next action button, and "Undo last phase…"."""

    changed = Signal()  # a marker was written
    discharge_requested = Signal()  # "Discharge…": the discharge check panel does it
    advisory = Signal(object)  # an Advisory (baseline BP above 140/90)

    def __init__(self, by: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.phase_label = QLabel("No session")
        font = self.phase_label.font()
        font.setBold(True)
        font.setPixelSize(16)
        self.phase_label.setFont(font)
        self.action = QPushButton("")
        self.action.setObjectName("phaseAction")
        self.cancel = QPushButton("Cancel")
        self.undo = QPushButton("Undo last phase…")
        self.undo_reason = QLineEdit()
        self.undo_reason.setPlaceholderText("why undo this phase? (required)")
        self.undo_confirm = QPushButton("Undo phase")
        self.message = coloured(QLabel(""), theme.ALERT_RED)
        self.message.setWordWrap(True)
        self._armed = False
        self._disarm = QTimer(self)
        self._disarm.setSingleShot(True)
        self._disarm.setInterval(CONFIRM_MS)
        self._disarm.timeout.connect(self.disarm)

        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        row.addWidget(self.phase_label)
        row.addWidget(self.action)
        row.addWidget(self.cancel)
        row.addWidget(self.message, 1)
        row.addWidget(self.undo_reason, 1)
        row.addWidget(self.undo_confirm)
        row.addWidget(self.undo)
        self.action.clicked.connect(self.press)
        self.cancel.clicked.connect(self.disarm)
        self.undo.clicked.connect(self._open_undo)
        self.undo_confirm.clicked.connect(self.undo_last)
        self.undo_reason.returnPressed.connect(self.undo_last)
        self._close_undo()
        self.refresh()

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.disarm()
        self._close_undo()
        self.message.setText("")
        self.refresh()

    def refresh(self) -> None:
        chart = self.chart
        state = None if chart is None else chart.state
        if chart is None:
            self.phase_label.setText("No session")
        else:
            marker = chart.marker(state) if state is not None else None
            since = f" since {hhmm(marker.t)}" if marker is not None else ""
            self.phase_label.setText(
                f"Phase: {state.label}{since}" if state else "Phase: not checked in")
        action = NEXT_ACTION.get(state) if chart is not None else None
        if not self._armed:
            self.action.setText(action or ("Check in first" if chart else ""))
        self.action.setEnabled(action is not None)
        self.cancel.setVisible(self._armed)
        self.undo.setEnabled(chart is not None and state not in (None, Phase.CHECK_IN))

    # -- the next action --------------------------------------------------------------------
    def press(self) -> None:
        """First press arms, second press acts ("Discharge…" goes straight to its panel)."""
        chart = self.chart
        if chart is None:
            return
        action = NEXT_ACTION.get(chart.state)
        if action is None:
            return
        if action == "Discharge…":
            self.discharge_requested.emit()
            return
        if not self._armed:
            self._armed = True
            self.action.setText(f"Confirm: {action}")
            self.message.setText("")
            self._disarm.start()
            self.refresh()
            return
        self.disarm()
        self._act(chart)

    def disarm(self) -> None:
        self._armed = False
        self._disarm.stop()
        self.refresh()

    def _act(self, chart: SessionChart) -> None:
        by = self._by()
        state = chart.state
        try:
            if state is Phase.CHECK_IN:
                chart.start_baseline(by)
            elif state is Phase.BASELINE:
                advisory = chart.start_infusion(by)
                if advisory is not None:
                    self.advisory.emit(advisory)
            elif state is Phase.INFUSION:
                chart.end_infusion(by)
            elif state is Phase.DISCHARGED:
                chart.close(by)
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")
            return
        self.message.setText("")
        self.refresh()
        self.changed.emit()

    # -- undo -------------------------------------------------------------------------------
    def _open_undo(self) -> None:
        self.undo_reason.show()
        self.undo_confirm.show()
        self.undo_reason.setFocus()

    def _close_undo(self) -> None:
        self.undo_reason.clear()
        self.undo_reason.hide()
        self.undo_confirm.hide()

    def undo_last(self) -> None:
        chart = self.chart
        if chart is None or chart.state is None:
            return
        marker = chart.marker(chart.state)
        if marker is None:
            return
        try:
            chart.undo_phase(marker.id, self._by(), self.undo_reason.text())
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")  # the reason typed stays
            return
        self.message.setText(f"{marker.phase.label} undone (kept in the record as voided).")
        self._close_undo()
        self.refresh()
        self.changed.emit()


class BaselinePanel(QFrame):
    """The baseline as it stands (before infusion start) or as stored (after), with the
    low-priority "> 140/90: attending decides" warning."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("<b>Baseline</b>")
        self.nibp = QLabel("—")
        self.spo2 = QLabel("—")
        self.hr = QLabel("—")
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.warning = coloured(QLabel(""), theme.PRIORITY_COLOURS["low"])
        self.warning.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow(self.title)
        form.addRow("NIBP", self.nibp)
        form.addRow("SpO2", self.spo2)
        form.addRow("HR", self.hr)
        form.addRow(self.state)
        form.addRow(self.warning)

    def refresh(self, chart: SessionChart | None, now: datetime | None = None) -> None:
        if chart is None or chart.state is None:
            self.show_baseline(None, "Check the patient in, then start the baseline.")
            return
        stored = chart.baseline()
        if stored is not None:
            self.show_baseline(stored, f"Stored at infusion start ({hhmm(stored.t)}).")
        elif chart.state is Phase.BASELINE:
            current = chart.assess_baseline(now)
            self.show_baseline(current, "Ready: the infusion can start." if current.ready
                               else "Not ready: " + "; ".join(current.problems))
        else:
            self.show_baseline(None, "Start the baseline to assess it.")

    def show_baseline(self, base: Baseline | None, state: str) -> None:
        n = None if base is None else base.nibp
        self.nibp.setText("—" if n is None else f"{n.sys:.0f}/{n.dia:.0f} at {hhmm(n.t)}")
        self.spo2.setText("—" if base is None or base.spo2 is None else f"{base.spo2:g} %")
        self.hr.setText("—" if base is None or base.hr is None else f"{base.hr:g} /min")
        self.state.setText(state)
        if base is not None and base.bp_high and n is not None:
            self.warning.setText(f"* Low priority: baseline BP {n.sys:.0f}/{n.dia:.0f} is above "
                                 "140/90 — attending decides whether to proceed.")
        else:
            self.warning.setText("")

    def show_advisory(self, advisory: Advisory) -> None:
        self.warning.setText(f"* Low priority: {advisory.message}")
