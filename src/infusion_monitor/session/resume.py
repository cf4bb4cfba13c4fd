"""Crash recovery: find this chair's sessions left open, and continue one where it stopped.

A session is *open* while its ``ended_us`` is empty. A clean stop (Stop, Ctrl-C, SIGTERM) ends
it; a crash, a power cut or SIGKILL leaves it open. At the next start the app offers to
**resume** it (``record --resume``, the GUI's dialog) or to **close it as interrupted**
(``record --new``, the dialog's other choice); it never silently starts a second session.

Resuming re-creates the live state from the database: the phase (from the phase markers), the
check-in and minute log (read by the chart as always), the per-patient limits (the session's
``limit_changes``) and the alarm state (``restore_alarms``). The time nobody recorded is a
device event of kind GAP, from the last stored reading to the first reading after the resume,
and the resume is an audit entry.

A long interruption is still resumable: the gap is just longer. Past ``LONG_INTERRUPTION_S``
the prompt says how long the session was left open, so the nurse can check it is still the
same patient before resuming; nothing is refused or assumed on the nurse's behalf.

Pure functions and one small class; the database is read through the store's own classes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import Clock, from_us, iso_z, to_us
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event
from infusion_monitor.errors import InfusionMonitorError, StoreError
from infusion_monitor.session.alarm_book import ATTENDING_FLAG
from infusion_monitor.session.alarm_types import Alarm, AlarmChange, ChangeKind
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import (
    NOTIFY_ATTENDING,
    LimitChange,
    Priority,
    ThresholdProfile,
)
from infusion_monitor.store.alarm_log import AUDIO_PAUSED, AlarmEventRecord, LimitChangeRecord
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.db import Database
from infusion_monitor.store.models import DeviceEventRow, ReadingRow
from infusion_monitor.store.models_clinical import AlarmEventRow, AuditEntryRow
from infusion_monitor.store.overview import initials
from infusion_monitor.store.repository import SessionInfo, reason_of
from infusion_monitor.vitals import Reading

log = logging.getLogger(__name__)

#: Sessions a recording made (an import is ended as it is written).
LIVE_SOURCES = ("record", "gui", "demo")
#: Left open longer than this, the prompt says so (the session is still resumable).
LONG_INTERRUPTION_S = 30 * 60
INTERRUPTED = "recording interrupted: app stopped unexpectedly"
#: Audit actions: a session resumed after a crash, and one closed as interrupted.
RESUME_ACTION = "resume"
INTERRUPTED_ACTION = "interrupted"


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session of this chair that was never ended, and where it stood when it stopped.

    ``left_open`` is the time of the last thing stored (reading, device event, alarm event);
    ``last_reading`` the last reading's, where the gap starts (``None``: no reading yet).
    """

    info: SessionInfo
    phase: Phase | None
    patient_initials: str | None
    left_open: datetime
    last_reading: datetime | None

    @property
    def id(self) -> int:
        return self.info.id

    def describe(self, now: datetime) -> str:
        """ "session 12 (AE, Infusion, left open at 09:41)", local time, for the prompts."""
        phase = self.phase.label if self.phase is not None else "not checked in"
        who = self.patient_initials or self.info.patient_id or "no patient"
        text = (f"session {self.id} ({who}, {phase}, left open at "
                f"{self.left_open.astimezone():%H:%M})")
        open_s = (now - self.left_open).total_seconds()
        if open_s > LONG_INTERRUPTION_S:
            text += f": {_duration(open_s)} ago, check it is the same patient"
        return text


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def open_sessions(database: Database, workstation_id: str) -> list[OpenSession]:
    """This workstation's recorded sessions that were never ended, newest first."""
    found = database.repository.open_sessions(workstation_id, LIVE_SOURCES)
    return [open_session(database, s) for s in found]


