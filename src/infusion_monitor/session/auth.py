"""Roles, what each may do, and the one check every action passes (in the core, not the GUI).

Mode rule: a database with no accounts (one chair, the demo) works as before, with typed
names and no login. Once it has an account, every action needs a logged-in ``Principal``
whose role allows it, and the record names the principal (a typed name is not trusted).
A refusal raises ``PermissionDeniedError`` saying who may, and leaves a "denied" entry in the
audit trail (the session's chain for an act on a session, else the clinic's).

Logging in, and managing accounts, are in session/accounts.py.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from infusion_monitor.errors import InfusionMonitorError, PermissionDeniedError
from infusion_monitor.store.audit import AuditLog, current_user
from infusion_monitor.store.users import UserStore

log = logging.getLogger(__name__)

#: Who is named in the audit trail for an attempt made without logging in.
NOT_LOGGED_IN = "(not logged in)"


class Role(enum.StrEnum):
    """One role per account (``users.role``)."""

    NURSE = "nurse"
    ATTENDING = "attending"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def plural(self) -> str:
        return f"{self.value}s"


class Action(enum.StrEnum):
    """What a user can do that the core checks."""

    CHART = "chart"  # start a recording, check in, phases, minutes, notes, CADSS, amendments
    ACKNOWLEDGE = "acknowledge"  # alarms: acknowledge, pause audio, a response note
    ACKNOWLEDGE_ATTENDING = "acknowledge_attending"  # the "notify attending" flag
    CHANGE_LIMITS = "change_limits"  # a patient's alarm limits, before infusion start
    SIGN_OFF = "sign_off"
    REVIEW = "review"  # list sessions, open a review, read a session's audit trail
    EXPORT = "export"
    VERIFY_AUDIT = "verify_audit"  # check the whole trail's integrity (no patient data)
    MANAGE_USERS = "manage_users"
    CHANGE_CLINIC_DEFAULTS = "change_clinic_defaults"

    @property
    def words(self) -> str:
        return _WORDS[self]


_WORDS = {
    Action.CHART: "chart", Action.ACKNOWLEDGE: "acknowledge alarms",
    Action.ACKNOWLEDGE_ATTENDING: "acknowledge the attending flag",
    Action.CHANGE_LIMITS: "change a patient's alarm limits", Action.SIGN_OFF: "sign off",
    Action.REVIEW: "review sessions", Action.EXPORT: "export a session",
    Action.VERIFY_AUDIT: "verify the audit trail",
    Action.MANAGE_USERS: "manage user accounts",
    Action.CHANGE_CLINIC_DEFAULTS: "change the clinic defaults",
}

_BEDSIDE = frozenset({Action.CHART, Action.ACKNOWLEDGE, Action.REVIEW, Action.EXPORT})

#: The permission table. An attending at the chair can do what a nurse does (a physician
#: must be able to acknowledge an alarm and write a note); only supervisors sign off; admins
#: manage accounts and clinic defaults and see no patient data (separation of duties: the
#: person who can create accounts cannot also attest records).
PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.NURSE: _BEDSIDE,
    Role.ATTENDING: _BEDSIDE | {Action.ACKNOWLEDGE_ATTENDING, Action.CHANGE_LIMITS},
    Role.SUPERVISOR: frozenset({Action.SIGN_OFF, Action.REVIEW, Action.EXPORT,
                                Action.VERIFY_AUDIT}),
    Role.ADMIN: frozenset({Action.MANAGE_USERS, Action.CHANGE_CLINIC_DEFAULTS,
                           Action.VERIFY_AUDIT}),
}


def roles_for(action: Action) -> tuple[Role, ...]:
    """The roles that may do ``action``, in table order."""
    return tuple(r for r in Role if action in PERMISSIONS[r])


def who_may(action: Action) -> str:
    """"only supervisors may", "only nurses and attendings may"."""
    names = [r.plural for r in roles_for(action)]
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"only {joined} may"


@dataclass(frozen=True, slots=True)
class Principal:
    """A logged-in user: the record names them by ``display_name`` (unique per database)."""

    username: str
    display_name: str
    role: Role

    def may(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        """"R. Nurse (nurse)"."""
        return f"{self.display_name} ({self.role})"


def denial_message(principal: Principal | None, action: Action, what: str | None = None) -> str:
    """"R. Nurse (nurse) may not sign off: only supervisors may"."""
    doing = what or action.words
    if principal is None:
        return (f"log in first to {doing}: {who_may(action)} (this database has user "
                "accounts)")
    return f"{principal.label} may not {doing}: {who_may(action)}"


def authorize(principal: Principal | None, action: Action, *, audit: AuditLog | Engine | None,
              session_id: int | None = None, what: str | None = None) -> Principal:
    """Return ``principal`` if it may do ``action``; else record the attempt ("denied") and
    raise PermissionDeniedError with what was refused and who may.

    The entry goes to the session's chain when the act concerns ``session_id``, else to the
    clinic's. A failure to record it is logged and the action is refused all the same.
    """
    if principal is not None and principal.may(action):
        return principal
    message = denial_message(principal, action, what)
    if audit is not None:
        trail = audit if isinstance(audit, AuditLog) else AuditLog(audit)
        detail = {"attempted": action.value, "what": what or action.words,
                  "username": principal.username if principal else None,
                  "role": principal.role.value if principal else None}
        actor = principal.display_name if principal else NOT_LOGGED_IN
        try:
            try:
                trail.record_event("denied", actor=actor, session_id=session_id,
                                   reason=message, detail=detail)
            except InfusionMonitorError:
                if session_id is None:
                    raise
                # No such session (a mistyped id): the attempt still goes on the record.
                trail.record_event("denied", actor=actor, reason=message,
                                   detail={**detail, "session": session_id})
        except InfusionMonitorError as exc:
            log.error("could not record a refused action in the audit trail: %s", exc)
            raise PermissionDeniedError(f"{message} (and the refusal could not be recorded: "
                                        f"{exc})") from exc
    raise PermissionDeniedError(message)


class Access:
    """Who is logged in at this chair, and the check the core runs before every action.

    One object is shared by everything acting for this chair (the chart, the alarm monitor,
    exports); switching user sets ``principal`` once for all of them. With ``engine`` None
    (no database) nothing is enforced.
    """

    def __init__(self, engine: Engine | None, principal: Principal | None = None) -> None:
        self.engine = engine
        self._principal = principal
        self._lock = threading.Lock()
        self._accounts = False  # once True, always: an account is never deleted

    @property
    def principal(self) -> Principal | None:
        with self._lock:
            return self._principal

    @principal.setter
    def principal(self, principal: Principal | None) -> None:
        with self._lock:
            self._principal = principal

    def accounts_exist(self) -> bool:
        """Whether the database has accounts (re-read until it has: an admin may add the
        first one while this chair runs)."""
        if not self._accounts and self.engine is not None:
            self._accounts = UserStore(self.engine).any()
        return self._accounts

    def enforcing(self) -> bool:
        """Whether actions are checked (someone is logged in, or the database has accounts)."""
        return self.principal is not None or self.accounts_exist()

    def check(self, action: Action, *, session_id: int | None = None,
              what: str | None = None) -> Principal | None:
        """The principal allowed to do ``action`` now, None when nothing is enforced; else
        PermissionDeniedError (recorded)."""
        principal = self.principal
        if principal is None and not self.accounts_exist():
            return None
        return authorize(principal, action, audit=self.engine, session_id=session_id,
                         what=what)

    def require(self, action: Action, by: str, *, session_id: int | None = None,
                what: str | None = None) -> str:
        """Who the record names for ``action``: the principal's display name when enforcing
        (a typed ``by`` is not trusted), else ``by`` as typed."""
        principal = self.check(action, session_id=session_id, what=what)
        return by if principal is None else principal.display_name

    def role(self, typed: str | None) -> str | None:
        """The acting role: the principal's when logged in, else as typed (no accounts)."""
        principal = self.principal
        return typed if principal is None else principal.role.value


def access_for(engine: Engine | None, access: Access | None) -> Access:
    """``access`` if given, else a fresh one over ``engine`` with nobody logged in (which
    refuses every action once the database has accounts; nothing without a database)."""
    return access if access is not None else Access(engine)


def export_recorder(access: Access, actor: str | None = None
                    ) -> Callable[[Any, str, Path, int], None]:
    """The ``audit`` hook of ``export.formats.write_export`` for this chair: checks that
    whoever is logged in may export (refusal recorded, no file written), then records the
    export under their name (``actor``, else the OS login, when nothing is enforced)."""

    def record_export(record: Any, fmt: str, path: Path, count: int) -> None:
        sid = record.info.id
        principal = access.check(Action.EXPORT, session_id=sid, what=f"export a session ({fmt})")
        who = principal.display_name if principal is not None else actor or current_user()
        if access.engine is not None:
            AuditLog(access.engine).record_event(
                "export", actor=who, session_id=sid,
                detail={"format": fmt, "file": str(path), "count": count})

    return record_export
