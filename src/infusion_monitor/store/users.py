"""Local accounts in the ``users`` table: add, list, disable/enable, set a password hash.

This module only stores; the rules (who may manage accounts, password policy, hashing) are in
session/accounts.py. Each change is written with its audit entry (clinic chain) in one
transaction; the entry names the account and its role, never the password or its hash (its
row digest covers the hash, so a hash replaced outside the app is found by ``audit verify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, exists, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from infusion_monitor.clock import from_us
from infusion_monitor.errors import ConfigError, StoreError
from infusion_monitor.store import audit
from infusion_monitor.store.audit_canon import canonical_row, row_digest
from infusion_monitor.store.models_users import UserRow
from infusion_monitor.store.repository import reason_of

_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Account:
    """One account as listed (its password hash is never part of it)."""

    id: int
    username: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime
    created_by: str
    password_changed_at: datetime


class UserStore:
    """The ``users`` table over one engine; database failures become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reading ------------------------------------------------------------------------------
    def any(self) -> bool:
        """Whether the database has any account (then every action needs a login)."""
        return bool(self._read(lambda c: c.execute(select(exists().select_from(UserRow)))
                               .scalar()))

    def get(self, username: str) -> Account | None:
        found = self.credentials(username)
        return None if found is None else found[0]

    def credentials(self, username: str) -> tuple[Account, str] | None:
        """The account and its password hash (for checking a password), or None."""
        row = self._read(lambda c: c.execute(
            select(UserRow.__table__).where(UserRow.username == username)).mappings().first())
        return None if row is None else (_account(row), str(row["password_hash"]))

    def list(self) -> list[Account]:
        """Every account, by username."""
        rows = self._read(lambda c: c.execute(
            select(UserRow.__table__).order_by(UserRow.username)).mappings().all())
        return [_account(r) for r in rows]

    # -- writing ------------------------------------------------------------------------------
    def add(self, *, username: str, display_name: str, role: str, password_hash: str,
            by: str, t_us: int, first: bool = False) -> Account:
        """Add an account (fields already checked). ``first``: only while there is no account
        at all (the first admin, added without logging in); ConfigError otherwise."""
        values = {"username": username, "display_name": display_name, "role": role,
                  "password_hash": password_hash, "disabled": False, "created_us": t_us,
                  "created_by": by, "password_changed_us": t_us}

        def write(conn: Connection) -> dict[str, Any]:
            if first and conn.execute(select(exists().select_from(UserRow))).scalar():
                raise ConfigError("this database already has accounts: an admin adds new "
                                  "ones (--as ADMIN)")
            # A display name is how the record names who did what: it must be unique too.
            for other, shown in conn.execute(select(UserRow.username, UserRow.display_name)):
                if other == username:
                    raise ConfigError(f"username {username!r} is already taken: choose "
                                      "another")
                if shown.casefold() == display_name.casefold():
                    raise ConfigError(f"display name {display_name!r} is already taken (by "
                                      f"account {other!r}): choose another, e.g. with a "
                                      "middle initial")
            new_id = int(conn.execute(insert(UserRow).returning(UserRow.id),
                                      values).scalar_one())
            row = {**values, "id": new_id}
            _record(conn, row, actor=by, action="user_add", t_us=t_us,
                    extra={"first": True} if first else None)
            return row

        return _account(self._write(write, f"add account {username!r}"))

    def set_disabled(self, username: str, disabled: bool, *, by: str, t_us: int) -> Account:
        """Disable (or enable again) an account; the last enabled admin cannot be disabled."""

        def write(conn: Connection) -> dict[str, Any]:
            row = _locked(conn, username)
            if disabled and row["role"] == _ADMIN and not row["disabled"]:
                admins = conn.execute(
                    select(UserRow.id).where(UserRow.role == _ADMIN,
                                             UserRow.disabled.is_(False))
                    .with_for_update()).scalars().all()
                if len(admins) <= 1:
                    raise ConfigError(f"{username!r} is the last enabled admin and cannot be "
                                      "disabled: add another admin first")
            if bool(row["disabled"]) == disabled:
                raise ConfigError(f"account {username!r} is already "
                                  f"{'disabled' if disabled else 'enabled'}")
            conn.execute(update(UserRow).where(UserRow.id == row["id"])
                         .values(disabled=disabled))
            row = {**row, "disabled": disabled}
            _record(conn, row, actor=by, action="user_disable" if disabled else "user_enable",
                    t_us=t_us)
            return row

        return _account(self._write(write, f"change account {username!r}"))

    def set_password_hash(self, username: str, password_hash: str, *, by: str, t_us: int,
                          action: str = "password_reset") -> Account:
        """Store a new hash: a reset by an admin, or a re-hash at login (``password_rehash``:
        the hashing settings became stronger since the password was set)."""

        def write(conn: Connection) -> dict[str, Any]:
            row = _locked(conn, username)
            changed = t_us if action != "password_rehash" else row["password_changed_us"]
            conn.execute(update(UserRow).where(UserRow.id == row["id"]).values(
                password_hash=password_hash, password_changed_us=changed))
            row = {**row, "password_hash": password_hash, "password_changed_us": changed}
            _record(conn, row, actor=by, action=action, t_us=t_us)
            return row

        return _account(self._write(write, f"set the password of {username!r}"))

    # -- internals ----------------------------------------------------------------------------
    def _read(self, query: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                return query(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the user accounts: {reason_of(exc)}") from exc

    def _write(self, write: Any, what: str) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                # SQLite: take the write lock first (a read-then-write, and an audit append).
                conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    return dict(write(conn))
        except IntegrityError as exc:  # the unique username, raced by another workstation
            raise ConfigError(f"could not {what}: {reason_of(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"could not {what}: {reason_of(exc)}") from exc


def _locked(conn: Connection, username: str) -> dict[str, Any]:
    """The account's row, locked until the transaction ends (PostgreSQL; SQLite holds the
    whole database's write lock already)."""
    row = conn.execute(select(UserRow.__table__).where(UserRow.username == username)
                       .with_for_update()).mappings().first()
    if row is None:
        raise ConfigError(f"no account {username!r} (`infusion-monitor users list` shows them)")
    return dict(row)


def _record(conn: Connection, row: dict[str, Any], *, actor: str, action: str, t_us: int,
            extra: dict[str, Any] | None = None) -> None:
    """The account change's entry: names and role in the detail, the whole row (hash
    included) only in the row digest."""
    ids = [[row["id"], row["id"]]]
    detail = {"username": row["username"], "display_name": row["display_name"],
              "role": row["role"], "rows": {"users": ids, "user_state": ids}, **(extra or {})}
    digest = row_digest({"users": [canonical_row("users", row)],
                         "user_state": [canonical_row("user_state", row)]})
    audit.append(conn, session_id=None, t_us=t_us, actor=actor, action=action, entity="users",
                 entity_id=row["id"], detail=detail, row_digest=digest)


def _account(r: Any) -> Account:
    return Account(
        id=int(r["id"]), username=r["username"], display_name=r["display_name"],
        role=r["role"], disabled=bool(r["disabled"]), created_at=from_us(r["created_us"]),
        created_by=r["created_by"], password_changed_at=from_us(r["password_changed_us"]),
    )
