"""The alarm log: append alarm events and limit changes, read them back, fold them into alarms.

Rows are append-only (``alarm_events``, ``limit_changes``). One alarm is the rows sharing an
``alarm_uid``; ``fold`` turns them into an ``AlarmRecord`` with start, end, worst value,
acknowledgement and responses. Audio-pause rows are kept but are not alarms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.errors import StoreError
from infusion_monitor.store import audit
from infusion_monitor.store.models_clinical import AlarmEventRow, LimitChangeRow
from infusion_monitor.store.repository import reason_of

#: Rows with this condition are audio pauses, not alarms.
AUDIO_PAUSED = "audio_paused"


@dataclass(frozen=True, slots=True)
class AlarmEventRecord:
    """One ``alarm_events`` row, as the store sees it (no engine types here)."""

    alarm_uid: str
    event: str
    condition: str
    parameter: str | None
    priority: str  # high | medium | low | technical
    time: datetime
    value: float | None = None
    limit: float | None = None
    latched: bool = False
    by: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LimitChangeRecord:
    """One ``limit_changes`` row: who changed which limit, when, from what to what, and why."""

    condition: str
    old_value: float | None
    new_value: float | None
    time: datetime
    by: str
    reason: str
    session_id: int | None = None


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """One alarm of the log, folded from its rows."""

    uid: str
    condition: str
    parameter: str | None
    priority: str  # the highest it reached: high | medium | low | technical
    start: datetime
    end: datetime | None
    worst_value: float | None
    limit: float | None
    latched: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    cleared: datetime | None
    escalated: bool
    text: str
    responses: tuple[str, ...] = ()

    @property
    def technical(self) -> bool:
        return self.priority == "technical"

    @property
    def response(self) -> str:
        return "; ".join(self.responses)


def event_row(session_id: int, rec: AlarmEventRecord) -> dict[str, Any]:
    """The insert parameters of one record."""
    return {
        "session_id": session_id, "alarm_uid": rec.alarm_uid, "event": rec.event,
        "condition": rec.condition, "parameter": rec.parameter, "priority": rec.priority,
        "value": rec.value, "limit_value": rec.limit, "latched": rec.latched,
        "t_us": to_us(rec.time), "by_user": rec.by, "detail": rec.detail,
    }


_RANK = {"low": 1, "medium": 2, "high": 3}


def fold(records: Iterable[AlarmEventRecord]) -> list[AlarmRecord]:
    """Alarms from their event rows (any order of alarms; rows of one alarm in time order)."""
    by_uid: dict[str, list[AlarmEventRecord]] = {}
    for rec in records:
        if rec.condition != AUDIO_PAUSED:
            by_uid.setdefault(rec.alarm_uid, []).append(rec)
    out = []
    for uid, rows in by_uid.items():
        raised = next((r for r in rows if r.event == "raised"), None)
        if raised is None:
            continue  # a stray row without its start cannot make an alarm
        ends = [r for r in rows if r.event == "ended"]
        acks = [r for r in rows if r.event == "acknowledged"]
        clears = [r for r in rows if r.event == "cleared"]
        worst = [r.value for r in rows
                 if r.event in ("raised", "worsened", "ended") and r.value is not None]
        priority = max((r.priority for r in rows), key=lambda p: _RANK.get(p, 0))
        out.append(AlarmRecord(
            uid=uid, condition=raised.condition, parameter=raised.parameter, priority=priority,
            start=raised.time, end=ends[0].time if ends else None,
            worst_value=worst[-1] if worst else None, limit=raised.limit,
            latched=raised.latched,
            acknowledged_by=acks[0].by if acks else None,
            acknowledged_at=acks[0].time if acks else None,
            cleared=clears[0].time if clears else None,
            escalated=any(r.event == "escalated" for r in rows), text=raised.detail,
            responses=tuple(r.detail for r in rows if r.event == "response"),
        ))
    return sorted(out, key=lambda a: (a.start, a.condition))


class AlarmLog:
    """Reads and appends the alarm log of any session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, session_id: int, records: Sequence[AlarmEventRecord]) -> None:
        """Append alarm events in one transaction (the live path goes through StoreWriter),
        audited as the writer's batches are."""
        rows = [event_row(session_id, r) for r in records]
        self._insert(lambda conn: audit.record_batch(
            conn, audit.insert_with_ids(conn, [(AlarmEventRow, rows)])), rows)

    def append_limit_changes(self, changes: Sequence[LimitChangeRecord]) -> None:
        """Append limit changes in one transaction, each with its audit entry (a clinic-wide
        change, without a session, goes to the clinic's chain)."""
        rows = [{"session_id": c.session_id, "condition": c.condition,
                 "old_value": c.old_value, "new_value": c.new_value, "t_us": to_us(c.time),
                 "by_user": c.by, "reason": c.reason} for c in changes]

        def write(conn: Connection) -> None:
            for row in audit.insert_with_ids(conn, [(LimitChangeRow, rows)])["limit_changes"]:
                audit.record_row(conn, "limit_changes", row, actor=row["by_user"],
                                 action="limit_change", t_us=row["t_us"], reason=row["reason"])

        self._insert(write, rows)

    def events(self, session_id: int) -> list[AlarmEventRecord]:
        """A session's alarm event rows in time order."""
        t = AlarmEventRow
        stmt = (select(t.alarm_uid, t.event, t.condition, t.parameter, t.priority, t.t_us,
                       t.value, t.limit_value, t.latched, t.by_user, t.detail)
                .where(t.session_id == session_id).order_by(t.t_us, t.id))
        return [AlarmEventRecord(uid, ev, cond, param, prio, from_us(t_us), value, limit,
                                 bool(latched), by, detail)
                for uid, ev, cond, param, prio, t_us, value, limit, latched, by, detail
                in self._rows(stmt)]

    def alarms(self, session_id: int) -> list[AlarmRecord]:
        """A session's alarms, folded, in the order they started."""
        return fold(self.events(session_id))

    def limit_changes(self, session_id: int | None) -> list[LimitChangeRecord]:
        """Changes for one session, or the clinic-wide ones (``None``), in time order."""
        t = LimitChangeRow
        where = t.session_id.is_(None) if session_id is None else t.session_id == session_id
        stmt = (select(t.condition, t.old_value, t.new_value, t.t_us, t.by_user, t.reason,
                       t.session_id).where(where).order_by(t.t_us, t.id))
        return [LimitChangeRecord(cond, old, new, from_us(t_us), by, reason, sid)
                for cond, old, new, t_us, by, reason, sid in self._rows(stmt)]

    def _insert(self, write: Callable[[Connection], object], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                write(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not save the alarm log: {reason_of(exc)}") from exc

    def _rows(self, stmt: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the alarm log: {reason_of(exc)}") from exc
