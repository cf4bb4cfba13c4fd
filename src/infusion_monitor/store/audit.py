"""The audit trail (after 21 CFR 11.10(e)): who did what, when and why, hash-chained.

Every create, amendment, acknowledgement, limit change, sign-off, export and login is an entry
written in the same transaction as the row it describes, so neither exists without the other.
Device data (readings, device events, waveform blocks, alarm events the engine raised) are
covered per write batch: one entry per batch and session whose row digest covers the batch's
rows. Entries form one chain per session ("session:<uid>") and one for the clinic ("clinic");
each carries the hash of the one before (store/audit_canon.py), so an edit or deletion made
outside the app is found by ``verify`` (store/audit_verify.py).
"""

from __future__ import annotations

import functools
import getpass
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from infusion_monitor.clock import from_us
from infusion_monitor.errors import StoreError
from infusion_monitor.store.audit_canon import (
    GENESIS,
    SOURCE_TABLE,
    canonical_row,
    detail_json,
    entry_hash,
    id_ranges,
    row_digest,
)
from infusion_monitor.store.audit_words import describe
from infusion_monitor.store.models import SessionRow
from infusion_monitor.store.models_clinical import AuditEntryRow

CLINIC_CHAIN = "clinic"
#: The actor of entries the app makes on its own (device data written by the recorder).
SYSTEM_ACTOR = "system"
#: How often an append retries after another workstation took the same place in the chain.
MAX_APPEND_ATTEMPTS = 50

#: What a user's act on an alarm is called in the audit trail (``alarm_events.event`` ->).
ALARM_ACTIONS = {"acknowledged": "acknowledge", "response": "respond", "paused": "pause_audio"}

