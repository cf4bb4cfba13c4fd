"""Logging in and managing local accounts: argon2id hashes, password policy, audited acts.

Passwords exist only in memory, for as long as a call needs them: they are never stored,
logged, put in a message or in the audit trail. A failed login says only "unknown user or
wrong password", takes about as long whether or not the account exists, and names the
account in the audit trail only when it exists (a password typed into the username field by
mistake must not end up in the trail).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine

from infusion_monitor.errors import AuthenticationError, ConfigError
from infusion_monitor.session import validate
from infusion_monitor.session.auth import Action, Principal, Role, authorize
from infusion_monitor.store.audit import AuditLog, current_user, now_us
from infusion_monitor.store.users import Account, UserStore

log = logging.getLogger(__name__)

#: argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, t=3, p=4).
#: Hashes made with weaker settings are re-hashed at the next successful login.
HASHER = PasswordHasher()
MIN_PASSWORD = 8  # NIST SP 800-63B: at least 8, no composition rules
MAX_PASSWORD = 1024  # hashing cost must not be the attacker's choice
MAX_DISPLAY_NAME = 128
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LOGIN_FAILED = "login failed: unknown user or wrong password"
#: The audit trail's actor for a failed login with a username no account has.
NOT_AN_ACCOUNT = "(unknown user)"


def normalize_username(text: object) -> str:
    """The stored form: trimmed, lower case; letters, digits, '.', '_', '-' (1-64)."""
    name = text.strip().lower() if isinstance(text, str) else ""
    if not _USERNAME.fullmatch(name):
        raise ConfigError("a username is 1-64 letters, digits, '.', '_' or '-', starting with "
                          "a letter or digit (e.g. r.nurse)")
    return name


def check_password(password: object, username: str) -> str:
    """The password if it meets the policy; ConfigError (never echoing it) otherwise."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if password.strip().lower() == username:
        raise ConfigError("the password must not be the username")
    return password


def hash_password(password: str) -> str:
    # NFC: the same password typed on another keyboard or system hashes alike.
    return HASHER.hash(unicodedata.normalize("NFC", password))


@cache
def _dummy_hash(params: tuple[int, int, int]) -> str:
    """A hash to check against when the account does not exist, made with the current
    settings so a missing account costs as much time as a wrong password."""
    return HASHER.hash("no such account")


def _matches(password_hash: str, password: str) -> bool:
    try:
        return bool(HASHER.verify(password_hash, unicodedata.normalize("NFC", password)))
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):  # a corrupt stored hash: no login with it
        log.error("the stored password hash of an account is not a valid argon2 hash")
        return False


def authenticate(engine: Engine, username: str, password: str, *,
                 purpose: str = "login") -> Principal:
    """The principal for these credentials, with a "login" entry in the audit trail; else
    AuthenticationError and a "login_failed" entry.

    ``purpose`` ("login", "switch", "unlock") is kept in the entry. A disabled account is
    refused (and told so only when the password was right). A hash made with weaker
    settings than ``HASHER``'s is replaced (``password_rehash``).
    """
    users, trail = UserStore(engine), AuditLog(engine)
    try:
        name = normalize_username(username)
    except ConfigError:
        name = ""
    found = users.credentials(name) if name else None
    if found is None:
        _matches(_dummy_hash((HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism)),
                 password if isinstance(password, str) else "")
        trail.record_event("login_failed", actor=NOT_AN_ACCOUNT, reason="unknown user",
                           detail={"purpose": purpose})
        raise AuthenticationError(LOGIN_FAILED)
    account, stored = found
    if not isinstance(password, str) or not _matches(stored, password):
        log.info("login failed for account %s", account.username)
        trail.record_event("login_failed", actor=account.display_name, reason="wrong password",
                           detail={"purpose": purpose, "username": account.username})
        raise AuthenticationError(LOGIN_FAILED)
    if account.disabled:
        trail.record_event("login_failed", actor=account.display_name,
                           reason="account disabled",
                           detail={"purpose": purpose, "username": account.username})
        raise AuthenticationError(f"the account {account.username!r} is disabled: ask an "
                                  "admin to enable it")
    principal = Principal(account.username, account.display_name, Role(account.role))
    if HASHER.check_needs_rehash(stored):
        users.set_password_hash(account.username, hash_password(password),
                                by=account.display_name, t_us=now_us(),
                                action="password_rehash")
    trail.record_event("login", actor=account.display_name,
                       detail={"purpose": purpose, "username": account.username,
                               "role": account.role})
    log.info("%s logged in (%s)", account.username, purpose)
    return principal


