"""Runs the alarm engine live: fed by the recorder, ticked about once a second, logged, published.

The same object serves ``record`` (headless) and the GUI, so both raise and store the same
alarms. Calls arrive from the link thread (readings), the ticker thread and the GUI thread
(acknowledgements); one lock serialises them. Every change is written through the store
writer (on disk within a second) and then handed to listeners, on the calling thread: a GUI
listener must pass it on through a Qt queued signal.

What users do (acknowledge, pause, respond, take the attending flag down, change a limit)
passes the permission check first (session/auth.py); the engine's own work never does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from infusion_monitor.clock import Clock
from infusion_monitor.config import Settings
from infusion_monitor.devices.base import Event
from infusion_monitor.session.alarm_types import ActiveAlarm, AlarmChange
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.session.auth import Access, Action, access_for
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import LimitChange, ThresholdProfile
from infusion_monitor.store.alarm_log import AlarmEventRecord, AlarmLog, LimitChangeRecord
from infusion_monitor.store.repository import reason_of

log = logging.getLogger(__name__)

AlarmListener = Callable[[Sequence[AlarmChange]], None]


class AlarmSink(Protocol):
    """Where alarm events go (a StoreWriter)."""

    def submit(self, session_id: int, item: AlarmEventRecord) -> None: ...


def to_record(change: AlarmChange) -> AlarmEventRecord:
    """The store's row for one engine change."""
    return AlarmEventRecord(
        change.alarm_uid, change.kind.value, change.condition, change.parameter,
        change.priority, change.time, change.value, change.limit, change.latched, change.by,
        change.detail,
    )


def profile_from_settings(settings: Settings) -> ThresholdProfile:
    if not settings.thresholds:
        return ThresholdProfile.defaults()
    return ThresholdProfile.from_settings(settings.thresholds, str(settings.path or "settings"),
                                          settings.sources)


