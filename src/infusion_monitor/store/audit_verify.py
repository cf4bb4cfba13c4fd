"""Checking the audit trail: every link, every entry's hash, every covered row, every row covered.

``verify`` walks each chain in ``seq`` order and reports, per entry, the first thing wrong:

* ``sequence gap (audit row deleted)``: a ``seq`` is missing before this entry;
* ``hash mismatch (audit row edited)``: the entry's fields no longer give its hash;
* ``link broken``: the entry's hash is not what the next entry links to (the entry was edited
  and re-hashed, or replaced);
* ``row missing`` / ``row digest mismatch``: the clinical rows the entry covers were deleted or
  changed since they were recorded (digests are recomputed from the rows as they are now).

Then, per chain, rows nobody recorded: a row of the session that no entry covers was added
outside the app. A session without any chain was created outside the app, or lost its trail.
Everything is read in one snapshot, so a recording running meanwhile cannot look like tampering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.errors import StoreError
from infusion_monitor.store.audit import CLINIC_CHAIN, AuditEntry, entry_of, session_chain
from infusion_monitor.store.audit_canon import (
    CLINIC_TABLES,
    COLUMNS,
    GENESIS,
    SESSION_TABLES,
    SOURCE_TABLE,
    canonical_row,
    entry_hash,
    range_ids,
    ranges_text,
    row_digest,
)
from infusion_monitor.store.models import SessionRow
from infusion_monitor.store.models_clinical import AuditEntryRow
from infusion_monitor.store.repository import reason_of

#: Problems listed at most (the first is what matters; the rest show the extent).
MAX_PROBLEMS = 200


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken thing: at an entry, or in a chain as a whole (an uncovered row)."""

    what: str
    chain: str
    entry_id: int | None = None
    seq: int | None = None
    session_id: int | None = None

    def __str__(self) -> str:
        if self.entry_id is not None:
            return f"at entry #{self.entry_id} (chain {self.chain}, seq {self.seq}): {self.what}"
        where = f"session {self.session_id}" if self.session_id is not None else "the clinic"
        return f"in chain {self.chain} ({where}): {self.what}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify`` found: how much it checked, and every problem (the first one first)."""

    entries: int
    chains: int
    problems: tuple[Problem, ...] = ()
    adopted: int = 0  # sessions whose trail starts at the upgrade that introduced it

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def verify(engine: Engine, session_id: int | None = None) -> VerifyResult:
    """Check the whole trail, or one session's chain (StoreError if there is no such session)."""
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return _Verifier(conn).run(session_id)
    except SQLAlchemyError as exc:
        raise StoreError(f"could not check the audit trail: {reason_of(exc)}") from exc


def _table(name: str) -> Any:
    """The source table with every column any covered part of it has."""
    source = SOURCE_TABLE[name]
    cols = {c for part, src in SOURCE_TABLE.items() if src == source for c, _ in COLUMNS[part]}
    if source == "sessions":
        cols |= {"ended_us"}
    return sa.table(source, *(sa.column(c) for c in sorted(cols)))