def confirm_signature(engine: Engine, principal: Principal, password: str) -> None:
    """The password again, for an electronic signature (21 CFR 11.200: both parts of the
    credentials at signing); AuthenticationError (audited) when it does not match."""
    try:
        authenticate(engine, principal.username, password, purpose="signature")
    except AuthenticationError:
        raise AuthenticationError(f"the password does not match {principal.display_name}'s "
                                  "account: nothing was signed") from None


# -- managing accounts (admins) -------------------------------------------------------------
def _admin(engine: Engine, principal: Principal | None, what: str) -> str:
    """The admin's name for the record; PermissionDeniedError (audited) for anyone else."""
    return authorize(principal, Action.MANAGE_USERS, audit=engine, what=what).display_name


Password = str | Callable[[], str]


def _password(password: Password) -> str:
    """A password given as is, or asked for (only once every other check has passed)."""
    return password() if callable(password) else password


def add_user(engine: Engine, principal: Principal | None, *, username: str, display_name: str,
             role: str, password: Password) -> Account:
    """Add an account. With no account in the database yet, anyone may add the first one,
    which must be an admin (someone has to be able to manage the rest). ``password`` may be
    a callable that asks for it: it is called after the permission and field checks."""
    name = normalize_username(username)
    try:
        role_ = Role(str(role).strip().lower())
    except ValueError:
        raise ConfigError(f"unknown role {role!r}: one of "
                          f"{', '.join(r.value for r in Role)}") from None
    shown = validate.text(display_name, "display name", max_len=MAX_DISPLAY_NAME)
    users = UserStore(engine)
    first = principal is None and not users.any()
    if first:
        if role_ is not Role.ADMIN:
            raise ConfigError("the first account must be an admin (--role admin): an admin "
                              "adds the others")
        by = current_user()
    else:
        by = _admin(engine, principal, f"add the account {name!r}")
    if users.get(name) is not None:
        raise ConfigError(f"username {name!r} is already taken: choose another")
    secret = check_password(_password(password), name)
    return users.add(username=name, display_name=shown, role=role_.value,
                     password_hash=hash_password(secret), by=by, t_us=now_us(), first=first)


def list_users(engine: Engine, principal: Principal | None) -> list[Account]:
    _admin(engine, principal, "list the user accounts")
    return UserStore(engine).list()


def set_disabled(engine: Engine, principal: Principal | None, username: str,
                 disabled: bool = True) -> Account:
    """Disable an account (or enable it again); the last enabled admin stays."""
    name = normalize_username(username)
    by = _admin(engine, principal,
                f"{'disable' if disabled else 'enable'} the account {name!r}")
    return UserStore(engine).set_disabled(name, disabled, by=by, t_us=now_us())


def reset_password(engine: Engine, principal: Principal | None, username: str,
                   password: Password) -> Account:
    """Set a new password for an account (an admin, for a user who forgot theirs)."""
    name = normalize_username(username)
    by = _admin(engine, principal, f"reset the password of {name!r}")
    if UserStore(engine).get(name) is None:
        raise ConfigError(f"no account {name!r} (`infusion-monitor users list` shows them)")
    secret = check_password(_password(password), name)
    return UserStore(engine).set_password_hash(name, hash_password(secret), by=by,
                                               t_us=now_us())
