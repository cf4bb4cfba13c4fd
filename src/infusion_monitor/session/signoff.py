"""Signing a session off (issue 5): only a finished session, only by a supervisor.

The first sign-off locks the record (session/locking.py): later changes are addenda, shown as
unsigned until another sign-off covers them. Once the database has accounts, the signer is
the logged-in supervisor (user, printed name and role come from the account, not from what
was typed), who re-enters the password to sign (21 CFR 11.200(a)).
"""

from __future__ import annotations

from sqlalchemy import Engine

from infusion_monitor.clock import Clock, SystemClock
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.accounts import confirm_signature
from infusion_monitor.session.auth import Access, Action, access_for
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.locking import LockState
from infusion_monitor.session.phases import Phase
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.db import Database
from infusion_monitor.store.repository import Repository
from infusion_monitor.store.signoff import SignOff, SignOffStore, check

_FINISHED = (Phase.DISCHARGED, Phase.CLOSED)


def sign_off(database: Database | Engine, session_id: int, *, signed_by: str, printed_name: str,
             role: str, meaning: str, comment: str | None = None,
             clock: Clock | None = None, access: Access | None = None,
             password: str | None = None) -> SignOff:
    """Attest the session (ChartingError, nothing written, if it is still open or the
    signature is incomplete); returns the stored sign-off.

    When ``access`` enforces (the database has accounts), only its logged-in supervisor may
    sign (PermissionDeniedError, recorded, for anyone else), ``password`` must be theirs
    (AuthenticationError otherwise) and the typed ``signed_by``, ``printed_name`` and
    ``role`` are replaced by the account's.
    """
    engine = _engine(database)
    access = access_for(engine, access)
    principal = access.check(Action.SIGN_OFF, session_id=session_id,
                             what="sign off a session")
    if principal is not None:
        signed_by, printed_name, role = (principal.username, principal.display_name,
                                         principal.role.value)
    check(signed_by, printed_name, role, meaning, comment)  # the signer's mistakes first
    info = Repository(engine).get_session(session_id)
    state = SessionChart(ChartStore(engine), session_id, clock).state
    if state not in _FINISHED:
        now = "not checked in" if state is None else f"in {state.label}"
        raise ChartingError(f"the session is still open ({now}): discharge the patient before "
                            "signing the session off")
    if info.ended is None:
        raise ChartingError("the session is still recording: stop the recording before "
                            "signing the session off")
    if principal is not None:  # last: a wrong password is audited, so only for a real try
        confirm_signature(engine, principal, password or "")
    at = (clock or SystemClock()).now()
    return SignOffStore(engine).add(session_id, signed_by, printed_name, role, meaning, comment,
                                    at)


def lock_state(database: Database | Engine, session_id: int) -> LockState:
    """unsigned | signed | signed_with_unsigned_addenda, from the stored rows."""
    return SessionChart(ChartStore(_engine(database)), session_id).lock_state()


def _engine(database: Database | Engine) -> Engine:
    return database.engine if isinstance(database, Database) else database
