"""The Spravato REMS-style summary of the session, filled from the chart as it goes."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from infusion_monitor.session.checks import RemsSummary
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.minutes import NibpMeasurement
from infusion_monitor.ui.qt_minute_model import hhmm

FIELDS = (
    ("bp_before", "BP before dosing"),
    ("bp_40", "BP about 40 min after start"),
    ("bp_end", "BP at the end of monitoring"),
    ("ok_before", "Vitals acceptable before dosing"),
    ("ok_end", "Vitals acceptable before completion"),
    ("sedation", "Sedation (RASS ≤ −2)"),
    ("dissociation", "Dissociation (≥ 1)"),
    ("respiratory", "Respiratory depression"),
    ("minutes", "Total monitored minutes"),
    ("ready", "Ready to leave"),
)


def bp(m: NibpMeasurement | None) -> str:
    return "—" if m is None else f"{m.sys:.0f}/{m.dia:.0f} at {hhmm(m.t)}"


def yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def summary_texts(s: RemsSummary) -> dict[str, str]:
    """What each field shows."""
    return {
        "bp_before": bp(s.bp_before_dosing), "bp_40": bp(s.bp_about_40_min),
        "bp_end": bp(s.bp_at_end),
        "ok_before": yes_no(s.vitals_acceptable_before_dosing),
        "ok_end": yes_no(s.vitals_acceptable_before_completion),
        "sedation": yes_no(s.sedation) + (
            f" (lowest RASS {s.lowest_rass:+d})".replace("-", "−")
            if s.lowest_rass is not None else ""),
        "dissociation": yes_no(s.dissociation) + (
            f" (highest {s.highest_dissociation})" if s.highest_dissociation is not None else ""),
        "respiratory": yes_no(s.respiratory_depression) + (
            f" ({s.respiratory_detail})" if s.respiratory_depression else ""),
        "minutes": "—" if s.monitored_minutes is None else str(s.monitored_minutes),
        "ready": "—" if s.ready_to_leave is None else hhmm(s.ready_to_leave),
    }


class RemsPanel(QWidget):
    """Read-only: the REMS items as they stand."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart: SessionChart | None = None
        self.values: dict[str, QLabel] = {}
        form = QFormLayout(self)
        form.setVerticalSpacing(2)
        for key, label in FIELDS:
            value = QLabel("—")
            value.setWordWrap(True)
            form.addRow(label, value)
            self.values[key] = value

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.refresh()

    def refresh(self, now: datetime | None = None) -> None:
        if self.chart is None:
            for label in self.values.values():
                label.setText("—")
            return
        for key, text in summary_texts(self.chart.rems_summary(now)).items():
            self.values[key].setText(text)
