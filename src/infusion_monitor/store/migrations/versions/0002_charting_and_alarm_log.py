"""Charting (check-in, phase markers, minute entries, notes, CADSS-6) and the alarm log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarm_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("alarm_uid", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("condition", sa.String(length=48), nullable=False),
        sa.Column("parameter", sa.String(length=32), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("limit_value", sa.Double(), nullable=True),
        sa.Column("latched", sa.Boolean(), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("by_user", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_alarm_events_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
    )
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_events_alarm_uid"), ["alarm_uid"], unique=False)
        batch_op.create_index(
            "ix_alarm_events_session_id_t_us", ["session_id", "t_us"], unique=False
        )

    op.create_table(
        "cadss_forms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("timepoint", sa.String(length=16), nullable=False),
        sa.Column("item1", sa.Integer(), nullable=False),
        sa.Column("item2", sa.Integer(), nullable=False),
        sa.Column("item6", sa.Integer(), nullable=False),
        sa.Column("item7", sa.Integer(), nullable=False),
        sa.Column("item15", sa.Integer(), nullable=False),
        sa.Column("item22", sa.Integer(), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=False),
        sa.Column("amends_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["cadss_forms.id"], name=op.f("fk_cadss_forms_amends_id_cadss_forms")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_cadss_forms_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadss_forms")),
    )
    with op.batch_alter_table("cadss_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cadss_forms_session_id"), ["session_id"], unique=False)

    op.create_table(
        "checkins",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=128), nullable=False),
        sa.Column("patient_name", sa.String(length=256), nullable=False),
        sa.Column("birth_date", sa.String(length=10), nullable=True),
        sa.Column("weight_kg", sa.Double(), nullable=True),
        sa.Column("dose_mg_per_kg", sa.Double(), nullable=True),
        sa.Column("planned_minutes", sa.Integer(), nullable=True),
        sa.Column("attending", sa.String(length=128), nullable=False),
        sa.Column("nurse", sa.String(length=128), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=False),
        sa.Column("amends_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["checkins.id"], name=op.f("fk_checkins_amends_id_checkins")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_checkins_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkins_session_id"), ["session_id"], unique=False)

    op.create_table(
        "limit_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("condition", sa.String(length=48), nullable=False),
        sa.Column("old_value", sa.Double(), nullable=True),
        sa.Column("new_value", sa.Double(), nullable=True),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("by_user", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_limit_changes_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_changes")),
    )
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_limit_changes_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "minute_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("dissociation", sa.Integer(), nullable=True),
        sa.Column("rass", sa.Integer(), nullable=True),
        sa.Column("distress", sa.Integer(), nullable=True),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=False),
        sa.Column("amends_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["minute_entries.id"],
            name=op.f("fk_minute_entries_amends_id_minute_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_minute_entries_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minute_entries")),
    )
    with op.batch_alter_table("minute_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_minute_entries_session_id_minute", ["session_id", "minute"], unique=False
        )

    op.create_table(
        "notes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=False),
        sa.Column("amends_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["amends_id"], ["notes.id"], name=op.f("fk_notes_amends_id_notes")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_notes_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index("ix_notes_session_id_t_us", ["session_id", "t_us"], unique=False)

    op.create_table(
        "phase_markers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("t_us", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=False),
        sa.Column("amends_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["phase_markers.id"],
            name=op.f("fk_phase_markers_amends_id_phase_markers"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_phase_markers_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase_markers")),
    )
    with op.batch_alter_table("phase_markers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phase_markers_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("phase_markers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phase_markers_session_id"))

    op.drop_table("phase_markers")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index("ix_notes_session_id_t_us")

    op.drop_table("notes")
    with op.batch_alter_table("minute_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_minute_entries_session_id_minute")

    op.drop_table("minute_entries")
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_limit_changes_session_id"))

    op.drop_table("limit_changes")
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkins_session_id"))

    op.drop_table("checkins")
    with op.batch_alter_table("cadss_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cadss_forms_session_id"))

    op.drop_table("cadss_forms")
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alarm_events_session_id_t_us")
        batch_op.drop_index(batch_op.f("ix_alarm_events_alarm_uid"))

    op.drop_table("alarm_events")
