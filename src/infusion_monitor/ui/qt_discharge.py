"""The discharge check: each criterion met or not, with values; a reason is needed for any unmet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.checks import CheckItem, DischargeCheck
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_log import coloured
from infusion_monitor.ui.qt_minute_model import hhmm

MET, NOT_MET = "✔ met", "✖ NOT met"


class DischargePanel(QWidget):
    """Live criteria while observing; "Discharge" writes the check (and the reason, if needed)."""

    discharged = Signal()

    def __init__(self, by: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.check: DischargeCheck | None = None
        self.title = QLabel("<b>Discharge check</b>")
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(24)
        self.grid.setColumnStretch(4, 1)  # keep the four columns together on a wide screen
        self.rows: dict[str, tuple[QLabel, QLabel, QLabel, QLabel]] = {}
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("reason to discharge with a criterion not met "
                                       "(required only then)")
        self.button = QPushButton("Discharge")
        self.button.setObjectName("dischargeButton")
        self.button.clicked.connect(self.discharge)
        self.message = coloured(QLabel(""), theme.ALERT_RED)
        self.message.setWordWrap(True)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        action = QHBoxLayout()
        action.addWidget(self.reason, 1)
        action.addWidget(self.button)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 2, 4, 2)
        column.addWidget(self.title)
        column.addLayout(self.grid)
        column.addLayout(action)
        column.addWidget(self.message)
        column.addWidget(self.result)
        column.addStretch(1)

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.message.setText("")
        self.refresh()

    def refresh(self, now: datetime | None = None) -> None:
        chart = self.chart
        state = None if chart is None else chart.state
        marker = None if chart is None else chart.marker(Phase.DISCHARGED)
        if chart is not None and marker is not None:
            check = DischargeCheck.from_detail(marker.detail["check"])
            reason = marker.detail.get("reason")
            self.title.setText(f"<b>Discharged</b> at {hhmm(marker.t)} by {marker.entered_by}")
            self.result.setText(f"Reason for unmet criteria: {reason}" if reason else "")
        elif chart is not None and state in (Phase.INFUSION, Phase.OBSERVATION):
            check = chart.discharge_check(now)
            self.title.setText(f"<b>Discharge check</b> (as of {hhmm(check.t)})")
        else:
            check = None
            self.title.setText("<b>Discharge check</b> — available after infusion start")
        self.check = check
        self._show(check)
        self.button.setEnabled(state is Phase.OBSERVATION)
        self.reason.setEnabled(state is Phase.OBSERVATION)

    def _show(self, check: DischargeCheck | None) -> None:
        items: tuple[CheckItem, ...] = () if check is None else check.items
        for i, item in enumerate(items):
            labels = self.rows.get(item.name)
            if labels is None:
                labels = (QLabel(), QLabel(), QLabel(), QLabel())
                font = labels[1].font()
                font.setBold(True)
                labels[1].setFont(font)
                for col, label in enumerate(labels):
                    self.grid.addWidget(label, i, col)
                self.rows[item.name] = labels
            name, state, value, target = labels
            name.setText(item.label)
            state.setText(MET if item.met else NOT_MET)
            coloured(state, theme.OK_GREEN if item.met else theme.PRIORITY_COLOURS["low"])
            value.setText(item.value)
            target.setText(item.target)
        shown = {item.name for item in items}
        for key, labels in self.rows.items():
            for label in labels:
                label.setVisible(key in shown)

    def discharge(self) -> None:
        """Discharge now; unmet criteria without a reason are refused with the core's message."""
        chart = self.chart
        if chart is None:
            return
        try:
            chart.discharge(self._by(), self.reason.text() or None)
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")  # the reason typed so far stays
            return
        self.message.setText("")
        self.refresh()
        self.discharged.emit()