def open_session(database: Database, info: SessionInfo) -> OpenSession:
    """Where one session stood: its phase, patient and last stored data."""
    chart = SessionChart(ChartStore(database.engine), info.id)  # no readings: rows only
    check_in = chart.check_in_details()
    last_reading, left_open = _last_data(database, info.id)
    return OpenSession(
        info=info, phase=chart.state,
        patient_initials=initials(check_in.patient_name) if check_in else None,
        left_open=from_us(max(left_open or 0, to_us(info.started))),
        last_reading=None if last_reading is None else from_us(last_reading),
    )


def _last_data(database: Database, session_id: int) -> tuple[int | None, int | None]:
    """(last reading, last reading/device event/alarm event) as epoch µs."""
    times = []
    try:
        with database.engine.connect() as conn:
            for model in (ReadingRow, DeviceEventRow, AlarmEventRow):
                times.append(conn.execute(select(func.max(model.t_us)).where(
                    model.session_id == session_id)).scalar())
    except SQLAlchemyError as exc:
        raise StoreError(f"could not read session {session_id}: {reason_of(exc)}") from exc
    known = [t for t in times if t is not None]
    return times[0], max(known) if known else None


def require_open(database: Database, session_id: int, workstation_id: str) -> OpenSession:
    """The open session ``session_id`` of this chair, or StoreError saying why not."""
    info = database.repository.get_session(session_id)
    if info.ended is not None:
        raise StoreError(f"session {session_id} is already closed; start a new one")
    if info.workstation_id != workstation_id:
        raise StoreError(f"session {session_id} belongs to workstation "
                         f"{info.workstation_id!r}, not {workstation_id!r}: resume it there")
    return open_session(database, info)


def interrupted_sessions(database: Database) -> set[int]:
    """Ids of the sessions that were closed as interrupted (their audit entry says so)."""
    t = AuditEntryRow
    stmt = select(t.session_id).where(t.action == INTERRUPTED_ACTION).distinct()
    try:
        with database.engine.connect() as conn:
            return {sid for (sid,) in conn.execute(stmt) if sid is not None}
    except SQLAlchemyError as exc:
        raise StoreError(f"could not read the audit trail: {reason_of(exc)}") from exc


def close_interrupted(database: Database, session: OpenSession, *, by: str) -> None:
    """End an open session at its last stored data, recorded as interrupted (audited)."""
    AuditLog(database.engine).record_event(
        INTERRUPTED_ACTION, actor=by, session_id=session.id, reason=INTERRUPTED,
        detail={"left_open": iso_z(session.left_open)})
    database.repository.end_session(session.id, session.left_open, by=by)


def record_resume(database: Database, session: OpenSession, *, by: str, now: datetime) -> None:
    """The audit entry for a resume: who continued which session, after how long."""
    AuditLog(database.engine).record_event(
        RESUME_ACTION, actor=by, session_id=session.id, reason=INTERRUPTED,
        detail={"left_open": iso_z(session.left_open),
                "interrupted_s": round((now - session.left_open).total_seconds(), 3)},
        t_us=to_us(now))


def restored_profile(base: ThresholdProfile,
                     changes: Iterable[LimitChangeRecord]) -> ThresholdProfile:
    """``base`` with the session's stored limit changes put back in force, in order."""
    for c in changes:
        base.apply(LimitChange(c.condition, c.old_value, c.new_value, c.by, c.reason, c.time))
    return base


class GapNote:
    """Puts the GAP event in front of the first batch with a reading after a resume.

    The recorder stamps the whole batch at once, so the gap ends exactly at the first new
    reading's receipt time and is ordered before it (the trend line breaks there).
    """

    def __init__(self, since: datetime, clock: Clock) -> None:
        self.since = since
        self.clock = clock
        self.done = False

    def __call__(self, events: Sequence[Event]) -> Sequence[Event]:
        if self.done or not any(isinstance(e, Reading) for e in events):
            return events
        self.done = True
        return [gap_event(self.since, self.clock.now()), *events]


