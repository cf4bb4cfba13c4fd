"""The charting panel under the trends: phase bar, then tabs for check-in, minute log, notes,
CADSS-6, discharge, the REMS summary and sign-off, all over one ``SessionChart``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QTabWidget, QVBoxLayout, QWidget

from infusion_monitor.clock import Clock
from infusion_monitor.session.auth import Action, Principal, denial_message
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.ui.qt_cadss import CadssPanel
from infusion_monitor.ui.qt_checkin import CheckInForm
from infusion_monitor.ui.qt_discharge import DischargePanel
from infusion_monitor.ui.qt_minute_log import MinuteLog
from infusion_monitor.ui.qt_notes import NotesPanel
from infusion_monitor.ui.qt_phase_bar import MARKER_LABELS, BaselinePanel, PhaseBar
from infusion_monitor.ui.qt_rems import RemsPanel
from infusion_monitor.ui.qt_signoff import SignOffPanel

log = logging.getLogger(__name__)
REFRESH_MS = 500  # rows, prompt, reminder and checks; charting is minute-paced
TABS = ("Check-in", "Minute log", "Notes", "CADSS-6", "Discharge", "Summary", "Sign-off")


def chart_for_recording(recording: Any, clock: Clock) -> SessionChart | None:
    """The chart of a recording's session when it has a database (``LiveRecording`` does)."""
    database = getattr(recording, "database", None)
    if database is None:
        return None
    return SessionChart.open(database, recording.session_id, clock,
                             access=getattr(recording, "access", None))


class ChartingPanel(QWidget):
    """Every charting widget of one session; ``markers_changed`` feeds the trend charts."""

    markers_changed = Signal(object)  # list[(t, label, voided)]

    def __init__(self, clock: Clock, user: Callable[[], str],
                 parent: QWidget | None = None, role: Callable[[], str] | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self._user = user
        self.chart: SessionChart | None = None
        self.phase_bar = PhaseBar(self.by)
        self.checkin = CheckInForm(user, default_nurse=user())
        self.baseline = BaselinePanel()
        self.minutes = MinuteLog(self.by)
        self.notes = NotesPanel(self.by)
        self.cadss = CadssPanel(self.by)
        self.discharge = DischargePanel(self.by)
        self.rems = RemsPanel()
        # Who signs off: the window's user_role until users and roles exist.
        self.signoff = SignOffPanel(clock, user, role or (
            lambda: str(getattr(self.window(), "user_role", ""))))
        checkin_tab = QWidget()
        row = QHBoxLayout(checkin_tab)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.checkin, 3)
        row.addWidget(self.baseline, 2)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for widget, title in zip((checkin_tab, self.minutes, self.notes, self.cadss,
                                  self.discharge, self.rems, self.signoff), TABS, strict=True):
            self.tabs.addTab(widget, title)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.phase_bar)
        column.addWidget(self.tabs, 1)

        self.phase_bar.changed.connect(self._phase_changed)
        self.phase_bar.discharge_requested.connect(lambda: self.show_tab("Discharge"))
        self.phase_bar.advisory.connect(self.baseline.show_advisory)
        self.checkin.checked_in.connect(self._phase_changed)
        self.discharge.discharged.connect(self._phase_changed)
        self.signoff.signed.connect(self._phase_changed)
        for signal in (self.minutes.charted, self.notes.written, self.cadss.written):
            signal.connect(self.refresh)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def by(self) -> str:
        """Who signs: the check-in nurse, else the logged-in user."""
        details = None if self.chart is None else self.chart.check_in_details()
        return details.nurse if details is not None else self._user()

    def set_chart(self, chart: SessionChart | None,
                  bridge: ChartAlarmBridge | None = None) -> None:
        """Show ``chart``; ``bridge`` (when the session has alarms) carries the phases, scores
        and the unassessed-minutes reminder to the alarm engine."""
        self.chart = chart
        self.minutes.bridge = bridge
        for widget in (self.phase_bar, self.checkin, self.minutes, self.notes, self.cadss,
                       self.discharge, self.rems, self.signoff):
            widget.set_chart(chart)
        self._phase_changed()

    def set_permissions(self, principal: Principal | None, enforcing: bool) -> None:
        """Disable the charting forms for a user who may not chart, saying who may (the core
        refuses them anyway); the minute log stays readable and shows the core's refusal."""
        no_chart = None
        if enforcing and (principal is None or not principal.may(Action.CHART)):
            no_chart = denial_message(principal, Action.CHART)
        for widget in (self.phase_bar, self.checkin, self.notes, self.cadss, self.discharge):
            widget.setEnabled(no_chart is None)
            widget.setToolTip(no_chart or "")
        self.minutes.setToolTip(no_chart or "")
        self.signoff.set_permissions()

    def show_tab(self, title: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(title))

    def stop(self) -> None:
        self._timer.stop()

    def refresh(self, now: datetime | None = None) -> None:
        """Timer tick: everything that moves with time; hidden heavy panels are skipped."""
        chart = self.chart
        now = now or self._clock.now()
        self.phase_bar.refresh()
        self.minutes.refresh(now)
        self.baseline.refresh(chart, now)
        current = self.tabs.currentWidget()
        if current is self.discharge:
            self.discharge.refresh(now)
        if current is self.rems:
            self.rems.refresh(now)
        if current is self.signoff:
            self.signoff.refresh()
        self.notes.refresh()
        self.cadss.refresh()

    def markers(self) -> list[tuple[datetime, str, bool]]:
        if self.chart is None:
            return []
        return [(m.t, MARKER_LABELS[m.phase], m.voided) for m in self.chart.markers()]

    def _phase_changed(self) -> None:
        self.phase_bar.refresh()
        self.checkin.refresh()
        self.discharge.refresh()
        self.rems.refresh()
        self.signoff.refresh()
        self.refresh()
        self.markers_changed.emit(self.markers())
