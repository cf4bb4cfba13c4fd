"""The session browser's list: one summary row per session, aggregated in SQL (read-only).

One SELECT over ``sessions`` with correlated subqueries (latest check-in, effective phase
markers, assessed minutes, sign-off) and one grouped subquery (alarms by priority). Portable
SQL: runs on SQLite and PostgreSQL. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, distinct, exists, func, literal, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.errors import StoreError
from infusion_monitor.session.phases import Phase
from infusion_monitor.store.models import SessionRow
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CheckInRow,
    MinuteEntryRow,
    PhaseMarkerRow,
    SignOffRow,
)
from infusion_monitor.store.repository import reason_of

MINUTE_US = 60_000_000
#: Alarm-log rows that are not alarms of their own (the attending flag, the audio pause).
NOT_COUNTED = ("notify_attending", "audio_paused")
PRIORITIES = ("high", "medium", "low", "technical")


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One row of the session browser."""

    session_id: int
    started: datetime
    ended: datetime | None
    patient_id: str | None  # the latest check-in's, else the session's own
    patient_name: str | None
    nurse: str | None
    attending: str | None
    alarms_high: int
    alarms_medium: int
    alarms_low: int
    alarms_technical: int
    infusion_start: datetime | None
    monitored_minutes: int | None  # minute rows from infusion start to discharge (or end)
    unassessed_minutes: int | None  # of those, minutes without any entry
    signed: bool

    @property
    def duration_s(self) -> float | None:
        """Session start to end (None while still open)."""
        return None if self.ended is None else (self.ended - self.started).total_seconds()


def _marker_times(ids: Any) -> Any:
    """Per session in ``ids``: the times of the infusion-start and discharge markers in force.

    A marker is in force unless voided by a later row of the same session amending it; of
    several in force, the newest (highest id) counts, as in ``SessionChart.marker``.
    """
    m = aliased(PhaseMarkerRow)
    undo = aliased(PhaseMarkerRow)
    voided = exists().where(undo.session_id == m.session_id, undo.amends_id == m.id,
                            undo.voided.is_(True))

    def newest(phase: Phase) -> Any:
        return func.max(case((m.phase == phase.value, m.id), else_=None))

    newest_ids = (
        select(m.session_id.label("sid"), newest(Phase.INFUSION).label("inf_id"),
               newest(Phase.DISCHARGED).label("dis_id"))
        .where(m.session_id.in_(ids), m.voided.is_(False), ~voided,
               m.phase.in_((Phase.INFUSION.value, Phase.DISCHARGED.value)))
        .group_by(m.session_id).subquery()
    )
    inf = aliased(PhaseMarkerRow)
    dis = aliased(PhaseMarkerRow)
    return (
        select(newest_ids.c.sid, inf.t_us.label("infusion_us"),
               dis.t_us.label("discharged_us"))
        .select_from(newest_ids)
        .outerjoin(inf, inf.id == newest_ids.c.inf_id)
        .outerjoin(dis, dis.id == newest_ids.c.dis_id)
        .subquery()
    )


def _alarm_counts(ids: Any) -> Any:
    """Per session in ``ids``: its alarms counted by the highest priority each reached."""
    rank = case({"high": 3, "medium": 2, "low": 1}, value=AlarmEventRow.priority, else_=0)
    per_alarm = (
        select(AlarmEventRow.session_id.label("sid"), func.max(rank).label("rank"))
        .where(AlarmEventRow.session_id.in_(ids), AlarmEventRow.condition.not_in(NOT_COUNTED))
        .group_by(AlarmEventRow.session_id, AlarmEventRow.alarm_uid)
        .having(func.sum(case((AlarmEventRow.event == "raised", 1), else_=0)) > 0)
        .subquery()
    )

    def n(r: int) -> Any:
        return func.sum(case((per_alarm.c.rank == r, 1), else_=0))

    return (
        select(per_alarm.c.sid, n(3).label("high"), n(2).label("medium"), n(1).label("low"),
               n(0).label("technical"))
        .group_by(per_alarm.c.sid).subquery()
    )


