"""The database schema as SQLAlchemy 2 typed models; migrations/ must create exactly this."""

from __future__ import annotations

import enum
import socket
import uuid

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Every constraint and index gets a predictable name, so Alembic can alter them later (and
# SQLite batch migrations can find them).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit id on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class SessionSource(enum.StrEnum):
    """How a session's data came in. Stored as text."""

    RECORD = "record"
    IMPORT = "import"
    DEMO = "demo"
    GUI = "gui"


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRow(Base):
    """One recording (or import) of one patient on one workstation."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Globally unique, so sessions from several workstations can later be merged.
    uid: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    workstation_id: Mapped[str] = mapped_column(String(255), default=socket.gethostname)
    patient_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str] = mapped_column(String(64))
    port: Mapped[str | None] = mapped_column(String(255))
    started_us: Mapped[int] = mapped_column(BigInteger, index=True)  # the browser's date order
    ended_us: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)


class ReadingRow(Base):
    """One value a device sent; append-only."""

    __tablename__ = "readings"
    __table_args__ = (Index("ix_readings_session_id_t_us", "session_id", "t_us"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    vital: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Double())
    unit: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    t_us: Mapped[int] = mapped_column(BigInteger)
    t_device_us: Mapped[int | None] = mapped_column(BigInteger)


class DeviceEventRow(Base):
    """A technical event about the device or link; append-only."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_session_id_t_us", "session_id", "t_us"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    kind: Mapped[str] = mapped_column(String(32))
    vital: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)
    t_us: Mapped[int] = mapped_column(BigInteger)
    t_device_us: Mapped[int | None] = mapped_column(BigInteger)


class WaveformBlockRow(Base):
    """One block of waveform samples as the device sent it; append-only, a row per block.

    ``samples`` are the raw integers, little-endian, in the narrowest of ``u8``/``i16``/``u16``/
    ``i32`` that holds the block (``encoding``); ``t_start_us`` is the block's recorded time.
    """

    __tablename__ = "waveform_blocks"
    __table_args__ = (
        Index("ix_waveform_blocks_session_id_t_start_us", "session_id", "t_start_us"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    wave: Mapped[str] = mapped_column(String(32))
    rate_hz: Mapped[float] = mapped_column(Double())
    t_start_us: Mapped[int] = mapped_column(BigInteger)
    t_device_us: Mapped[int | None] = mapped_column(BigInteger)
    n_samples: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(8))
    samples: Mapped[bytes] = mapped_column(LargeBinary())
    scale: Mapped[float] = mapped_column(Double())
    unit: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
