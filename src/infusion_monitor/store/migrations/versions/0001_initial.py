"""Initial schema: sessions, readings, device events.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of models.RowId: a migration must not change when the models do.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("workstation_id", sa.String(255), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("protocol", sa.String(64), nullable=False),
        sa.Column("port", sa.String(255), nullable=True),
        sa.Column("started_us", sa.BigInteger(), nullable=False),
        sa.Column("ended_us", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("uid", name=op.f("uq_sessions_uid")),
    )
    op.create_table(
        "readings",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("vital", sa.String(32), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("t_device_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_readings_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    op.create_index(
        op.f("ix_readings_session_id_t_us"), "readings", ["session_id", "t_us"], unique=False
    )
    op.create_table(
        "device_events",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("vital", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("t_device_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_device_events_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_events")),
    )
    op.create_index(
        op.f("ix_device_events_session_id_t_us"),
        "device_events",
        ["session_id", "t_us"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_device_events_session_id_t_us"), table_name="device_events")
    op.drop_table("device_events")
    op.drop_index(op.f("ix_readings_session_id_t_us"), table_name="readings")
    op.drop_table("readings")
    op.drop_table("sessions")
