"""Append-only tables for the charted record (issue 3), the alarm log (issue 4) and the audit trail.

Nothing here is ever UPDATEd or DELETEd. A correction is a new row whose ``amends_id`` points
at the row it corrects, with who (``entered_by``), when (``entered_us``) and why (``reason``);
readers show the latest version and keep every earlier one visible.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from infusion_monitor.store.models import Base, RowId


class CheckInRow(Base):
    """Who the patient is and what is planned; an amendment re-states the whole check-in."""

    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(128))
    patient_name: Mapped[str] = mapped_column(String(256))
    birth_date: Mapped[str | None] = mapped_column(String(10))  # ISO yyyy-mm-dd
    weight_kg: Mapped[float | None] = mapped_column(Double())
    dose_mg_per_kg: Mapped[float | None] = mapped_column(Double())
    planned_minutes: Mapped[int | None] = mapped_column(Integer)
    attending: Mapped[str] = mapped_column(String(128))
    nurse: Mapped[str] = mapped_column(String(128))
    entered_us: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(128))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class PhaseMarkerRow(Base):
    """A session phase began at ``t_us`` (check-in, baseline, infusion start, ...).

    ``detail`` is JSON: the baseline values at infusion start, the discharge check and its
    reason. An amendment with ``voided`` set undoes an accidental marker.
    """

    __tablename__ = "phase_markers"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    phase: Mapped[str] = mapped_column(String(32))
    t_us: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    entered_us: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(128))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("phase_markers.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class MinuteEntryRow(Base):
    """The nurse's scores for one minute of the infusion (minute 0 starts at infusion start).

    A score left None was not assessed. ``entered_us`` after the minute's end marks a late entry.
    """

    __tablename__ = "minute_entries"
    __table_args__ = (Index("ix_minute_entries_session_id_minute", "session_id", "minute"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    minute: Mapped[int] = mapped_column(Integer)
    dissociation: Mapped[int | None] = mapped_column(Integer)  # 0..4
    rass: Mapped[int | None] = mapped_column(Integer)  # -5..+4
    distress: Mapped[int | None] = mapped_column(Integer)  # 0..2
    entered_us: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(128))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("minute_entries.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class NoteRow(Base):
    """Free text at any moment, pinned to the time (and minute) it belongs to."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_session_id_t_us", "session_id", "t_us"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    t_us: Mapped[int] = mapped_column(BigInteger)
    minute: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    entered_us: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(128))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("notes.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class CadssFormRow(Base):
    """CADSS-6 (items 1, 2, 6, 7, 15, 22, each 0..4) at baseline, ~40 min or discharge."""

    __tablename__ = "cadss_forms"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    timepoint: Mapped[str] = mapped_column(String(16))  # baseline | 40min | discharge
    item1: Mapped[int] = mapped_column(Integer)
    item2: Mapped[int] = mapped_column(Integer)
    item6: Mapped[int] = mapped_column(Integer)
    item7: Mapped[int] = mapped_column(Integer)
    item15: Mapped[int] = mapped_column(Integer)
    item22: Mapped[int] = mapped_column(Integer)
    t_us: Mapped[int] = mapped_column(BigInteger)
    entered_us: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(128))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("cadss_forms.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class AlarmEventRow(Base):
    """One step in an alarm's life: raised, escalated, acknowledged, paused, response, cleared.

    All rows of one alarm share ``alarm_uid``; the alarm log folds them. The attending flag is
    kept here too (condition ``notify_attending``).
    """

    __tablename__ = "alarm_events"
    __table_args__ = (
        Index("ix_alarm_events_session_id_t_us", "session_id", "t_us"),
        # The browser's counts and its "had high alarms" filter look alarms up by priority.
        Index("ix_alarm_events_session_id_priority", "session_id", "priority", "event"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    alarm_uid: Mapped[str] = mapped_column(String(36), index=True)
    event: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(48))
    parameter: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))  # high | medium | low | technical
    value: Mapped[float | None] = mapped_column(Double())
    limit_value: Mapped[float | None] = mapped_column(Double())
    latched: Mapped[bool] = mapped_column(Boolean, default=False)
    t_us: Mapped[int] = mapped_column(BigInteger)
    by_user: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")


class LimitChangeRow(Base):
    """A threshold changed: a clinic default (no session) or a per-patient override."""

    __tablename__ = "limit_changes"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    condition: Mapped[str] = mapped_column(String(48))
    old_value: Mapped[float | None] = mapped_column(Double())
    new_value: Mapped[float | None] = mapped_column(Double())
    t_us: Mapped[int] = mapped_column(BigInteger)
    by_user: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)


class SignOffRow(Base):
    """A supervisor's attestation on a session (after 21 CFR 11.50): printed name, time, meaning.

    The first sign-off locks the record: anything charted after it is an addendum, shown as such
    until a later sign-off covers it. Sign-offs are never changed or removed.
    """

    __tablename__ = "signoffs"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    signed_by: Mapped[str] = mapped_column(String(128))  # the user who signed
    printed_name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    meaning: Mapped[str] = mapped_column(String(32))  # reviewed | reviewed_with_findings
    comment: Mapped[str | None] = mapped_column(Text)
    signed_us: Mapped[int] = mapped_column(BigInteger)


class AuditEntryRow(Base):
    """One entry of the hash-chained audit trail (store/audit.py, after 21 CFR 11.10(e)).

    Entries form chains ("session:<uid>" per session, "clinic" for the rest); ``seq`` numbers
    a chain without gaps and ``hash`` covers the entry and the previous entry's hash, so an
    edit or deletion made outside the app breaks the chain. ``row_digest`` covers the
    clinical rows the entry records. Only ever INSERTed.
    """

    __tablename__ = "audit_log"
    # Two workstations appending to one chain at once collide here; the loser re-reads the
    # chain's head and retries, which serialises each chain on both engines.
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_log_chain_seq"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    t_us: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    row_digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
