"""Feeds what the nurse charts into the alarm engine: phases, RASS and distress, unassessed minutes.

The chart and the alarms stay independent; this is the one place they meet, used by the GUI
(headless ``record`` has no chart). The "minutes not charted" reminder goes through the alarm
engine only, so it shows in the one alarm bar and the one alarm log.
"""

from __future__ import annotations

import threading
from datetime import datetime

from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store.charting import MinuteEntry, PhaseMarker


class ChartAlarmBridge:
    """Subscribes to a chart's writes and passes the clinically relevant ones to the alarms."""

    def __init__(self, chart: SessionChart, alarms: AlarmMonitor) -> None:
        self.chart = chart
        self.alarms = alarms
        self._lock = threading.Lock()
        self._checked: tuple[int | None, int] | None = None  # (minute, streak) last passed on
        chart.subscribe(self._written)
        if chart.state is not None:
            alarms.set_phase(chart.state)

    def _written(self, row: object) -> None:
        if isinstance(row, PhaseMarker):
            state = self.chart.state  # after an undo, the phase before the voided marker
            if state is not None:
                self.alarms.set_phase(state)
            self.update(force=True)
        elif isinstance(row, MinuteEntry):
            self.alarms.on_minute_entry(rass=row.rass, distress=row.distress)
            self.update(force=True)

    def update(self, now: datetime | None = None, *, force: bool = False) -> int:
        """Pass on the unassessed streak when the minute changed (call it about once a second).

        Returns the streak. Cheap when nothing changed: the chart is only asked once a minute.
        """
        minute = self.chart.current_minute(now)
        with self._lock:
            if not force and self._checked is not None and self._checked[0] == minute:
                return self._checked[1]
            streak = self.chart.unassessed_streak(now)
            changed = self._checked is None or self._checked[1] != streak
            self._checked = (minute, streak)
        if changed:
            self.alarms.on_unassessed_streak(streak)
        return streak
