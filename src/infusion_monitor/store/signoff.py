"""Sign-offs: a supervisor's attestation on a session (after 21 CFR 11.50), append-only.

Each sign-off carries the signer's printed name, the date/time and the meaning of the signature
("reviewed" or "reviewed with findings", the latter with a comment). Rows are only INSERTed and
SELECTed: a sign-off is never changed or removed. What a sign-off locks is in session/locking.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session import validate
from infusion_monitor.store import audit
from infusion_monitor.store.models_clinical import SignOffRow
from infusion_monitor.store.repository import reason_of

#: The meanings a signature can have (stored value -> how it is printed).
MEANINGS = {"reviewed": "Reviewed", "reviewed_with_findings": "Reviewed with findings"}
#: Who may sign a session off (until users and roles exist, the caller names the role).
SIGNING_ROLES = ("supervisor",)
MAX_PRINTED_NAME = 256  # the column width


@dataclass(frozen=True, slots=True)
class SignOff:
    """One attestation: who signed (user and printed name), as what, when, and what it means."""

    id: int
    session_id: int
    signed_by: str
    printed_name: str
    role: str
    meaning: str  # a key of MEANINGS
    comment: str | None
    signed_at: datetime

    @property
    def meaning_label(self) -> str:
        return MEANINGS.get(self.meaning, self.meaning)


class SignOffStore:
    """Adds and lists a session's sign-offs over one engine; failures become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, session_id: int, signed_by: str, printed_name: str, role: str, meaning: str,
            comment: str | None, at: datetime) -> SignOff:
        """Validate everything (ChartingError, nothing written), then append the sign-off."""
        values = {"session_id": session_id, **check(signed_by, printed_name, role, meaning,
                                                    comment), "signed_us": to_us(at)}
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(insert(SignOffRow).returning(SignOffRow.id),
                                      values).scalar_one()
                audit.record_row(conn, "signoffs", {**values, "id": int(new_id)},
                                 actor=values["signed_by"], action="sign_off",
                                 t_us=values["signed_us"], reason=values["comment"])
        except SQLAlchemyError as exc:
            raise StoreError(f"could not save the sign-off: {reason_of(exc)}") from exc
        return _signoff({**values, "id": int(new_id)})

    def list(self, session_id: int) -> list[SignOff]:
        """The session's sign-offs, oldest first."""
        stmt = (select(SignOffRow.__table__).where(SignOffRow.session_id == session_id)
                .order_by(SignOffRow.signed_us, SignOffRow.id))
        try:
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(stmt).all()]
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the sign-offs: {reason_of(exc)}") from exc
        return [_signoff(r) for r in rows]


def check(signed_by: object, printed_name: object, role: object, meaning: object,
          comment: object) -> dict[str, str | None]:
    """The sign-off's fields, validated and trimmed; ChartingError says what to fix."""
    if not isinstance(role, str) or role.strip().lower() not in SIGNING_ROLES:
        raise ChartingError(
            f"only a {' or '.join(SIGNING_ROLES)} can sign off a session (the reviewing "
            f"supervisor attests the record); you are signed in as {role!r}")
    if meaning not in MEANINGS:
        raise ChartingError(f"the meaning of the signature must be one of "
                            f"{', '.join(MEANINGS)}; got {meaning!r}")
    blank = comment is None or (isinstance(comment, str) and not comment.strip())
    if meaning == "reviewed_with_findings" and blank:
        raise ChartingError("a sign-off 'reviewed with findings' needs a comment stating the "
                            "findings; enter it")
    return {
        "signed_by": validate.text(signed_by, "who signs"),
        "printed_name": validate.text(printed_name, "printed name", max_len=MAX_PRINTED_NAME),
        "role": role.strip().lower(),
        "meaning": meaning,
        "comment": None if blank else validate.text(comment, "comment",
                                                    max_len=validate.MAX_TEXT, multiline=True),
    }


def _signoff(r: dict[str, Any]) -> SignOff:
    return SignOff(
        id=int(r["id"]), session_id=r["session_id"], signed_by=r["signed_by"],
        printed_name=r["printed_name"], role=r["role"], meaning=r["meaning"],
        comment=r["comment"], signed_at=from_us(r["signed_us"]),
    )
