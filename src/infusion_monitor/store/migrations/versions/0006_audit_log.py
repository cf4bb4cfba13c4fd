"""The hash-chained audit trail; sessions recorded before it are adopted as they are found.

Every session already in the database gets one "adopt" entry opening its chain, whose row
digest covers all of its rows as they are at the upgrade: from then on an edit or deletion of
those rows is detectable like any other. What happened to them before the upgrade is not
known, and the entry says so.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# The version 1 encoding is a frozen contract (see its docstring), so a migration may use it.
from infusion_monitor.store.audit_canon import (
    COLUMNS,
    GENESIS,
    SESSION_TABLES,
    canonical_row,
    detail_json,
    entry_hash,
    id_ranges,
    row_digest,
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADOPT_REASON = ("recorded before the audit trail existed: this entry covers its rows as they "
                "were found at the upgrade")

# Frozen copy of the table as this revision creates it.
_AUDIT_LOG = sa.table(
    "audit_log", sa.column("chain"), sa.column("seq"), sa.column("session_id"),
    sa.column("t_us"), sa.column("actor"), sa.column("action"), sa.column("entity"),
    sa.column("entity_id"), sa.column("reason"), sa.column("detail"), sa.column("row_digest"),
    sa.column("prev_hash"), sa.column("hash"),
)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("row_digest", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_audit_log_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("chain", "seq", name="uq_audit_log_chain_seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_session_id"), ["session_id"],
                              unique=False)
    _adopt_existing(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_session_id"))
    op.drop_table("audit_log")


def _table(name: str) -> Any:
    return sa.table(name, *(sa.column(c) for c, _ in COLUMNS[name]))


def _adopt_existing(conn: sa.Connection) -> None:
    """One "adopt" entry per existing session, and one for clinic-wide limit changes."""
    now = int(time.time() * 1_000_000)
    sessions = sa.table("sessions", sa.column("ended_us"),
                        *(sa.column(c) for c, _ in COLUMNS["sessions"]))
    for s in conn.execute(sa.select(sessions).order_by(sessions.c.id)).mappings().all():
        rows: dict[str, list[list[Any]]] = {"sessions": [canonical_row("sessions", s)]}
        if s["ended_us"] is not None:
            rows["session_end"] = [canonical_row("session_end", s)]
        for name in SESSION_TABLES:
            t = _table(name)
            found = conn.execute(sa.select(t).where(t.c.session_id == s["id"]).order_by(t.c.id))
            canon = [canonical_row(name, r) for r in found.mappings()]
            if canon:
                rows[name] = canon
        _append(conn, f"session:{s['uid']}", s["id"], now, rows, entity_id=s["id"])
    t = _table("limit_changes")
    found = conn.execute(sa.select(t).where(t.c.session_id.is_(None)).order_by(t.c.id))
    clinic = [canonical_row("limit_changes", r) for r in found.mappings()]
    if clinic:
        _append(conn, "clinic", None, now, {"limit_changes": clinic}, entity_id=None)


def _append(conn: sa.Connection, chain: str, session_id: int | None, t_us: int,
            rows: dict[str, list[list[Any]]], entity_id: int | None) -> None:
    """The first entry of a new chain (nothing else writes during a migration)."""
    found: dict[str, Any] = {"rows": {name: id_ranges(r[0] for r in canon)
                                      for name, canon in rows.items()}}
    if "session_end" in rows:
        found["ended_us"] = rows["session_end"][0][1]
    detail = detail_json(found)
    values = {
        "chain": chain, "seq": 1, "session_id": session_id, "t_us": t_us, "actor": "upgrade",
        "action": "adopt", "entity": "sessions" if session_id is not None else "limit_changes",
        "entity_id": entity_id, "reason": ADOPT_REASON, "detail": detail,
        "row_digest": row_digest(rows), "prev_hash": GENESIS,
    }
    values["hash"] = entry_hash(**{k: v for k, v in values.items() if k != "hash"})
    conn.execute(sa.insert(_AUDIT_LOG), values)
