"""Reads and appends sessions, readings and device events; nothing clinical is updated."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.errors import StoreError
from infusion_monitor.store import audit
from infusion_monitor.store.models import (
    DeviceEventRow,
    ReadingRow,
    SessionRow,
    SessionSource,
    WaveformBlockRow,
)
from infusion_monitor.store.models_clinical import AlarmEventRow
from infusion_monitor.store.notify import notify_changed
from infusion_monitor.store.waveforms import WaveformTrace, block_of, block_row, trace_of
from infusion_monitor.vitals import Quality, Reading, Vital


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session's metadata and how much it holds, as listed by ``sessions``."""

    id: int
    uid: str
    workstation_id: str
    patient_id: str | None
    source: str
    protocol: str
    port: str | None
    started: datetime
    ended: datetime | None
    note: str | None
    n_readings: int
    n_events: int


def time_us(item: Reading | DeviceEvent) -> int:
    """The stored time of an item: receipt time, else device time; ValueError if it has none."""
    t = item.t_received or item.t_device
    if t is None:
        raise ValueError(f"{type(item).__name__} has no time: {item!r}")
    return to_us(t)


def _opt_us(t: datetime | None) -> int | None:
    return None if t is None else to_us(t)


def _opt_dt(us: int | None) -> datetime | None:
    return None if us is None else from_us(us)


def _reading_row(session_id: int, r: Reading) -> dict[str, Any]:
    return {
        "session_id": session_id, "vital": str(r.vital), "value": float(r.value),
        "unit": r.unit, "quality": str(r.quality), "t_us": time_us(r),
        "t_device_us": _opt_us(r.t_device),
    }


def _event_row(session_id: int, e: DeviceEvent) -> dict[str, Any]:
    return {
        "session_id": session_id, "kind": str(e.kind),
        "vital": None if e.vital is None else str(e.vital), "detail": e.detail,
        "count": e.count, "t_us": time_us(e), "t_device_us": _opt_us(e.t_device),
    }


#: How far from ``[t0, t1)`` a block may be recorded and still hold samples within it.
WAVEFORM_MARGIN_US = 10_000_000


