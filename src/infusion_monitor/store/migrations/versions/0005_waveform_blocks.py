"""Waveform blocks: a device's sample runs (a pleth), stored a block per row, not a sample.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of models.RowId: a migration must not change when the models do.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "waveform_blocks",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("wave", sa.String(length=32), nullable=False),
        sa.Column("rate_hz", sa.Double(), nullable=False),
        sa.Column("t_start_us", sa.BigInteger(), nullable=False),
        sa.Column("t_device_us", sa.BigInteger(), nullable=True),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("samples", sa.LargeBinary(), nullable=False),
        sa.Column("scale", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_waveform_blocks_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waveform_blocks")),
    )
    with op.batch_alter_table("waveform_blocks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waveform_blocks_session_id_t_start_us", ["session_id", "t_start_us"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("waveform_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_waveform_blocks_session_id_t_start_us")

    op.drop_table("waveform_blocks")