@dataclass
class _Rows:
    """The rows of one session (or of the clinic: session_id None), by table and id."""

    conn: Connection
    session_id: int | None
    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def of(self, name: str) -> dict[int, dict[str, Any]]:
        if name not in self.tables:
            t = _table(name)
            if SOURCE_TABLE[name] == "sessions":
                where = t.c.id == self.session_id
            elif name in CLINIC_TABLES:  # the clinic's, whole
                where = sa.true() if self.session_id is None else sa.false()
            elif self.session_id is None:
                where = t.c.session_id.is_(None)
            else:
                where = t.c.session_id == self.session_id
            rows = self.conn.execute(sa.select(t).where(where)).mappings()
            self.tables[name] = {int(r["id"]): dict(r) for r in rows}
        return self.tables[name]

    def elsewhere(self, name: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Rows the entry covers that are no longer this session's (moved, not deleted)."""
        t = _table(name)
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            found = self.conn.execute(sa.select(t).where(t.c.id.in_(ids[i:i + 500])))
            out.update((int(r["id"]), dict(r)) for r in found.mappings())
        return out


class _Verifier:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.problems: list[Problem] = []
        self.entries = 0
        self.chains = 0
        self.adopted = 0

    def run(self, session_id: int | None) -> VerifyResult:
        s = SessionRow
        t = AuditEntryRow
        if session_id is None:
            sessions = self.conn.execute(sa.select(s.id, s.uid).order_by(s.id)).all()
            chains = set(self.conn.execute(sa.select(t.chain).distinct()).scalars())
            self._chain(CLINIC_CHAIN, None)
        else:
            sessions = self.conn.execute(sa.select(s.id, s.uid).where(s.id == session_id)).all()
            if not sessions:
                raise StoreError(f"no session {session_id}")
            chains = set(self.conn.execute(
                sa.select(t.chain).where(t.session_id == session_id).distinct()).scalars())
        chains.discard(CLINIC_CHAIN)
        for sid, uid in sessions:
            name = session_chain(uid)
            chains.discard(name)
            self._chain(name, sid)
        for name in sorted(chains):  # chains whose session row is gone (or its uid changed)
            self._chain(name, None, orphan=True)
        return VerifyResult(self.entries, self.chains, tuple(self.problems), self.adopted)

    def _problem(self, what: str, chain: str, e: AuditEntry | None = None,
                 session_id: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(
                what, chain, None if e is None else e.id, None if e is None else e.seq,
                session_id if e is None else e.session_id))

    def _chain(self, chain: str, session_id: int | None, *, orphan: bool = False) -> None:
        t = AuditEntryRow
        found = self.conn.execute(
            sa.select(t.__table__).where(t.chain == chain).order_by(t.seq)).mappings()
        entries = [entry_of(r) for r in found]
        if entries:
            self.chains += 1
            self.entries += len(entries)
            if entries[0].action == "adopt" and session_id is not None:
                self.adopted += 1
        elif session_id is not None:
            self._problem("the session has no audit trail (created outside the app, or its "
                          "entries were deleted)", chain, session_id=session_id)
            return
        if orphan:
            session_id = entries[0].session_id  # the hash covers it
        rows = _Rows(self.conn, session_id)
        covered: dict[str, set[int]] = {}
        last_end = max((e.seq for e in entries if "session_end" in _coverage(e)), default=None)
        # An account's latest entry covers it as it is now; earlier ones it superseded.
        last_account: dict[int, int] = {}
        for e in entries:
            for i in range_ids(_coverage(e).get("users", ())):
                last_account[i] = e.seq
        prev: AuditEntry | None = None
        for e in entries:
            self._links(chain, prev, e)
            superseded = any(last_account[i] != e.seq
                             for i in range_ids(_coverage(e).get("users", ())))
            self._rows(chain, e, rows, covered, latest_end=e.seq == last_end,
                       superseded=superseded)
            prev = e
        self._uncovered(chain, session_id, rows, covered)

    def _links(self, chain: str, prev: AuditEntry | None, e: AuditEntry) -> None:
        expected_seq = 1 if prev is None else prev.seq + 1
        if e.seq != expected_seq:
            gap = (f"seq {expected_seq}" if e.seq == expected_seq + 1
                   else f"seq {expected_seq}-{e.seq - 1}")
            self._problem(f"sequence gap (audit row deleted): {gap} is missing before this "
                          "entry", chain, e)
        elif e.prev_hash != (GENESIS if prev is None else prev.hash):
            if prev is None:
                self._problem("link broken: the first entry does not start the chain (audit "
                              "row edited or replaced)", chain, e)
            else:  # name the entry that changed: the one whose hash is not linked to
                self._problem(f"link broken: seq {e.seq} links to another hash (audit row "
                              "edited and re-hashed, or replaced)", chain, prev)
        recomputed = entry_hash(
            prev_hash=e.prev_hash, chain=e.chain, seq=e.seq, session_id=e.session_id,
            t_us=e.t_us, actor=e.actor, action=e.action, entity=e.entity,
            entity_id=e.entity_id, reason=e.reason, detail=e.detail_json,
            row_digest=e.row_digest)
        if recomputed != e.hash:
            self._problem("hash mismatch (audit row edited)", chain, e)

    def _rows(self, chain: str, e: AuditEntry, rows: _Rows, covered: dict[str, set[int]],
              latest_end: bool, superseded: bool = False) -> None:
        coverage = _coverage(e)
        if not coverage or e.row_digest is None:
            return
        if superseded:  # a later entry of the same account is checked against its row
            for name, ranges in coverage.items():
                covered.setdefault(name, set()).update(range_ids(ranges))
            return
        canon: dict[str, list[list[Any]]] = {}
        missing: list[tuple[str, int]] = []
        for name, ranges in sorted(coverage.items()):
            ids = range_ids(ranges)
            covered.setdefault(name, set()).update(ids)
            have = rows.of(name)
            gone = [i for i in ids if i not in have]
            moved = rows.elsewhere(name, gone) if gone else {}
            missing += [(name, i) for i in gone if i not in moved]
            found = [have.get(i) or moved.get(i) for i in ids]
            if name == "session_end" and not latest_end:
                # A later end entry replaced the end time; this one is checked against itself.
                found = [{**r, "ended_us": e.detail.get("ended_us")} for r in found if r]
            canon[name] = [canonical_row(name, r) for r in found if r is not None]
        if missing:
            name, i = missing[0]
            more = f" (and {len(missing) - 1} more rows)" if len(missing) > 1 else ""
            self._problem(f"row missing: {SOURCE_TABLE[name]} id {i} deleted{more}", chain, e)
        elif row_digest(canon) != e.row_digest:
            what = ", ".join(dict.fromkeys(_rows_text(n, r) for n, r in sorted(coverage.items())))
            self._problem(f"row digest mismatch: {what} changed since recorded", chain, e)

    def _uncovered(self, chain: str, session_id: int | None, rows: _Rows,
                   covered: dict[str, set[int]]) -> None:
        tables: Iterable[str] = (SESSION_TABLES if session_id is not None
                                 else ("limit_changes", *CLINIC_TABLES))
        said: set[tuple[str, int]] = set()
        for name in tables:
            extra = sorted(set(rows.of(name)) - covered.get(name, set()))
            if extra and (SOURCE_TABLE[name], extra[0]) not in said:  # an account is 2 parts
                said.add((SOURCE_TABLE[name], extra[0]))
                more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
                self._problem(f"row not in the audit trail: {SOURCE_TABLE[name]} id "
                              f"{extra[0]}{more} "
                              "(added outside the app)", chain, session_id=session_id)
        if session_id is None:
            return
        session = rows.of("sessions").get(session_id)
        if session is not None and session_id not in covered.get("sessions", set()):
            self._problem(f"row not in the audit trail: sessions id {session_id} (no entry "
                          "records its creation)", chain, session_id=session_id)
        if (session is not None and session["ended_us"] is not None
                and session_id not in covered.get("session_end", set())):
            self._problem(f"sessions id {session_id}: end time set outside the app (no entry "
                          "records it)", chain, session_id=session_id)


def _rows_text(name: str, ranges: list[list[int]]) -> str:
    """Rows as a message names them: "readings 120-180", "end time of sessions id 3"."""
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    rows = f"{SOURCE_TABLE[name]} " + (f"id {ranges[0][0]}" if single else ranges_text(ranges))
    return f"end time of {rows}" if name == "session_end" else rows


def _coverage(e: AuditEntry) -> dict[str, list[list[int]]]:
    """The rows an entry covers: table -> id ranges."""
    if e.row_digest is None:
        return {}
    rows = e.detail.get("rows")
    if isinstance(rows, dict):
        try:
            return {str(k): [[int(a), int(b)] for a, b in v] for k, v in rows.items()
                    if k in COLUMNS}
        except (TypeError, ValueError):  # an edited detail: its hash mismatch is reported
            return {}
    if e.entity_id is None:
        return {}
    name = "session_end" if (e.entity, e.action) == ("sessions", "end") else e.entity
    return {name: [[e.entity_id, e.entity_id]]} if name in COLUMNS else {}
