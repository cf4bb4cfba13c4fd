"""The life of each alarm once raised: end, latch, acknowledge, escalate, pause, flag, respond.

``AlarmEngine`` decides *when* a condition starts and ends; the book keeps what follows from it
(semantics in ``session/alarms.py``). Every step is queued as an ``AlarmChange`` until taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from infusion_monitor.errors import ChartingError, ConfigError
from infusion_monitor.session.alarm_types import (
    AUDIO_PAUSED,
    ActiveAlarm,
    Alarm,
    AlarmChange,
    ChangeKind,
)
from infusion_monitor.session.thresholds import (
    NOTIFY_ATTENDING,
    AlarmCondition,
    Kind,
    Priority,
)

ESCALATION_S = 60.0
PAUSE_MINUTES = (1, 2, 3)
ATTENDING_ROLE = "attending"
_FLAG = AlarmCondition(NOTIFY_ATTENDING, None, "", None, 0, Priority.MEDIUM, Kind.DISCRETE,
                       "Notify attending")
#: The attending flag's condition (crash recovery puts a stored flag back up with it).
ATTENDING_FLAG = _FLAG

Due = tuple[float, int, Callable[[], None]]


def worse(cond: AlarmCondition, value: float, than: float | None) -> bool:
    """Is ``value`` further past the limit than ``than``?"""
    return than is None or (value < than if cond.op.startswith("<") else value > than)


class AlarmBook:
    """Every alarm of one session and what users did about them."""

    def __init__(
        self,
        origin: datetime,
        *,
        escalation_s: float = ESCALATION_S,
        audio_pause_s: float = 120.0,
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.origin = origin
        self.escalation_s = escalation_s
        self.audio_pause_s = audio_pause_s
        self._new_uid = new_uid
        self.out: list[AlarmChange] = []
        self.alarms: dict[str, Alarm] = {}  # every alarm of the session
        self.shown: dict[str, Alarm] = {}  # on the display
        self.open: dict[str, Alarm] = {}  # condition key -> alarm whose condition holds
        self.audio_paused_until: float | None = None
        self._pause_uid = ""
        self.attending_flag: Alarm | None = None

    def time_of(self, t: float) -> datetime:
        return self.origin + timedelta(seconds=t)

    def take(self) -> list[AlarmChange]:
        out, self.out = self.out, []
        return out

    # -- raised by the engine -----------------------------------------------------------------
    def raise_(self, cond: AlarmCondition, key: str, t: float, text: str,
               value: float | None = None, worst: float | None = None,
               parameter: str | None = None) -> Alarm:
        alarm = Alarm(self._new_uid(), cond, key, parameter or cond.parameter, cond.priority, t,
                      text, value, worst)
        self.alarms[alarm.uid] = self.shown[alarm.uid] = self.open[key] = alarm
        if cond.priority is Priority.HIGH:
            alarm.next_escalation = t + self.escalation_s
        self._emit(ChangeKind.RAISED, alarm, t, value=worst, detail=text)
        if cond.priority is Priority.HIGH:
            self._end_pause(t)
        if not cond.technical and (
            cond.priority is Priority.HIGH
            or (cond.notify_attending and cond.priority is not Priority.LOW)
        ):
            self._flag_attending(alarm, t)
        return alarm

    def update(self, alarm: Alarm, cond: AlarmCondition, value: float, t: float) -> None:
        """A new breaching value; logged when it is the worst yet."""
        alarm.value, alarm.text = value, cond.describe(value)
        if worse(cond, value, alarm.worst):
            alarm.worst = value
            self._emit(ChangeKind.WORSENED, alarm, t, value=value)

    def end(self, key: str, t: float, detail: str = "") -> None:
        """The condition no longer holds; a latched, unacknowledged alarm stays shown."""
        alarm = self.open.pop(key)
        alarm.active, alarm.t_ended = False, t
        self._emit(ChangeKind.ENDED, alarm, t, value=alarm.worst, detail=detail)
        if not alarm.latched or alarm.acknowledged_by is not None:
            self._clear(alarm, t)

    def upgrade(self, alarm: Alarm, t: float) -> None:
        """A technical alarm becomes high priority (signal lost for 60 s)."""
        alarm.priority = Priority.HIGH
        if alarm.acknowledged_by is None:
            alarm.next_escalation = t + self.escalation_s
        self._emit(ChangeKind.ESCALATED, alarm, t, detail="priority high")
        self._end_pause(t)

    def dues(self) -> list[Due]:
        """Escalations waiting to happen (rank 3: after ends, raises and upgrades)."""
        return [(a.next_escalation, 3, partial(self._escalate, a))
                for a in self.shown.values() if a.next_escalation is not None]

    def _escalate(self, alarm: Alarm) -> None:
        assert alarm.next_escalation is not None
        t = alarm.next_escalation
        alarm.escalations += 1
        alarm.next_escalation = t + self.escalation_s
        self._emit(ChangeKind.ESCALATED, alarm, t,
                   detail=f"unacknowledged for {t - alarm.t_started:g} s")

    def _clear(self, alarm: Alarm, t: float) -> None:
        del self.shown[alarm.uid]
        alarm.next_escalation = None
        self._emit(ChangeKind.CLEARED, alarm, t)

    def _flag_attending(self, trigger: Alarm, t: float) -> None:
        flag = self.attending_flag
        if flag is None:
            flag = Alarm(self._new_uid(), _FLAG, NOTIFY_ATTENDING, trigger.parameter,
                         trigger.priority, t, f"Notify attending: {trigger.text}")
            self.attending_flag = self.alarms[flag.uid] = flag
            self._emit(ChangeKind.RAISED, flag, t, detail=flag.text)
            return
        if trigger.priority.rank > flag.priority.rank:
            flag.priority = trigger.priority
        flag.text = f"Notify attending: {trigger.text}"
        self._emit(ChangeKind.TRIGGERED, flag, t, detail=trigger.text)

    def _emit(self, kind: ChangeKind, alarm: Alarm, t: float, *, value: float | None = None,
              by: str | None = None, detail: str = "") -> None:
        self.out.append(AlarmChange(
            kind, alarm.uid, alarm.condition.name, alarm.parameter, alarm.stored_priority, t,
            self.time_of(t), value, alarm.condition.limit, alarm.latched, by, detail,
        ))

    # -- what users do ------------------------------------------------------------------------
    def acknowledge(self, uid: str, by: str, t: float, role: str | None) -> None:
        flag = self.attending_flag
        if flag is not None and uid == flag.uid:
            self.acknowledge_attending(by, role, t)
        elif uid in self.shown:
            if self.shown[uid].acknowledged_by is None:
                self._ack(self.shown[uid], who(by), t)
        elif uid not in self.alarms:  # off the display already: nothing left to acknowledge
            raise ChartingError(f"there is no alarm {uid} to acknowledge")

    def acknowledge_all(self, by: str, t: float) -> None:
        by = who(by)
        for alarm in list(self.shown.values()):
            if alarm.acknowledged_by is None:
                self._ack(alarm, by, t)

    def _ack(self, alarm: Alarm, by: str, t: float) -> None:
        alarm.acknowledged_by, alarm.t_acknowledged = by, t
        alarm.next_escalation = None
        self._emit(ChangeKind.ACKNOWLEDGED, alarm, t, by=by)
        if not alarm.active:
            self._clear(alarm, t)

    def acknowledge_attending(self, by: str, role: str | None, t: float) -> None:
        by = who(by)
        if role != ATTENDING_ROLE:
            raise ChartingError("only an attending can acknowledge the notify-attending flag; "
                                "ask the attending to acknowledge it")
        if self.attending_flag is None:
            raise ChartingError("the attending flag is not up")
        flag, self.attending_flag = self.attending_flag, None
        flag.acknowledged_by, flag.t_acknowledged = by, t
        flag.active, flag.t_ended = False, t
        self._emit(ChangeKind.ACKNOWLEDGED, flag, t, by=by, detail=role)
        self._emit(ChangeKind.ENDED, flag, t)
        self._emit(ChangeKind.CLEARED, flag, t)

    def pause_audio(self, t: float, by: str, minutes: int | None) -> None:
        by = who(by)
        if minutes is None:
            seconds = self.audio_pause_s
        elif type(minutes) is int and minutes in PAUSE_MINUTES:
            seconds = minutes * 60.0
        else:
            raise ConfigError(f"an audio pause lasts 1, 2 or 3 minutes, not {minutes!r}; "
                              "alarms cannot be muted for good")
        self.audio_paused_until = t + seconds
        self._pause_uid = self._new_uid()
        self.out.append(AlarmChange(
            ChangeKind.PAUSED, self._pause_uid, AUDIO_PAUSED, None, "technical", t,
            self.time_of(t), seconds, None, False, by, f"audio paused for {seconds:g} s",
        ))

    def restore_pause(self, until: float, uid: str) -> None:
        """An audio pause stored before a crash goes on until ``until`` (no new row)."""
        self.audio_paused_until, self._pause_uid = until, uid

    def _end_pause(self, t: float) -> None:
        if self.audio_paused_until is not None and t < self.audio_paused_until:
            self.audio_paused_until = None
            self.out.append(AlarmChange(
                ChangeKind.RESUMED, self._pause_uid, AUDIO_PAUSED, None, "technical", t,
                self.time_of(t), None, None, False, None, "new high-priority alarm",
            ))

    def audio_pause_remaining(self, now: float) -> float:
        if self.audio_paused_until is None:
            return 0.0
        return max(0.0, self.audio_paused_until - now)

    def add_response(self, uid: str, text: str, by: str, t: float) -> None:
        by = who(by)
        alarm = self.alarms.get(uid)
        if alarm is None:
            raise ChartingError(f"there is no alarm {uid} to add a response to")
        if not text.strip():
            raise ChartingError("the response note is empty: say what was done")
        alarm.responses.append(text.strip())
        self._emit(ChangeKind.RESPONSE, alarm, t, by=by, detail=text.strip())

    # -- what the display shows ---------------------------------------------------------------
    def active(self) -> list[ActiveAlarm]:
        shown = list(self.shown.values())
        outranked = {a.condition.supersedes for a in shown}
        return [self.snapshot(a) for a in sorted(
            (a for a in shown if a.condition.name not in outranked),
            key=lambda a: (-a.priority.rank, a.t_started),
        )]

    def history(self) -> list[ActiveAlarm]:
        return [self.snapshot(a) for a in sorted(self.alarms.values(),
                                                 key=lambda a: a.t_started)]

    def snapshot(self, a: Alarm) -> ActiveAlarm:
        return ActiveAlarm(
            a.uid, a.condition.name, a.parameter, a.priority, a.condition.technical, a.text,
            self.time_of(a.t_started), a.active, a.latched, a.value, a.worst, a.condition.limit,
            a.acknowledged_by,
            None if a.t_acknowledged is None else self.time_of(a.t_acknowledged),
            a.escalations, None if a.t_ended is None else self.time_of(a.t_ended),
            tuple(a.responses),
        )


def who(by: str) -> str:
    """The signed name; acknowledgements and notes without one are refused."""
    if not by or not by.strip():
        raise ChartingError("say who you are: acknowledgements and notes are signed")
    return by.strip()
