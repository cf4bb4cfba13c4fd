"""Everything one session holds, gathered once, for every export (CSV, PDF, HL7 v2, FHIR).

Exports read this snapshot and never the database, so each is a pure function of a
``SessionRecord`` and can be tested on one built in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from infusion_monitor.clock import Clock, SystemClock
from infusion_monitor.devices.base import DeviceEvent
from infusion_monitor.session.auth import Access, Action, access_for
from infusion_monitor.session.checks import Baseline, RemsSummary
from infusion_monitor.session.lifecycle import ChartMarker, SessionChart
from infusion_monitor.session.locking import Addendum
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.thresholds import LimitChange, ThresholdProfile
from infusion_monitor.store.alarm_log import AlarmLog, AlarmRecord, LimitChangeRecord
from infusion_monitor.store.audit import AuditEntry, AuditLog
from infusion_monitor.store.charting import CadssForm, CheckIn, Note
from infusion_monitor.store.db import Database
from infusion_monitor.store.repository import SessionInfo
from infusion_monitor.store.signoff import SignOff
from infusion_monitor.store.waveforms import WaveformTrace
from infusion_monitor.vitals import Reading


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session as recorded: who, what the monitor sent, what was charted, what alarmed."""

    info: SessionInfo
    check_in: CheckIn | None  # the current version
    check_in_history: tuple[CheckIn, ...]  # every version, oldest first
    readings: tuple[Reading, ...]
    device_events: tuple[DeviceEvent, ...]
    markers: tuple[ChartMarker, ...]
    baseline: Baseline | None
    minutes: tuple[MinuteRow, ...]
    notes: tuple[tuple[Note, ...], ...]  # each note with its amendments
    cadss: tuple[tuple[CadssForm, ...], ...]
    alarms: tuple[AlarmRecord, ...]
    limit_changes: tuple[LimitChangeRecord, ...]
    limits: dict[str, float]  # the limits in force for this session (condition -> value)
    rems: RemsSummary | None
    exported_at: datetime
    signoffs: tuple[SignOff, ...] = ()  # oldest first; the first one locked the record
    addenda: tuple[Addendum, ...] = ()  # rows entered after the first sign-off
    #: Every wave the monitor streamed (e.g. "pleth"), samples and times as numpy arrays.
    waveforms: dict[str, WaveformTrace] = field(default_factory=dict)
    #: The session's audit trail in order, without the per-batch device-data entries.
    audit: tuple[AuditEntry, ...] = ()

    @property
    def equipment_id(self) -> str:
        """Which monitor fed the session: protocol, port and workstation."""
        i = self.info
        return f"{i.protocol}@{i.port or '-'}@{i.workstation_id}"


def session_limits(changes: list[LimitChangeRecord]) -> dict[str, float]:
    """The clinic defaults with this session's recorded limit changes applied in order."""
    profile = ThresholdProfile.defaults()
    for c in changes:
        profile.apply(LimitChange(c.condition, c.old_value, c.new_value, c.by, c.reason, c.time))
    return profile.limits()


def load_session_record(
    database: Database, session_id: int, clock: Clock | None = None,
    access: Access | None = None,
) -> SessionRecord:
    """Read one session completely (StoreError if it does not exist); once the database has
    accounts, only for a logged-in user who may review (session/auth.py)."""
    access_for(database.engine, access).check(Action.REVIEW, session_id=session_id,
                                              what="review a session")
    clock = clock or SystemClock()
    repo = database.repository
    info = repo.get_session(session_id)
    chart = SessionChart.open(database, session_id, clock)
    log = AlarmLog(database.engine)
    changes = log.limit_changes(session_id)
    # A closed chart ends at discharge; an open one (still recording) at "now".
    end = info.ended or clock.now()
    started = chart.infusion_start is not None
    return SessionRecord(
        info=info,
        check_in=chart.check_in_details(),
        check_in_history=chart.check_in_history(),
        readings=tuple(chart.readings()),
        device_events=tuple(repo.device_events(session_id)),
        markers=tuple(chart.markers()),
        baseline=chart.baseline(),
        minutes=tuple(chart.minute_rows(end)) if started else (),
        notes=tuple(chart.notes()),
        cadss=tuple(chart.cadss_forms()),
        alarms=tuple(log.alarms(session_id)),
        limit_changes=tuple(changes),
        limits=session_limits(changes),
        rems=chart.rems_summary(end) if started else None,
        exported_at=clock.now(),
        signoffs=tuple(chart.signoffs()),
        addenda=tuple(chart.addenda()),
        waveforms={wave: repo.waveforms(session_id, wave) for wave in repo.waves(session_id)},
        audit=tuple(AuditLog(database.engine).entries(session_id, batches=False)),
    )