def gap_event(since: datetime, until: datetime) -> DeviceEvent:
    """The GAP device event for an interruption from ``since`` to ``until``."""
    seconds = (until - since).total_seconds()
    return DeviceEvent(DeviceEventKind.GAP, f"{INTERRUPTED}; no data from {iso_z(since)} to "
                                            f"{iso_z(until)} ({seconds:.1f} s)")


def restore_alarms(engine: AlarmEngine, records: Sequence[AlarmEventRecord], *,
                   interrupted_at: datetime, phase: Phase | None,
                   now: float = 0.0) -> list[AlarmChange]:
    """Put a fresh engine where the stored alarm log left off; returns the changes to store.

    Every alarm is back in the history. Alarms whose condition held at the interruption end
    there ("recording interrupted"): fresh data raise them again if they still hold, so
    medium, low and technical ones are re-judged, never assumed. A latched high alarm that was
    not acknowledged stays shown (and escalating) until someone acknowledges it; the attending
    flag stays up; an audio pause still running goes on until it would have ended. ``now``
    is the resume on the engine's timeline; ``phase`` the session's phase (NIBP schedule).
    """
    book = engine.book
    cut = engine.seconds(interrupted_at)
    rows: dict[str, list[AlarmEventRecord]] = {}
    pauses: list[AlarmEventRecord] = []
    for rec in records:
        (pauses if rec.condition == AUDIO_PAUSED else rows.setdefault(rec.alarm_uid, [])
         ).append(rec)
    for uid, mine in rows.items():
        alarm = _alarm(engine, uid, mine)
        if alarm is None:
            continue
        book.alarms[uid] = alarm
        if any(r.event == ChangeKind.CLEARED for r in mine):
            continue
        if alarm.condition.name == NOTIFY_ATTENDING:
            book.attending_flag = alarm  # up until an attending acknowledges it
            continue
        book.shown[uid] = alarm
        if alarm.active:
            book.open[alarm.key] = alarm
    for key in list(book.open):
        book.end(key, min(cut, now), INTERRUPTED)
    for alarm in book.shown.values():
        if alarm.priority is Priority.HIGH and alarm.acknowledged_by is None:
            # Escalation goes on from the resume, on the alarm's own period; none is invented
            # for the time nobody was recording.
            k = math.floor((now - alarm.t_started) / book.escalation_s) + 1
            alarm.next_escalation = alarm.t_started + k * book.escalation_s
    _restore_pause(engine, pauses, now)
    changes = book.take()
    if phase is not None:
        changes += engine.set_phase(phase, now)
    return changes


def _alarm(engine: AlarmEngine, uid: str, rows: Sequence[AlarmEventRecord]) -> Alarm | None:
    """One stored alarm as the engine's record (None for one without its start, or a
    condition this version does not know: it stays in the log, it is not re-annunciated)."""
    raised = next((r for r in rows if r.event == ChangeKind.RAISED), None)
    if raised is None:
        return None
    try:
        cond = ATTENDING_FLAG if raised.condition == NOTIFY_ATTENDING else engine.profile.condition(
            raised.condition)
    except KeyError:
        log.warning("alarm %s: unknown condition %r is not restored", uid, raised.condition)
        return None
    key = (f"{cond.name}:{raised.parameter}" if cond.name == "signal_lost"
           else cond.name)
    if cond.technical:
        upgraded = any(r.event == ChangeKind.ESCALATED and r.detail == "priority high"
                       for r in rows)
        priority = Priority.HIGH if upgraded else cond.priority
    else:
        priority = max((Priority(r.priority) for r in rows if r.priority != "technical"),
                       key=lambda p: p.rank, default=cond.priority)
    ends = [r for r in rows if r.event == ChangeKind.ENDED]
    acks = [r for r in rows if r.event == ChangeKind.ACKNOWLEDGED]
    worst = [r.value for r in rows if r.event in (ChangeKind.RAISED, ChangeKind.WORSENED,
                                                  ChangeKind.ENDED) and r.value is not None]
    alarm = Alarm(uid, cond, key, raised.parameter, priority, engine.seconds(raised.time),
                  raised.detail, worst[-1] if worst else None, worst[-1] if worst else None)
    if ends:
        alarm.active, alarm.t_ended = False, engine.seconds(ends[0].time)
    if acks:
        alarm.acknowledged_by, alarm.t_acknowledged = acks[0].by, engine.seconds(acks[0].time)
    alarm.escalations = sum(1 for r in rows if r.event == ChangeKind.ESCALATED
                            and r.detail != "priority high")
    alarm.responses = [r.detail for r in rows if r.event == ChangeKind.RESPONSE]
    return alarm


