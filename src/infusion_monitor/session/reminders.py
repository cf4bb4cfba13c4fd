"""The "minutes not charted" reminder: raised once per streak, recorded in the alarm log.

Rows follow the alarm log's vocabulary (store/alarm_log.py): "raised" with the text shown and
the streak length as value, then "ended" and "cleared" at the same time (it never latches).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from infusion_monitor.session.checks import Advisory
from infusion_monitor.store.charting import ChartStore

#: clinical.md: three consecutive unassessed minutes -> a low-priority reminder.
REMINDER_AFTER_MINUTES = 3


class ChartingReminder:
    """Tracks the reminder of one session; its state survives a restart through the log."""

    def __init__(self, store: ChartStore, session_id: int) -> None:
        self.store = store
        self.session_id = session_id
        self.active = _from_log(store, session_id)

    def update(self, minute: int | None, streak: int, now: datetime) -> Advisory | None:
        """Raise at ``streak`` >= 3 (once), end when it drops or charting ends (minute None)."""
        if self.active is None and minute is not None and streak >= REMINDER_AFTER_MINUTES:
            text = (f"{streak} minutes in a row not assessed (from minute {minute - streak}): "
                    "chart dissociation, RASS and distress, or a note saying why not")
            advisory = Advisory("charting_overdue", "low", text, now, str(uuid.uuid4()))
            self.store.record_reminder(self.session_id, alarm_uid=advisory.uid, event="raised",
                                       t=now, detail=text, value=float(streak))
            self.active = advisory
        elif self.active is not None and (minute is None or streak < REMINDER_AFTER_MINUTES):
            for event in ("ended", "cleared"):
                self.store.record_reminder(self.session_id, alarm_uid=self.active.uid,
                                           event=event, t=now)
            self.active = None
        return self.active


def _from_log(store: ChartStore, session_id: int) -> Advisory | None:
    """The reminder still raised in the alarm log, if any."""
    events = store.reminders(session_id)
    if not events or events[-1].event != "raised":
        return None
    last = events[-1]
    return Advisory("charting_overdue", "low", last.detail, last.t, last.alarm_uid)
