"""Clinic defaults in the database (issue 7: admins change the clinic defaults).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_defaults",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("set_us", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_defaults")),
    )
    op.create_index(op.f("ix_clinic_defaults_key_id"), "clinic_defaults", ["key", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_clinic_defaults_key_id"), table_name="clinic_defaults")
    op.drop_table("clinic_defaults")
