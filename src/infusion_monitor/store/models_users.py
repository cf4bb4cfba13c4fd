"""The ``users`` table: local accounts with their role and argon2id password hash.

Unlike the clinical tables, an account row is updated in place (disabled, password changed):
it is configuration, not the record. Every change is an entry of the clinic's audit chain
whose row digest covers the whole row, so an edit made outside the app (a role raised, a
hash replaced, an account re-enabled) is found by ``audit verify``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from infusion_monitor.store.models import Base

#: The roles an account can have (session/auth.py says what each may do).
ROLE_NAMES = ("nurse", "attending", "supervisor", "admin")


class UserRow(Base):
    """One local account. ``username`` is stored normalised (lower case), so it is unique
    regardless of case; the password is kept only as its argon2id hash (PHC string)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('nurse', 'attending', 'supervisor', 'admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_us: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(128))
    password_changed_us: Mapped[int] = mapped_column(BigInteger)
