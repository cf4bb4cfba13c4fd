"""One live recording: a session row, a store writer, a recorder and a serial link, wired up.

The headless ``record`` command and the GUI use this same object, so both record identically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from infusion_monitor.clock import Clock, SystemClock
from infusion_monitor.config import Settings, load_settings, resolve_workstation
from infusion_monitor.devices.base import DeviceEventKind, Event, SerialSettings
from infusion_monitor.devices.link import LinkState, SerialLink
from infusion_monitor.devices.registry import get_protocol
from infusion_monitor.session.alarm_monitor import AlarmMonitor, profile_from_settings
from infusion_monitor.session.auth import Access, Action, access_for
from infusion_monitor.session.clinic_defaults import effective_settings
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.session.resume import (
    INTERRUPTED,
    GapNote,
    OpenSession,
    record_resume,
    require_open,
    restore_alarms,
    restored_profile,
)
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.store.audit import current_user
from infusion_monitor.store.db import Database
from infusion_monitor.store.writer import StoreWriter

log = logging.getLogger(__name__)

StateSink = Callable[[LinkState, str], None]


class LiveRecording:
    """Records one monitor into one new session until ``stop()``, with its alarms.

    ``alarms`` (an ``AlarmMonitor``) is fed by the recorder and the link state and writes the
    alarm log through the same store writer; the GUI subscribes with ``alarms.add_listener``.
    ``settings`` default to the clinic's settings file (a broken one is a ConfigError).
    ``serial_settings`` are the port's line settings (default: the protocol's own);
    ``baudrate``, when given, overrides their speed. ``workstation_id`` names the chair on the
    clinic overview (default: ``$INFUSION_MONITOR_WORKSTATION``, the settings, the host name).
    ``access`` says who is logged in at this chair (session/auth.py): starting a recording
    is charting, and the alarm monitor checks what users do through the same object.
    ``resume`` continues that open session of this workstation instead of creating one
    (crash recovery, session/resume.py): its limits and alarm state come back from the
    database, the gap is recorded at the first new reading, and the resume is audited.
    """

    def __init__(
        self,
        database: Database,
        *,
        protocol: str,
        url: str,
        source: str,
        clock: Clock | None = None,
        patient_id: str | None = None,
        baudrate: int | None = None,
        on_state: StateSink | None = None,
        on_store_error: Callable[[Exception], None] | None = None,
        on_store_recovered: Callable[[], None] | None = None,
        settings: Settings | None = None,
        serial_settings: SerialSettings | None = None,
        workstation_id: str | None = None,
        access: Access | None = None,
        resume: int | None = None,
    ) -> None:
        self.access = access_for(database.engine, access)
        by = self.access.require(Action.CHART, current_user(), what="start a recording")
        info = get_protocol(protocol)
        # The clinic defaults in the database win over this workstation's file.
        settings = effective_settings(settings if settings is not None else load_settings(),
                                      database.engine)
        self.clock = clock or SystemClock()
        self.database = database
        self.protocol = protocol
        self.url = url
        self.workstation_id = resolve_workstation(workstation_id, settings)
        self.resumed = None if resume is None else require_open(
            database, resume, self.workstation_id)
        self.session_id = resume if resume is not None else database.repository.create_session(
            source=source, protocol=protocol, port=url, patient_id=patient_id,
            started=self.clock.now(), workstation_id=self.workstation_id, by=by,
        )
        self._on_store_error = on_store_error
        self._on_store_recovered = on_store_recovered
        self.writer = StoreWriter(
            database.repository, on_error=self._store_error, on_recovered=self._store_recovered,
            on_overflow=self._store_overflow,
        )
        self.recorder = Recorder(self.session_id, sink=self.writer, clock=self.clock)
        alarm_log = AlarmLog(database.engine)
        self.alarms = AlarmMonitor(
            self.session_id, clock=self.clock, settings=settings, sink=self.writer,
            alarm_log=alarm_log, access=self.access,
            profile=None if self.resumed is None else restored_profile(
                profile_from_settings(settings), alarm_log.limit_changes(self.session_id)),
        )
        self._gap: GapNote | None = None
        if self.resumed is not None:
            self._resume(self.resumed, alarm_log, by)
        self.recorder.subscribe(self.alarms.on_events)
        self._state_sinks: list[StateSink] = [self.alarms.on_link_state]
        if on_state:
            self._state_sinks.append(on_state)
        codec = info.create()
        if self.resumed is not None:  # what the monitor repeats is not stored twice
            codec.resume_after(database.repository.readings(self.session_id))
        self.link = SerialLink(
            url, codec, on_events=self._on_link_events, on_state=self._state,
            clock=self.clock, baudrate=baudrate, settings=serial_settings,
        )
        self._stopped = False

    def _resume(self, session: OpenSession, alarm_log: AlarmLog, by: str) -> None:
        """Alarm state from the log, the gap to note, and the audit entry of the resume."""
        records = alarm_log.events(self.session_id)
        self.alarms.restore(lambda now: restore_alarms(
            self.alarms.engine, records, interrupted_at=session.left_open,
            phase=session.phase, now=now))
        self._gap = GapNote(session.last_reading or session.left_open, self.clock)
        record_resume(self.database, session, by=by, now=self.clock.now())

    def _on_link_events(self, events: Sequence[Event]) -> list[Event]:
        if self._gap is not None and not self._gap.done:
            events = self._gap(events)
        return self.recorder.handle(events)

    def add_state_listener(self, sink: StateSink) -> None:
        self._state_sinks.append(sink)

    def _state(self, state: LinkState, detail: str) -> None:
        for sink in list(self._state_sinks):
            sink(state, detail)

    def _store_error(self, exc: Exception) -> None:
        self.alarms.on_storage_error(exc)
        if self._on_store_error is not None:
            self._on_store_error(exc)

    def _store_overflow(self, dropped: int) -> None:
        self.alarms.on_storage_overflow(dropped)

    def _store_recovered(self) -> None:
        self.alarms.on_storage_recovered()
        if self._on_store_recovered is not None:
            self._on_store_recovered()

    def start(self) -> LiveRecording:
        self.alarms.start(log_limits=self.resumed is None)
        self.recorder.note(
            DeviceEventKind.RECORDING_STARTED,
            f"recording {self.protocol} from {self.url}" + (
                "" if self.resumed is None else f" (resumed after: {INTERRUPTED})"),
        )
        self.link.start()
        return self

    def stop(self) -> None:
        """Stop the link, write out everything, and close the session. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.link.stop()
        self.recorder.note(DeviceEventKind.RECORDING_STOPPED, "recording stopped")
        self.alarms.stop()  # before the writer closes: the last alarm events are written too
        self.writer.close()
        principal = self.access.principal
        self.database.repository.end_session(
            self.session_id, self.clock.now(),
            by=principal.display_name if principal is not None else None)