#: The few columns of a row an entry repeats in its detail, so the trail reads on its own
#: (the row digest covers every column).
_SUMMARY = {
    "sessions": ("source", "protocol", "port", "patient_id", "workstation_id"),
    "session_end": ("ended_us",),
    "checkins": ("patient_id", "attending", "nurse", "weight_kg", "dose_mg_per_kg",
                 "planned_minutes"),
    "phase_markers": ("phase", "t_us", "voided"),
    "minute_entries": ("minute", "dissociation", "rass", "distress"),
    "notes": ("minute", "t_us"),
    "cadss_forms": ("timepoint", "t_us"),
    "alarm_events": ("alarm_uid", "event", "condition", "detail"),
    "limit_changes": ("condition", "old_value", "new_value"),
    "signoffs": ("printed_name", "role", "meaning"),
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the trail, as stored."""

    id: int
    chain: str
    seq: int
    session_id: int | None
    t_us: int
    actor: str
    action: str
    entity: str
    entity_id: int | None
    reason: str | None
    detail_json: str
    row_digest: str | None
    prev_hash: str
    hash: str

    @property
    def t(self) -> datetime:
        return from_us(self.t_us)

    @property
    def detail(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.detail_json or "{}")
        except ValueError:  # an edited row; verify() says so, a listing still shows it
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def what(self) -> str:
        """The act in words: "minute 10 amended", "alarm acknowledged", "exported pdf"."""
        return describe(self)

    @property
    def why(self) -> str:
        """The reason given, else the detail that explains the act (a response, a change)."""
        d = self.detail
        if self.reason:
            return self.reason
        if self.action == "respond":
            return str(d.get("detail") or "")
        if self.action in ("acknowledge", "pause_audio"):
            return str(d.get("condition") or "")
        return ""


def current_user() -> str:
    """Who runs the program (the OS login), until the app has users of its own."""
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError):
        return "unknown"


def now_us() -> int:
    return time.time_ns() // 1000


def session_chain(uid: str) -> str:
    return f"session:{uid}"


def _head_statement(clinic: bool) -> Any:
    """SELECT chain, seq and hash of its last entry (NULL chain: no such session)."""
    t = AuditEntryRow
    if clinic:
        chain: Any = literal(CLINIC_CHAIN, String)
    else:
        uid = (select(SessionRow.uid).where(SessionRow.id == bindparam("session_id", type_=Integer))
               .scalar_subquery())
        chain = literal("session:", String) + uid

    def last(column: Any) -> Any:
        return (select(column).where(t.chain == chain).order_by(t.seq.desc()).limit(1)
                .scalar_subquery())

    return select(chain.label("chain"), last(t.seq), last(t.hash))


# Built once: constructing them per append cost more than running them.
_HEADS = {True: _head_statement(clinic=True), False: _head_statement(clinic=False)}
_INSERT = insert(AuditEntryRow).returning(AuditEntryRow.id)
_PG_INSERT = (postgresql.insert(AuditEntryRow)
              .on_conflict_do_nothing(index_elements=["chain", "seq"])
              .returning(AuditEntryRow.id))


def _head(conn: Connection, session_id: int | None) -> tuple[str, int, str]:
    """(chain, seq of its last entry or 0, that entry's hash or GENESIS), in one query."""
    clinic = session_id is None
    row = conn.execute(_HEADS[clinic], {} if clinic else {"session_id": session_id}).one()
    if row[0] is None:
        raise StoreError(f"no session {session_id}")
    return row[0], int(row[1] or 0), row[2] or GENESIS


def append(conn: Connection, *, session_id: int | None, t_us: int, actor: str, action: str,
           entity: str, entity_id: int | None = None, reason: str | None = None,
           detail: Mapping[str, Any] | None = None, row_digest: str | None = None) -> AuditEntry:
    """Add an entry to the chain of ``session_id`` (or the clinic's) within ``conn``'s
    transaction; it commits or rolls back with the write it describes.

    The entry takes the next ``seq`` after the chain's head and links to the head's hash. If
    another workstation appends to the same chain at the same moment, the two inserts collide
    on UNIQUE (chain, seq): the second waits for the first to commit, inserts nothing, re-reads
    the head and takes the next place, so a chain never forks. On SQLite, append after the
    transaction's first write (or in a BEGIN IMMEDIATE one): the write lock then keeps every
    other writer out; a transaction that had only read fails with "database is locked" if
    another writer committed meanwhile (and still never forks).
    """
    values: dict[str, Any] = {
        "session_id": session_id, "t_us": int(t_us), "actor": actor, "action": action,
        "entity": entity, "entity_id": entity_id, "reason": reason,
        "detail": detail_json(detail), "row_digest": row_digest,
    }
    for _ in range(MAX_APPEND_ATTEMPTS):
        values["chain"], last_seq, values["prev_hash"] = _head(conn, session_id)
        values["seq"] = last_seq + 1
        values["hash"] = entry_hash(**{k: v for k, v in values.items() if k != "hash"})
        new_id = _insert_entry(conn, values)
        if new_id is not None:
            return entry_of({**values, "id": new_id})
        # That place in the chain was just taken by another workstation: link to the new head.
    raise StoreError(f"could not add to the audit trail ({values['chain']}): it stayed busy "
                     f"after {MAX_APPEND_ATTEMPTS} attempts; try again")


def _insert_entry(conn: Connection, values: Mapping[str, Any]) -> int | None:
    """INSERT one entry; None if its (chain, seq) was taken meanwhile."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # The transaction already holds the database's only write lock: nobody else can take
        # this place in the chain.
        return int(conn.execute(_INSERT, values).scalar_one())
    if dialect == "postgresql":
        # Waits for a competing insert of the same (chain, seq) to commit, then inserts
        # nothing; unlike a failed INSERT it leaves the transaction usable.
        found = conn.execute(_PG_INSERT, values).scalar()
        return None if found is None else int(found)
    try:
        with conn.begin_nested():
            return int(conn.execute(_INSERT, values).scalar_one())
    except IntegrityError:
        return None


def record_row(conn: Connection, table: str, row: Mapping[str, Any], *, actor: str,
               action: str, t_us: int, reason: str | None = None) -> AuditEntry:
    """The entry for one clinical row just written (``row`` holds its columns and ``id``).

    ``table`` is a key of ``audit_canon.COLUMNS``; ``session_end`` means the end time of the
    ``sessions`` row ``row["id"]``.
    """
    session_id = row["id"] if SOURCE_TABLE[table] == "sessions" else row["session_id"]
    detail = {k: row[k] for k in _SUMMARY[table] if row.get(k) is not None}
    if row.get("amends_id") is not None:
        detail["amends"] = row["amends_id"]
    return append(conn, session_id=session_id, t_us=t_us, actor=actor, action=action,
                  entity=SOURCE_TABLE[table], entity_id=row["id"], reason=reason,
                  detail=detail, row_digest=row_digest({table: [canonical_row(table, row)]}))


def record_chart_row(conn: Connection, table: str, row: Mapping[str, Any]) -> AuditEntry:
    """A charted row (check-in, marker, minute, note, CADSS): a create, or an amendment."""
    action = "create" if row.get("amends_id") is None else "amend"
    return record_row(conn, table, row, actor=row["entered_by"], action=action,
                      t_us=row["entered_us"], reason=row.get("reason"))


def record_batch(conn: Connection, written: Mapping[str, Sequence[Mapping[str, Any]]],
                 t_us: int | None = None) -> list[AuditEntry]:
    """Entries for a write batch (table -> rows with their ids), per session in id order.

    An alarm event carrying a user (acknowledged, response, audio paused) is that user's act
    and gets an entry of its own; every other row is covered by one "record" entry per session
    whose row digest covers them all.
    """
    acts: dict[int, list[Mapping[str, Any]]] = {}
    data: dict[int, dict[str, list[list[Any]]]] = {}
    for table, rows in written.items():
        for row in rows:
            sid = row["session_id"]
            if table == "alarm_events" and row.get("by_user"):
                acts.setdefault(sid, []).append(row)
            else:
                data.setdefault(sid, {}).setdefault(table, []).append(canonical_row(table, row))
    stamp = now_us() if t_us is None else t_us
    out = []
    for sid in sorted(acts.keys() | data.keys()):
        for row in sorted(acts.get(sid, ()), key=lambda r: r["id"]):
            event = str(row["event"])
            out.append(record_row(conn, "alarm_events", row, actor=str(row["by_user"]),
                                  action=ALARM_ACTIONS.get(event, f"alarm_{event}"),
                                  t_us=row["t_us"]))
        rows_of = data.get(sid)
        if rows_of:
            ranges = {table: id_ranges(r[0] for r in rows) for table, rows in rows_of.items()}
            out.append(append(conn, session_id=sid, t_us=stamp, actor=SYSTEM_ACTOR,
                              action="record", entity="+".join(sorted(rows_of)),
                              detail={"rows": ranges}, row_digest=row_digest(rows_of)))
    return out


@functools.cache
def _max_id(model: Any) -> Any:
    return select(func.max(model.id))


def insert_with_ids(conn: Connection, batch: Sequence[tuple[Any, Sequence[Mapping[str, Any]]]]
                    ) -> dict[str, list[dict[str, Any]]]:
    """Bulk INSERT rows of several tables; returns each table's rows with their new ``id``.

    ``RETURNING`` in parameter order would do, but SQLAlchemy runs it a row at a time on
    SQLite (no sentinel) and as a costly INSERT .. SELECT on PostgreSQL, halving the writer's
    throughput. So: PostgreSQL draws every table's ids from its own sequence in one query and
    inserts them; SQLite inserts, then reads the new ids off ``max(id)``: the transaction
    holds the database's only write lock, and SQLite gives each new row ``max(rowid) + 1``.
    """
    batch = [(model, list(rows)) for model, rows in batch if rows]
    out: dict[str, list[dict[str, Any]]] = {}
    dialect = conn.dialect.name
    if dialect == "postgresql" and batch:
        draws = " UNION ALL ".join(
            f"SELECT {k} AS k, nextval(pg_get_serial_sequence(:t{k}, 'id')) AS id "
            f"FROM generate_series(1, :n{k})" for k in range(len(batch)))
        params = {}
        for k, (model, rows) in enumerate(batch):
            params |= {f"t{k}": model.__table__.name, f"n{k}": len(rows)}
        ids: dict[int, list[int]] = {}
        for k, i in conn.execute(text(draws), params):
            ids.setdefault(k, []).append(int(i))
        for k, (model, rows) in enumerate(batch):
            out[model.__tablename__] = [{**row, "id": i}
                                        for row, i in zip(rows, sorted(ids[k]), strict=True)]
            conn.execute(insert(model), out[model.__tablename__])
        return out
    for model, rows in batch:
        if dialect == "sqlite":
            conn.execute(insert(model), rows)
            last = int(conn.execute(_max_id(model)).scalar_one())
            new_ids: Sequence[int] = range(last - len(rows) + 1, last + 1)
        else:
            stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
            new_ids = conn.execute(stmt, rows).scalars().all()
        out[model.__tablename__] = [{**row, "id": int(i)}
                                    for row, i in zip(rows, new_ids, strict=True)]
    return out


class AuditLog:
    """Reads the trail, checks it, and records acts that have no clinical row (exports,
    logins); failures become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_event(self, action: str, *, actor: str, session_id: int | None = None,
                     entity: str | None = None, entity_id: int | None = None,
                     reason: str | None = None, detail: Mapping[str, Any] | None = None,
                     t_us: int | None = None) -> AuditEntry:
        """Append an act in a transaction of its own (an export of a session goes to that
        session's chain; a login, with no session, to the clinic's)."""
        try:
            with self.engine.connect() as conn:
                # SQLite: take the write lock before reading the chain's head (see db.py).
                conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    return append(
                        conn, session_id=session_id, t_us=now_us() if t_us is None else t_us,
                        actor=actor, action=action,
                        entity=entity or ("sessions" if session_id is not None else "clinic"),
                        entity_id=session_id if entity_id is None else entity_id,
                        reason=reason, detail=detail)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not add to the audit trail: {_reason(exc)}") from exc

    def entries(self, session_id: int | None = None, *, batches: bool = True
                ) -> list[AuditEntry]:
        """A session's entries (every entry when ``session_id`` is None), by chain and seq;
        ``batches=False`` leaves out the per-batch device-data entries."""
        t = AuditEntryRow
        stmt = select(t.__table__).order_by(t.chain, t.seq)
        if session_id is not None:
            stmt = stmt.where(t.session_id == session_id)
        if not batches:
            stmt = stmt.where(t.action != "record")
        try:
            with self.engine.connect() as conn:
                return [entry_of(dict(r._mapping)) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the audit trail: {_reason(exc)}") from exc

    def verify(self, session_id: int | None = None) -> Any:
        """Check every chain (or one session's): see ``audit_verify.verify``."""
        from infusion_monitor.store.audit_verify import verify

        return verify(self.engine, session_id)


def record_event(engine: Engine, action: str, *, actor: str, session_id: int | None = None,
                 **fields: Any) -> AuditEntry:
    """Record an act that has no clinical row (a login, an export) in a transaction of its
    own: ``AuditLog(engine).record_event``, for callers that hold only an engine."""
    return AuditLog(engine).record_event(action, actor=actor, session_id=session_id, **fields)


def export_recorder(engine: Engine, actor: str | None = None
                    ) -> Callable[[Any, str, Path, int], None]:
    """The ``audit`` hook of ``export.formats.write_export``: records who exported which
    session, as what, to where. It can append an "export" entry and do nothing else."""
    log = AuditLog(engine)
    who = actor or current_user()

    def record_export(record: Any, fmt: str, path: Path, count: int) -> None:
        log.record_event("export", actor=who, session_id=record.info.id,
                         detail={"format": fmt, "file": str(path), "count": count})

    return record_export


def entry_of(r: Mapping[str, Any]) -> AuditEntry:
    """An ``audit_log`` row (a mapping of its columns) as an ``AuditEntry``."""
    return AuditEntry(
        id=int(r["id"]), chain=r["chain"], seq=int(r["seq"]), session_id=r["session_id"],
        t_us=int(r["t_us"]), actor=r["actor"], action=r["action"], entity=r["entity"],
        entity_id=r["entity_id"], reason=r["reason"], detail_json=r["detail"],
        row_digest=r["row_digest"], prev_hash=r["prev_hash"], hash=r["hash"],
    )


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