class Repository:
    """All SQL the app runs, over one engine; every database failure becomes a StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_session(
        self, *, source: str, protocol: str, started: datetime, port: str | None = None,
        patient_id: str | None = None, note: str | None = None, by: str | None = None,
        workstation_id: str | None = None,
    ) -> int:
        """Start a session and return its id; ``by`` (default: the OS login) is audited.

        ``workstation_id`` names the chair (``config.resolve_workstation``; default: host name).
        """
        values = {
            "uid": str(uuid.uuid4()), "workstation_id": workstation_id or socket.gethostname(),
            "patient_id": patient_id, "source": str(SessionSource(source)),
            "protocol": protocol, "port": port, "started_us": to_us(started), "note": note,
        }
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(SessionRow).returning(SessionRow.id), values)
                sid = int(new_id.scalar_one())
                audit.record_row(conn, "sessions", {**values, "id": sid}, action="create",
                                 actor=by or audit.current_user(), t_us=values["started_us"])
                return sid
        except SQLAlchemyError as exc:
            raise StoreError(f"could not create a session: {reason_of(exc)}") from exc

    def end_session(self, session_id: int, ended: datetime, by: str | None = None) -> None:
        """Record when a session ended (session metadata, not clinical data; audited)."""
        ended_us = to_us(ended)
        stmt = update(SessionRow).where(SessionRow.id == session_id).values(ended_us=ended_us)
        try:
            with self.engine.begin() as conn:
                if conn.execute(stmt).rowcount == 0:
                    raise StoreError(f"no session {session_id}")
                audit.record_row(conn, "session_end", {"id": session_id, "ended_us": ended_us},
                                 action="end", actor=by or audit.current_user(), t_us=ended_us)
                notify_changed(conn, session_id)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not end session {session_id}: {reason_of(exc)}") from exc

    def get_session(self, session_id: int) -> SessionInfo:
        """One session with its counts; StoreError if there is none."""
        found = self._sessions(SessionRow.id == session_id)
        if not found:
            raise StoreError(f"no session {session_id}")
        return found[0]

    def list_sessions(self) -> list[SessionInfo]:
        """Every session, newest first."""
        return self._sessions(None)

    def open_sessions(self, workstation_id: str, sources: Sequence[str]) -> list[SessionInfo]:
        """This workstation's sessions from ``sources`` that were never ended, newest first
        (asked at every start and Connect: filtered in SQL, not over every session)."""
        return self._sessions((SessionRow.ended_us.is_(None))
                              & (SessionRow.workstation_id == workstation_id)
                              & SessionRow.source.in_(list(sources)))

    def insert_readings(self, session_id: int, readings: Sequence[Reading]) -> None:
        """Append readings in one transaction."""
        self.insert_batch([(session_id, r) for r in readings], [])

    def insert_device_events(self, session_id: int, events: Sequence[DeviceEvent]) -> None:
        """Append device events in one transaction."""
        self.insert_batch([], [(session_id, e) for e in events])

    def insert_waveforms(self, session_id: int, blocks: Sequence[WaveformBlock]) -> None:
        """Append waveform blocks in one transaction."""
        self.insert_batch([], [], waveforms=[(session_id, b) for b in blocks])

    def insert_batch(
        self, readings: Sequence[tuple[int, Reading]], events: Sequence[tuple[int, DeviceEvent]],
        alarm_rows: Sequence[Mapping[str, Any]] = (),
        waveforms: Sequence[tuple[int, WaveformBlock]] = (),
    ) -> None:
        """Append readings, events, alarm-log rows and waveform blocks in one transaction,
        with the audit entries that cover them.

        ``alarm_rows`` are ``alarm_events`` insert parameters (``alarm_log.event_row``).
        """
        reading_rows = [_reading_row(sid, r) for sid, r in readings]
        event_rows = [_event_row(sid, e) for sid, e in events]
        block_rows = [block_row(sid, b) for sid, b in waveforms]
        try:
            with self.engine.begin() as conn:
                # The audit trail covers the batch in the same transaction (store/audit.py).
                audit.record_batch(conn, audit.insert_with_ids(conn, [
                    (ReadingRow, reading_rows), (DeviceEventRow, event_rows),
                    (AlarmEventRow, alarm_rows), (WaveformBlockRow, block_rows),
                ]))
                # The clinic overview's listener hears of it at commit (store/notify.py).
                notify_changed(conn, {row["session_id"] for rows in (
                    reading_rows, event_rows, alarm_rows, block_rows) for row in rows})
        except SQLAlchemyError as exc:
            raise StoreError(f"could not save data: {reason_of(exc)}") from exc

    def readings(self, session_id: int) -> list[Reading]:
        """A session's readings in time order, times as aware UTC datetimes."""
        stmt = (
            select(ReadingRow.vital, ReadingRow.value, ReadingRow.quality, ReadingRow.t_us,
                   ReadingRow.t_device_us)
            .where(ReadingRow.session_id == session_id)
            .order_by(ReadingRow.t_us, ReadingRow.id)
        )
        return [
            Reading(Vital(v), value, Quality(q), t_device=_opt_dt(t_dev), t_received=from_us(t))
            for v, value, q, t, t_dev in self._rows(stmt)
        ]

    def device_events(self, session_id: int) -> list[DeviceEvent]:
        """A session's device events in time order."""
        stmt = (
            select(DeviceEventRow.kind, DeviceEventRow.detail, DeviceEventRow.vital,
                   DeviceEventRow.count, DeviceEventRow.t_us, DeviceEventRow.t_device_us)
            .where(DeviceEventRow.session_id == session_id)
            .order_by(DeviceEventRow.t_us, DeviceEventRow.id)
        )
        return [
            DeviceEvent(DeviceEventKind(k), detail, None if v is None else Vital(v), count,
                        t_device=_opt_dt(t_dev), t_received=from_us(t))
            for k, detail, v, count, t, t_dev in self._rows(stmt)
        ]

    def waves(self, session_id: int) -> list[str]:
        """The names of the waves a session holds (e.g. ["pleth"]), sorted."""
        stmt = (select(WaveformBlockRow.wave).where(WaveformBlockRow.session_id == session_id)
                .distinct().order_by(WaveformBlockRow.wave))
        return [wave for (wave,) in self._rows(stmt)]

    def waveform_blocks(
        self, session_id: int, wave: str = "pleth", t0: datetime | None = None,
        t1: datetime | None = None,
    ) -> list[WaveformBlock]:
        """A session's blocks of one wave that start in ``[t0, t1)``, exactly as sent, in order."""
        return [block_of(row) for row in self._block_rows(session_id, wave, t0, t1)]

    def waveforms(
        self, session_id: int, wave: str = "pleth", t0: datetime | None = None,
        t1: datetime | None = None,
    ) -> WaveformTrace:
        """A session's samples of one wave in ``[t0, t1)`` as arrays (times, samples), in order.

        Blocks recorded up to ``WAVEFORM_MARGIN_US`` either side are read too: one that began
        before ``t0`` may hold samples after it, and one recorded just after ``t1`` may continue
        the sample clock from before it.
        """
        since = None if t0 is None else from_us(to_us(t0) - WAVEFORM_MARGIN_US)
        until = None if t1 is None else from_us(to_us(t1) + WAVEFORM_MARGIN_US)
        trace = trace_of(wave, self._block_rows(session_id, wave, since, until))
        if t0 is None and t1 is None:
            return trace
        lo = -(2**63) if t0 is None else to_us(t0)
        hi = 2**63 - 1 if t1 is None else to_us(t1)
        return trace.window(lo, hi)

    def _block_rows(
        self, session_id: int, wave: str, t0: datetime | None, t1: datetime | None
    ) -> list[Any]:
        row = WaveformBlockRow
        stmt = (
            select(row.wave, row.rate_hz, row.t_start_us, row.t_device_us, row.n_samples,
                   row.encoding, row.samples, row.scale, row.unit, row.quality)
            .where(row.session_id == session_id, row.wave == wave)
            .order_by(row.t_start_us, row.id)
        )
        if t0 is not None:
            stmt = stmt.where(row.t_start_us >= to_us(t0))
        if t1 is not None:
            stmt = stmt.where(row.t_start_us < to_us(t1))
        return self._rows(stmt)

    def _sessions(self, where: Any) -> list[SessionInfo]:
        n_readings = (
            select(func.count()).where(ReadingRow.session_id == SessionRow.id)
            .correlate(SessionRow).scalar_subquery()
        )
        n_events = (
            select(func.count()).where(DeviceEventRow.session_id == SessionRow.id)
            .correlate(SessionRow).scalar_subquery()
        )
        stmt = select(
            *SessionRow.__table__.columns, n_readings.label("n_readings"),
            n_events.label("n_events"),
        ).order_by(SessionRow.started_us.desc(), SessionRow.id.desc())
        if where is not None:
            stmt = stmt.where(where)
        return [
            SessionInfo(
                id=s.id, uid=s.uid, workstation_id=s.workstation_id, patient_id=s.patient_id,
                source=s.source, protocol=s.protocol, port=s.port, started=from_us(s.started_us),
                ended=_opt_dt(s.ended_us), note=s.note, n_readings=s.n_readings,
                n_events=s.n_events,
            )
            for s in self._rows(stmt)
        ]

    def _rows(self, stmt: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the database: {reason_of(exc)}") from exc


def reason_of(exc: BaseException) -> str:
    """The first line of the underlying driver error, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