def _restore_pause(engine: AlarmEngine, pauses: Sequence[AlarmEventRecord], now: float) -> None:
    """An audio pause that was still running at the resume goes on until it would end."""
    last = next((r for r in reversed(pauses) if r.event == ChangeKind.PAUSED), None)
    if last is None or last.value is None:
        return
    if any(r.event == ChangeKind.RESUMED and r.alarm_uid == last.alarm_uid for r in pauses):
        return
    until = engine.seconds(last.time) + last.value
    if until > now:
        engine.book.restore_pause(until, last.alarm_uid)


class OpenSessionError(InfusionMonitorError):
    """This chair has an open session and the user did not say what to do with it."""


def settle_open_sessions(database: Database, workstation_id: str, *, resume: int | bool,
                         new: bool, by: str, now: datetime) -> int | None:
    """What ``record`` does about this chair's open sessions: the id to resume, or None to
    start a new session (after closing every open one as interrupted, with ``new``).

    ``resume`` is True (the only open session), a session id, or False. With open sessions
    and neither choice, OpenSessionError names them and the two choices; nothing changes.
    """
    if resume is not False and resume is not True:
        return require_open(database, int(resume), workstation_id).id
    found = open_sessions(database, workstation_id)
    if resume:
        if len(found) == 1:
            return found[0].id
        if not found:
            raise OpenSessionError(f"workstation {workstation_id!r} has no open session to "
                                   "resume; leave --resume out to start a new one")
        raise OpenSessionError(
            f"workstation {workstation_id!r} has {len(found)} open sessions "
            f"({', '.join(str(s.id) for s in found)}): say which, e.g. --resume {found[0].id}")
    if found and not new:
        listed = "; ".join(s.describe(now) for s in found)
        raise OpenSessionError(
            f"{listed} was not closed (the app stopped unexpectedly): add --resume to continue "
            "it, or --new to close it as interrupted and start a new session")
    for session in found:
        close_interrupted(database, session, by=by)
    return None


class ChairRecovery:
    """What a window asks at start: this chair's open sessions, and closing one as interrupted."""

    def __init__(self, database: Database, workstation_id: str) -> None:
        self.database = database
        self.workstation_id = workstation_id

    def open_sessions(self) -> list[OpenSession]:
        return open_sessions(self.database, self.workstation_id)

    def close_interrupted(self, session: OpenSession, *, by: str) -> None:
        close_interrupted(self.database, session, by=by)

    def history(self, session_id: int) -> list[Event]:
        """The session's stored readings and device events, in time order, for the trend
        charts; at one instant an event comes first (a gap breaks the line before a value)."""
        repo = self.database.repository
        return chart_order([*repo.device_events(session_id), *repo.readings(session_id)])

    def clock_origin(self, now: datetime) -> datetime:
        """Where an accelerated demo clock starts: never before what this chair already
        recorded (its time runs ahead of the wall clock), so a resumed session goes forward."""
        return max([now, *(s.left_open for s in self.open_sessions())])


def chart_order(items: Iterable[Event]) -> list[Event]:
    """Stored readings and device events in time order for a trend chart; at one instant the
    event first, so a recorded gap breaks the line before the value that ends it."""
    return sorted(items, key=lambda e: (e.t_received or e.t_device or _EPOCH,
                                        isinstance(e, Reading)))


_EPOCH = from_us(0)
