"""CADSS-6 (items 1, 2, 6, 7, 15, 22; each 0–4) at baseline, about 40 min and before discharge."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.scales import CADSS6_ITEMS, CADSS_INTENSITY, CADSS_TIMEPOINTS
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_log import coloured
from infusion_monitor.ui.qt_minute_model import AMENDED, hhmm

TIMEPOINT_LABELS = {"baseline": "Baseline", "40min": "About 40 min",
                    "discharge": "Before discharge"}
ANCHORS = " · ".join(f"{a.score} {a.label}" for a in CADSS_INTENSITY.anchors)


class CadssPanel(QWidget):
    """Six items with a live total; recorded forms listed with their totals (optional form)."""

    written = Signal()

    def __init__(self, by: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.timepoint = QComboBox()
        for key in CADSS_TIMEPOINTS:
            self.timepoint.addItem(TIMEPOINT_LABELS[key], key)
        self.items: dict[int, QSpinBox] = {}
        form = QFormLayout()
        form.setVerticalSpacing(2)
        form.addRow("Time point", self.timepoint)
        for number, topic in CADSS6_ITEMS.items():
            spin = QSpinBox()
            spin.setRange(0, 4)
            spin.valueChanged.connect(self._total_changed)
            form.addRow(f"{number}. {topic}", spin)
            self.items[number] = spin
        self.total = QLabel("Total 0 / 24")
        form.addRow(self.total)
        form.addRow(coloured(QLabel(ANCHORS), theme.MUTED))
        record = QPushButton("Record CADSS-6")
        record.clicked.connect(self.record)
        self.message = coloured(QLabel(""), theme.ALERT_RED)
        self.message.setWordWrap(True)
        self.forms = QListWidget()
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(record)
        left.addWidget(self.message)
        left.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addLayout(left, 3)
        row.addWidget(self.forms, 2)

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.refresh()

    def scores(self) -> dict[int, int]:
        return {n: spin.value() for n, spin in self.items.items()}

    def _total_changed(self) -> None:
        self.total.setText(f"Total {sum(self.scores().values())} / 24")

    def refresh(self) -> None:
        chains = [] if self.chart is None else self.chart.cadss_forms()
        if self.forms.count() == len(chains):
            return
        self.forms.clear()
        for chain in chains:
            f = chain[-1]
            mark = f" {AMENDED}" if len(chain) > 1 else ""
            self.forms.addItem(f"{TIMEPOINT_LABELS.get(f.timepoint, f.timepoint)} "
                               f"{hhmm(f.t)}: total {f.total}{mark} ({f.entered_by})")

    def record(self) -> None:
        chart = self.chart
        if chart is None:
            self.message.setText("✖ no session: connect a monitor first")
            return
        try:
            chart.record_cadss(self.timepoint.currentData(), self.scores(), self._by())
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")
            return
        self.message.setText("")
        self.refresh()
        self.written.emit()
