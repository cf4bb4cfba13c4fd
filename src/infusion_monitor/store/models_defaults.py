"""The ``clinic_defaults`` table: the clinic's alarm and review settings, set by an admin.

They live in the database (not in each workstation's settings file) so that one change reaches
every chair of the clinic. Rows are append-only: a change is a new row for its key, and the
latest row per key is in force (a row whose value is NULL puts the key back to the built-in
default). Every row has an entry in the clinic's audit chain covering the whole row.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from infusion_monitor.store.models import Base


class ClinicDefaultRow(Base):
    """One change of one clinic default: ``key`` as in settings.toml (``escalation_s``,
    ``thresholds.spo2_low``), ``value`` as canonical JSON (a number or a string)."""

    __tablename__ = "clinic_defaults"
    __table_args__ = (Index(None, "key", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(Text)
    set_us: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
