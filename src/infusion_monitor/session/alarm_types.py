"""What the alarm engine says: changes (for the log and listeners) and alarms (for the display)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from infusion_monitor.session.thresholds import AlarmCondition, Priority


class ChangeKind(enum.StrEnum):
    """One step in an alarm's life; stored as ``alarm_events.event``."""

    RAISED = "raised"  # the condition has lasted its delay: the alarm starts
    WORSENED = "worsened"  # a new worst value while the condition holds
    ESCALATED = "escalated"  # unacknowledged high alarm repeated, or technical medium -> high
    ACKNOWLEDGED = "acknowledged"  # by a named user
    ENDED = "ended"  # the condition no longer holds (a latched alarm stays shown)
    CLEARED = "cleared"  # off the display (non-latched: at the end; latched: at ack after end)
    TRIGGERED = "triggered"  # another breach while the attending flag is already up
    RESPONSE = "response"  # the nurse's note on what was done
    PAUSED = "paused"  # audio paused (condition ``audio_paused``)
    RESUMED = "resumed"  # audio pause ended early by a new high alarm


#: Pseudo-condition of the audio-pause rows in the alarm log.
AUDIO_PAUSED = "audio_paused"


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One thing that happened to one alarm; the monitor stores it and tells listeners.

    ``t`` is seconds on the engine's timeline and ``time`` the same instant as UTC. ``priority``
    is as exported: ``high``, ``medium``, ``low`` or ``technical``. ``value`` is the alarm's
    worst value so far (raised, worsened, ended) and ``limit`` the limit in force.
    """

    kind: ChangeKind
    alarm_uid: str
    condition: str
    parameter: str | None
    priority: str
    t: float
    time: datetime
    value: float | None = None
    limit: float | None = None
    latched: bool = False
    by: str | None = None
    detail: str = ""


@dataclass(slots=True, eq=False)
class Alarm:
    """The engine's mutable record of one alarm (use ``ActiveAlarm`` snapshots outside)."""

    uid: str
    condition: AlarmCondition
    key: str  # what keeps it open: the condition name, or e.g. "signal_lost:spo2"
    parameter: str | None
    priority: Priority
    t_started: float
    text: str
    value: float | None = None
    worst: float | None = None
    active: bool = True  # the condition still holds
    t_ended: float | None = None
    acknowledged_by: str | None = None
    t_acknowledged: float | None = None
    escalations: int = 0
    next_escalation: float | None = None
    responses: list[str] = field(default_factory=list)

    @property
    def latched(self) -> bool:
        return self.condition.latching

    @property
    def stored_priority(self) -> str:
        return "technical" if self.condition.technical else self.priority.value


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """An alarm as the display shows it: what, how urgent, since when, against which limit."""

    uid: str
    condition: str
    parameter: str | None
    priority: Priority
    technical: bool
    text: str  # e.g. "SpO2 87 < 88" or "Monitor link lost: port gone"
    started: datetime
    active: bool  # False: a latched alarm whose condition ended, waiting for acknowledgement
    latched: bool
    value: float | None
    worst: float | None
    limit: float | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    escalations: int
    ended: datetime | None
    responses: tuple[str, ...]

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None

    @property
    def marker(self) -> str:
        """``***`` high, ``**`` medium, ``*`` low: priority never by colour alone."""
        return self.priority.marker
