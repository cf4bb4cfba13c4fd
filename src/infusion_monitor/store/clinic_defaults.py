"""The clinic defaults in the ``clinic_defaults`` table: read what is in force, add a change.

This module only stores; the rules (who may change them, which keys and values make sense)
are in session/clinic_defaults.py and config.py. Each change is written with its audit entry
(clinic chain, the whole row in its digest) in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import from_us
from infusion_monitor.errors import StoreError
from infusion_monitor.store import audit
from infusion_monitor.store.audit_canon import canonical_json, canonical_row, row_digest
from infusion_monitor.store.models_defaults import ClinicDefaultRow
from infusion_monitor.store.repository import reason_of

Value = float | int | str


@dataclass(frozen=True, slots=True)
class DefaultChange:
    """One row: ``key`` set to ``value`` (None: back to the built-in default)."""

    id: int
    key: str
    value: Value | None
    set_at: datetime
    set_by: str
    reason: str

    @property
    def source(self) -> str:
        """How the record names where a limit came from."""
        return (f"clinic default set by {self.set_by} on {self.set_at:%Y-%m-%d %H:%M} UTC: "
                f"{self.reason}")


class ClinicDefaults:
    """The ``clinic_defaults`` table over one engine; database failures become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def in_force(self) -> dict[str, DefaultChange]:
        """The latest change of each key that is set (keys put back to default are left out)."""
        t = ClinicDefaultRow
        latest = select(func.max(t.id)).group_by(t.key).scalar_subquery()
        rows = self._read(lambda c: c.execute(
            select(t.__table__).where(t.id.in_(latest)).order_by(t.key)).mappings().all())
        return {r["key"]: _change(r) for r in rows if r["value"] is not None}

    def history(self) -> list[DefaultChange]:
        """Every change, oldest first."""
        t = ClinicDefaultRow
        rows = self._read(lambda c: c.execute(
            select(t.__table__).order_by(t.id)).mappings().all())
        return [_change(r) for r in rows]

    def change(self, key: str, value: Value | None, *, by: str, t_us: int,
               reason: str) -> DefaultChange:
        """Add a change (already checked) with its audit entry; the old value is in the entry."""
        values = {"key": key, "value": None if value is None else canonical_json(value),
                  "set_us": t_us, "set_by": by, "reason": reason}

        def write(conn: Connection) -> dict[str, Any]:
            t = ClinicDefaultRow
            old = conn.execute(select(t.value).where(t.key == key).order_by(t.id.desc())
                               .limit(1)).scalar()
            new_id = int(conn.execute(insert(t).returning(t.id), values).scalar_one())
            row = {**values, "id": new_id}
            audit.append(
                conn, session_id=None, t_us=t_us, actor=by,
                action="clinic_default_set" if value is not None else "clinic_default_unset",
                entity="clinic_defaults", entity_id=new_id, reason=reason,
                detail={"key": key, "old": None if old is None else json.loads(old),
                        "new": value, "rows": {"clinic_defaults": [[new_id, new_id]]}},
                row_digest=row_digest({"clinic_defaults": [canonical_row("clinic_defaults",
                                                                         row)]}))
            return row

        try:
            with self.engine.connect() as conn:
                conn.execution_options(sqlite_immediate=True)  # read-then-write, and an append
                with conn.begin():
                    return _change(write(conn))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not change the clinic default {key}: "
                             f"{reason_of(exc)}") from exc

    def _read(self, query: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                return query(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the clinic defaults: {reason_of(exc)}") from exc


def _change(r: Any) -> DefaultChange:
    return DefaultChange(
        id=int(r["id"]), key=r["key"],
        value=None if r["value"] is None else json.loads(r["value"]),
        set_at=from_us(r["set_us"]), set_by=r["set_by"], reason=r["reason"],
    )
