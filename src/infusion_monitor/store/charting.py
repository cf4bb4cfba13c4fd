"""Append-only reads and writes of the charted record: check-in, markers, minutes, notes, CADSS.

Every function here INSERTs or SELECTs; nothing is UPDATEd or DELETEd. A correction is a new row
whose ``amends_id`` names the row it corrects; ``chains`` folds rows into their version history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.errors import StoreError
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import audit
from infusion_monitor.store.models_clinical import (
    CadssFormRow,
    CheckInRow,
    MinuteEntryRow,
    NoteRow,
    PhaseMarkerRow,
)
from infusion_monitor.store.notify import notify_changed
from infusion_monitor.store.repository import reason_of

#: The alarm-log condition under which the "3 minutes not charted" reminder is recorded.
CHARTING_OVERDUE = "charting_overdue"


@dataclass(frozen=True, slots=True)
class CheckIn:
    """Who the patient is and what is planned (one version)."""

    id: int
    session_id: int
    patient_id: str
    patient_name: str
    birth_date: date | None
    weight_kg: float | None
    dose_mg_per_kg: float | None
    planned_minutes: int | None
    attending: str
    nurse: str
    entered_at: datetime
    entered_by: str
    amends_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseMarker:
    """A phase began at ``t``; a row with ``voided`` set undoes the marker it amends."""

    id: int
    session_id: int
    phase: Phase
    t: datetime
    detail_json: str
    voided: bool
    entered_at: datetime
    entered_by: str
    amends_id: int | None = None
    reason: str | None = None

    @property
    def detail(self) -> dict[str, Any]:
        """The JSON detail (baseline values, discharge check), parsed afresh each time."""
        parsed = json.loads(self.detail_json or "{}")
        return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True, slots=True)
class MinuteEntry:
    """The nurse's three scores for one minute (None = that score not assessed)."""

    id: int
    session_id: int
    minute: int
    dissociation: int | None
    rass: int | None
    distress: int | None
    entered_at: datetime
    entered_by: str
    amends_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Free text pinned to a time (and the minute of the infusion it fell in, if any)."""

    id: int
    session_id: int
    t: datetime
    minute: int | None
    text: str
    entered_at: datetime
    entered_by: str
    amends_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CadssForm:
    """A CADSS-6 form: item number -> 0..4, at a time point."""

    id: int
    session_id: int
    timepoint: str
    items: tuple[tuple[int, int], ...]  # (item number, 0..4) for 1, 2, 6, 7, 15, 22
    t: datetime
    entered_at: datetime
    entered_by: str
    amends_id: int | None = None
    reason: str | None = None

    @property
    def total(self) -> int:
        return sum(score for _, score in self.items)


class Versioned(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def amends_id(self) -> int | None: ...


V = TypeVar("V", bound=Versioned)


def chains(items: Iterable[V]) -> list[tuple[V, ...]]:
    """Fold rows into version chains, each oldest -> newest, in the order of their first row.

    If two rows ever amend the same row (two workstations at once), the newer one (higher id)
    continues the chain and the other is still kept, as its own chain, so nothing disappears.
    """
    by_id = {item.id: item for item in items}
    children: dict[int, list[V]] = {}
    for item in by_id.values():
        if item.amends_id is not None and item.amends_id in by_id:
            children.setdefault(item.amends_id, []).append(item)
    out: list[tuple[V, ...]] = []
    in_chain: set[int] = set()
    for item in sorted(by_id.values(), key=lambda i: i.id):
        if item.id in in_chain:
            continue
        chain = [item]
        while kids := children.get(chain[-1].id):
            chain.append(max(kids, key=lambda k: k.id))
        in_chain.update(c.id for c in chain)
        out.append(tuple(chain))
    return out


def latest(items: Iterable[V]) -> list[V]:
    """The newest version of every chain."""
    return [chain[-1] for chain in chains(items)]


def versions(items: Iterable[V], item_id: int) -> tuple[V, ...]:
    """The whole chain (oldest -> newest) that contains ``item_id``; empty if none does."""
    for chain in chains(items):
        if any(c.id == item_id for c in chain):
            return chain
    return ()


class ChartStore:
    """Inserts and reads the charting tables over one engine; failures become StoreError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- inserts ------------------------------------------------------------------------------
    def add_check_in(
        self, session_id: int, *, patient_id: str, patient_name: str, birth_date: date | None,
        weight_kg: float | None, dose_mg_per_kg: float | None, planned_minutes: int | None,
        attending: str, nurse: str, entered: datetime, by: str, amends_id: int | None = None,
        reason: str | None = None, with_marker: bool = False,
    ) -> tuple[CheckIn, PhaseMarker | None]:
        """A check-in (or its amendment); ``with_marker`` adds the check-in phase marker in the
        same transaction, so a first check-in is never half-written."""
        values = {
            "session_id": session_id, "patient_id": patient_id, "patient_name": patient_name,
            "birth_date": None if birth_date is None else birth_date.isoformat(),
            "weight_kg": weight_kg, "dose_mg_per_kg": dose_mg_per_kg,
            "planned_minutes": planned_minutes, "attending": attending, "nurse": nurse,
            **_stamp(entered, by, amends_id, reason),
        }
        rows = [(CheckInRow, values)]
        if with_marker:
            rows.append((PhaseMarkerRow, {
                "session_id": session_id, "phase": str(Phase.CHECK_IN), "t_us": to_us(entered),
                "detail": "{}", "voided": False, **_stamp(entered, by, None, None),
            }))
        written = self._insert_all(rows)
        return _check_in(written[0]), (_marker(written[1]) if with_marker else None)

    def add_marker(
        self, session_id: int, *, phase: Phase, t: datetime, detail: dict[str, Any] | None = None,
        voided: bool = False, entered: datetime, by: str, amends_id: int | None = None,
        reason: str | None = None,
    ) -> PhaseMarker:
        values = {
            "session_id": session_id, "phase": str(phase), "t_us": to_us(t),
            "detail": json.dumps(detail or {}, sort_keys=True), "voided": voided,
            **_stamp(entered, by, amends_id, reason),
        }
        return _marker(self._insert(PhaseMarkerRow, values))

    def add_minute_entry(
        self, session_id: int, *, minute: int, dissociation: int | None, rass: int | None,
        distress: int | None, entered: datetime, by: str, amends_id: int | None = None,
        reason: str | None = None,
    ) -> MinuteEntry:
        values = {
            "session_id": session_id, "minute": minute, "dissociation": dissociation,
            "rass": rass, "distress": distress, **_stamp(entered, by, amends_id, reason),
        }
        return _minute_entry(self._insert(MinuteEntryRow, values))

    def add_note(
        self, session_id: int, *, t: datetime, minute: int | None, text: str, entered: datetime,
        by: str, amends_id: int | None = None, reason: str | None = None,
    ) -> Note:
        values = {
            "session_id": session_id, "t_us": to_us(t), "minute": minute, "text": text,
            **_stamp(entered, by, amends_id, reason),
        }
        return _note(self._insert(NoteRow, values))

    def add_cadss(
        self, session_id: int, *, timepoint: str, items: dict[int, int], t: datetime,
        entered: datetime, by: str, amends_id: int | None = None, reason: str | None = None,
    ) -> CadssForm:
        values: dict[str, Any] = {
            "session_id": session_id, "timepoint": timepoint, "t_us": to_us(t),
            **{f"item{n}": items[n] for n in _CADSS_NUMBERS},
            **_stamp(entered, by, amends_id, reason),
        }
        return _cadss(self._insert(CadssFormRow, values))

    # -- reads --------------------------------------------------------------------------------
    def check_ins(self, session_id: int) -> list[CheckIn]:
        return [_check_in(r) for r in self._select(CheckInRow, session_id)]

    def markers(self, session_id: int) -> list[PhaseMarker]:
        return [_marker(r) for r in self._select(PhaseMarkerRow, session_id)]

    def minute_entries(self, session_id: int) -> list[MinuteEntry]:
        return [_minute_entry(r) for r in self._select(MinuteEntryRow, session_id)]

    def notes(self, session_id: int) -> list[Note]:
        return [_note(r) for r in self._select(NoteRow, session_id)]

    def cadss_forms(self, session_id: int) -> list[CadssForm]:
        return [_cadss(r) for r in self._select(CadssFormRow, session_id)]

    # -- plumbing -----------------------------------------------------------------------------
    def _insert(self, model: Any, values: dict[str, Any]) -> dict[str, Any]:
        return self._insert_all([(model, values)])[0]

    def _insert_all(self, rows: list[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Insert rows in one transaction, each with its audit entry (who, when, why);
        returns each row's values with its new id."""
        out = []
        try:
            with self.engine.begin() as conn:
                for model, values in rows:
                    new_id = conn.execute(insert(model).returning(model.id), values).scalar_one()
                    out.append({**values, "id": int(new_id)})
                    audit.record_chart_row(conn, model.__tablename__, out[-1])
                notify_changed(conn, {values["session_id"] for _, values in rows})
        except SQLAlchemyError as exc:
            tables = ", ".join(m.__tablename__ for m, _ in rows)
            raise StoreError(f"could not save to {tables}: {reason_of(exc)}") from exc
        return out

    def _select(self, model: Any, session_id: int) -> list[dict[str, Any]]:
        stmt = select(model.__table__).where(model.session_id == session_id).order_by(model.id)
        return [dict(r._mapping) for r in self._rows(stmt)]

    def _rows(self, stmt: Any) -> Sequence[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the chart: {reason_of(exc)}") from exc


_CADSS_NUMBERS = (1, 2, 6, 7, 15, 22)


def _stamp(entered: datetime, by: str, amends_id: int | None, reason: str | None) -> dict[str, Any]:
    return {"entered_us": to_us(entered), "entered_by": by, "amends_id": amends_id,
            "reason": reason}


def _common(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": int(r["id"]), "session_id": r["session_id"],
            "entered_at": from_us(r["entered_us"]), "entered_by": r["entered_by"],
            "amends_id": r["amends_id"], "reason": r["reason"]}


def _check_in(r: dict[str, Any]) -> CheckIn:
    return CheckIn(
        patient_id=r["patient_id"], patient_name=r["patient_name"],
        birth_date=None if r["birth_date"] is None else date.fromisoformat(r["birth_date"]),
        weight_kg=r["weight_kg"], dose_mg_per_kg=r["dose_mg_per_kg"],
        planned_minutes=r["planned_minutes"], attending=r["attending"], nurse=r["nurse"],
        **_common(r),
    )


def _marker(r: dict[str, Any]) -> PhaseMarker:
    return PhaseMarker(phase=Phase(r["phase"]), t=from_us(r["t_us"]), detail_json=r["detail"],
                       voided=bool(r["voided"]), **_common(r))


def _minute_entry(r: dict[str, Any]) -> MinuteEntry:
    return MinuteEntry(minute=r["minute"], dissociation=r["dissociation"], rass=r["rass"],
                       distress=r["distress"], **_common(r))


def _note(r: dict[str, Any]) -> Note:
    return Note(t=from_us(r["t_us"]), minute=r["minute"], text=r["text"], **_common(r))


def _cadss(r: dict[str, Any]) -> CadssForm:
    return CadssForm(
        timepoint=r["timepoint"], items=tuple((n, int(r[f"item{n}"])) for n in _CADSS_NUMBERS),
        t=from_us(r["t_us"]), **_common(r),
    )
