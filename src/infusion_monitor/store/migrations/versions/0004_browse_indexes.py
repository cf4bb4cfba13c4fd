"""Indexes for the session browser: sessions by start time, alarm events by priority.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alarm_events_session_id_priority", ["session_id", "priority", "event"], unique=False
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_started_us"), ["started_us"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_started_us"))

    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alarm_events_session_id_priority")