class AlarmMonitor:
    """The alarm engine of one live session, with its clock, ticker, log and listeners."""

    def __init__(
        self,
        session_id: int,
        *,
        clock: Clock,
        settings: Settings | None = None,
        profile: ThresholdProfile | None = None,
        sink: AlarmSink | None = None,
        alarm_log: AlarmLog | None = None,
        tick_s: float | None = None,
        access: Access | None = None,
    ) -> None:
        settings = settings or Settings()
        self.access = access_for(alarm_log.engine if alarm_log is not None else None, access)
        self.session_id = session_id
        self.clock = clock
        self.profile = profile or profile_from_settings(settings)
        self._mono0 = clock.monotonic()
        self.engine = AlarmEngine(
            self.profile, origin=clock.now(), escalation_s=settings.escalation_s,
            audio_pause_s=settings.alarm_audio_pause_s,
        )
        self.sink = sink
        self.alarm_log = alarm_log
        # A demo clock runs faster than real time: tick often enough for ~1 s of its time.
        speed = float(getattr(clock, "speed", 1.0))
        self.tick_s = tick_s if tick_s is not None else min(1.0, max(0.05, 1.0 / speed))
        self._lock = threading.RLock()
        self._listeners: list[AlarmListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- wiring -------------------------------------------------------------------------------
    def add_listener(self, listener: AlarmListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: AlarmListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def now(self) -> float:
        """Seconds on the engine's timeline (the injected clock's monotonic time)."""
        return self.clock.monotonic() - self._mono0

    def start(self, *, log_limits: bool = True) -> AlarmMonitor:
        """Log the clinic's limit changes for this session, then tick from a thread.

        ``log_limits=False``: a resumed session, whose limits are already in its log.
        """
        if log_limits and self.alarm_log is not None and self.profile.changes:
            now = self.clock.now()
            self.alarm_log.append_limit_changes([
                LimitChangeRecord(c.condition, c.old_value, c.new_value, c.time or now, c.by,
                                  c.reason, self.session_id)
                for c in self.profile.changes
            ])
        self._thread = threading.Thread(target=self._run, name="alarm-ticker", daemon=False)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking; alarms whose condition still holds end now. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        with self._lock:
            if not self._stopped:
                self._stopped = True
                self._publish(self.engine.stop(self.now()))

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the ticker must outlive a bug in one step; it is logged
                log.exception("alarm tick failed")

    def _publish(self, changes: Sequence[AlarmChange]) -> None:
        if not changes:
            return
        if self.sink is not None:
            for change in changes:
                self.sink.submit(self.session_id, to_record(change))
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:  # a broken display must never stop the alarms
                log.exception("alarm listener %r failed", listener)

    def _do(self, step: Callable[[float], list[AlarmChange]]) -> list[AlarmChange]:
        with self._lock:
            if self._stopped:
                return []
            changes = step(self.now())
            self._publish(changes)
            return changes

    def restore(self, step: Callable[[float], list[AlarmChange]]) -> list[AlarmChange]:
        """Run ``step(now)`` on the engine and store what it changed (crash recovery puts
        the stored alarm state back this way: session/resume.py)."""
        return self._do(step)

    # -- inputs -------------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """Recorder subscriber: stamped readings and device events (on the link thread)."""
        self._do(lambda _now: self.engine.on_events(events))

    def on_link_state(self, state: str, detail: str) -> None:
        self._do(lambda now: self.engine.on_link_state(str(state), detail, now))

    def on_storage_error(self, exc: Exception) -> None:
        # The driver's first line, not SQLAlchemy's statement and parameters (patient data).
        self._do(lambda now: self.engine.on_storage_error(reason_of(exc), now))

    def on_storage_overflow(self, dropped: int) -> None:
        self._do(lambda now: self.engine.on_storage_overflow(dropped, now))

    def on_storage_recovered(self) -> None:
        self._do(self.engine.on_storage_recovered)

    def tick(self) -> list[AlarmChange]:
        return self._do(self.engine.tick)

    def set_phase(self, phase: Phase) -> list[AlarmChange]:
        return self._do(lambda now: self.engine.set_phase(phase, now))

    def on_minute_entry(self, *, rass: int | None = None,
                        distress: int | None = None) -> list[AlarmChange]:
        return self._do(lambda now: self.engine.on_minute_entry(now, rass=rass,
                                                                distress=distress))

    def on_unassessed_streak(self, minutes: int) -> list[AlarmChange]:
        return self._do(lambda now: self.engine.on_unassessed_streak(minutes, now))

    # -- what users do ------------------------------------------------------------------------
    def _who(self, action: Action, by: str, what: str | None = None) -> str:
        """The permission check (outside the lock: a refusal is written to the database)."""
        return self.access.require(action, by, session_id=self.session_id, what=what)

    def acknowledge(self, uid: str, *, by: str, role: str | None = None) -> list[AlarmChange]:
        flag = self.flag()  # the attending flag's uid takes an attending
        attending = flag is not None and flag.uid == uid
        by = self._who(Action.ACKNOWLEDGE_ATTENDING if attending else Action.ACKNOWLEDGE, by)
        role = self.access.role(role)
        return self._do(lambda now: self.engine.acknowledge(uid, by=by, now=now, role=role))

    def acknowledge_all(self, *, by: str) -> list[AlarmChange]:
        by = self._who(Action.ACKNOWLEDGE, by)
        return self._do(lambda now: self.engine.acknowledge_all(by=by, now=now))

    def acknowledge_attending(self, *, by: str, role: str | None) -> list[AlarmChange]:
        by = self._who(Action.ACKNOWLEDGE_ATTENDING, by)
        role = self.access.role(role)
        return self._do(lambda now: self.engine.acknowledge_attending(by=by, role=role,
                                                                      now=now))

    def pause_audio(self, *, by: str, minutes: int | None = None) -> list[AlarmChange]:
        by = self._who(Action.ACKNOWLEDGE, by, "pause the alarm audio")
        return self._do(lambda now: self.engine.pause_audio(now, by=by, minutes=minutes))

    def add_response(self, uid: str, text: str, *, by: str) -> list[AlarmChange]:
        by = self._who(Action.ACKNOWLEDGE, by, "add a response to an alarm")
        return self._do(lambda now: self.engine.add_response(uid, text, by=by, now=now))

    def override(self, condition: str, new_limit: float, *, by: str,
                 reason: str) -> LimitChange:
        """A per-patient limit (before infusion start), written to the audit log at once."""
        by = self._who(Action.CHANGE_LIMITS, by)
        with self._lock:
            change = self.engine.override(condition, new_limit, by=by, reason=reason,
                                          now=self.now(), apply=False)
            if self.alarm_log is not None:  # audited first: a limit never changes unrecorded
                assert change.time is not None
                self.alarm_log.append_limit_changes([LimitChangeRecord(
                    change.condition, change.old_value, change.new_value, change.time,
                    change.by, change.reason, self.session_id)])
            self.profile.apply(change)
            return change

    # -- queries ------------------------------------------------------------------------------
    def active(self) -> list[ActiveAlarm]:
        with self._lock:
            return self.engine.active()

    def history(self) -> list[ActiveAlarm]:
        with self._lock:
            return self.engine.history()

    def flag(self) -> ActiveAlarm | None:
        with self._lock:
            return self.engine.flag()

    def audio_pause_remaining(self) -> float:
        with self._lock:
            return self.engine.audio_pause_remaining(self.now())