def _contains(column: Any, text: str) -> Any:
    """Case-insensitive substring match, portable (LIKE with escaped wildcards)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def browse_sessions(
    engine: Engine,
    *,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    patient: str | None = None,
    nurse: str | None = None,
    had_high_alarms: bool = False,
    unsigned: bool = False,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[SessionSummary]:
    """Sessions newest first, each summarised; every filter narrows the list.

    ``date_from``/``date_to`` bound the start time (from inclusive, to exclusive); ``patient``
    matches the patient ID exactly; ``nurse`` and ``search`` (patient ID or name) are
    case-insensitive substrings; "had high alarms" means an alarm reached high priority.

    Two steps in one statement: the page of sessions (filters, order, ``limit``/``offset``)
    is chosen first on cheap columns and indexed EXISTS probes, then only that page is
    aggregated, so a page costs the same with 100 or 100,000 sessions stored.
    """
    latest = (
        select(CheckInRow.session_id.label("sid"), func.max(CheckInRow.id).label("cid"))
        .group_by(CheckInRow.session_id).subquery()
    )
    patient_id = func.coalesce(CheckInRow.patient_id, SessionRow.patient_id)
    page = (
        select(SessionRow.id.label("session_id"), SessionRow.started_us, SessionRow.ended_us,
               patient_id.label("patient_id"), CheckInRow.patient_name, CheckInRow.nurse,
               CheckInRow.attending)
        .select_from(SessionRow)
        .outerjoin(latest, latest.c.sid == SessionRow.id)
        .outerjoin(CheckInRow, CheckInRow.id == latest.c.cid)
    )
    if date_from is not None:
        page = page.where(SessionRow.started_us >= to_us(date_from))
    if date_to is not None:
        page = page.where(SessionRow.started_us < to_us(date_to))
    if patient and patient.strip():
        page = page.where(patient_id == patient.strip())
    if nurse and nurse.strip():
        page = page.where(_contains(CheckInRow.nurse, nurse.strip()))
    if search and search.strip():
        text = search.strip()
        page = page.where(or_(_contains(patient_id, text),
                              _contains(CheckInRow.patient_name, text)))
    if had_high_alarms:
        page = page.where(exists().where(
            AlarmEventRow.session_id == SessionRow.id, AlarmEventRow.priority == "high",
            AlarmEventRow.condition.not_in(NOT_COUNTED)))
    if unsigned:
        page = page.where(~exists().where(SignOffRow.session_id == SessionRow.id))
    page = page.order_by(SessionRow.started_us.desc(), SessionRow.id.desc())
    if limit is not None:
        page = page.limit(limit)
    if offset:
        page = page.offset(offset)
    page = page.subquery()
    ids = select(page.c.session_id).scalar_subquery()
    alarms = _alarm_counts(ids)
    marks = _marker_times(ids)
    end = func.coalesce(marks.c.discharged_us, page.c.ended_us)
    # Every begun minute counts (as the minute log): ceil((end - start) / 1 min), integer maths.
    minutes = (end - marks.c.infusion_us + (MINUTE_US - 1)) // MINUTE_US
    assessed = (
        select(func.count(distinct(MinuteEntryRow.minute)))
        .where(MinuteEntryRow.session_id == page.c.session_id, MinuteEntryRow.minute >= 0,
               MinuteEntryRow.minute < minutes)
        .correlate(page, marks).scalar_subquery()
    )
    signed = exists().where(SignOffRow.session_id == page.c.session_id)
    stmt = (
        select(
            page, func.coalesce(alarms.c.high, 0).label("high"),
            func.coalesce(alarms.c.medium, 0).label("medium"),
            func.coalesce(alarms.c.low, 0).label("low"),
            func.coalesce(alarms.c.technical, 0).label("technical"),
            marks.c.infusion_us, minutes.label("minutes"), assessed.label("assessed"),
            case((signed, literal(1)), else_=literal(0)).label("signed"),
        )
        .select_from(page)
        .outerjoin(alarms, alarms.c.sid == page.c.session_id)
        .outerjoin(marks, marks.c.sid == page.c.session_id)
        .order_by(page.c.started_us.desc(), page.c.session_id.desc())
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"could not read the database: {reason_of(exc)}") from exc
    return [_summary(r) for r in rows]


def _summary(r: Any) -> SessionSummary:
    minutes = None if r.minutes is None else max(0, int(r.minutes))
    return SessionSummary(
        session_id=r.session_id, started=from_us(r.started_us),
        ended=None if r.ended_us is None else from_us(r.ended_us),
        patient_id=r.patient_id, patient_name=r.patient_name, nurse=r.nurse,
        attending=r.attending, alarms_high=int(r.high), alarms_medium=int(r.medium),
        alarms_low=int(r.low), alarms_technical=int(r.technical),
        infusion_start=None if r.infusion_us is None else from_us(r.infusion_us),
        monitored_minutes=minutes,
        unassessed_minutes=None if minutes is None else max(0, minutes - int(r.assessed or 0)),
        signed=bool(r.signed),
    )

