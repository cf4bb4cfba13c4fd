"""The clinic overview's data: one ``ChairState`` per workstation, read from the shared database.

Read-only. A handful of small statements on one connection, each bounded by an index: today's
sessions (``sessions.started_us``), the newest valid value of each vital by a backward scan of
``readings(session_id, t_us)`` that looks back at most ``LOOKBACK_US``, the phase markers and
check-ins of the chosen sessions, their uncleared alarm rows (folded by ``alarm_log.fold``) and
their charted minutes. Portable SQL (SQLite and PostgreSQL).

The full patient name is read only to make initials here; it never leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.errors import StoreError
from infusion_monitor.session.minutes import minute_of, streak_of
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import NOTIFY_ATTENDING, TECHNICAL_CONDITIONS
from infusion_monitor.store.alarm_log import AUDIO_PAUSED, AlarmEventRecord, AlarmRecord, fold
from infusion_monitor.store.models import ReadingRow, SessionRow, SessionSource
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CheckInRow,
    MinuteEntryRow,
    PhaseMarkerRow,
)
from infusion_monitor.store.notify import CHANNEL, notify_changed
from infusion_monitor.store.repository import reason_of

__all__ = ["CHANNEL", "ChairState", "Latest", "chair_states", "initials", "notify_changed"]

#: After this long without a new value a vital is shown greyed (as on the bedside tiles).
STALE_AFTER_S = {"hr": 15.0, "pr": 15.0, "spo2": 15.0, "nibp": 20 * 60.0}
#: How far back from now (or the session's end) the newest value of a vital is looked for.
LOOKBACK_US = {"hr": 600_000_000, "pr": 600_000_000, "spo2": 600_000_000,
               "nibp_sys": 3_600_000_000, "nibp_dia": 3_600_000_000}
#: A session left open this long before ``since`` is a recorder that died, not a chair in use.
OPEN_ORPHAN_AFTER = timedelta(hours=24)
_URGENCY = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest valid value of a vital and when it was received."""

    value: float
    t: datetime

    def age_s(self, now: datetime) -> float:
        """Seconds since it was received (never negative: the recorder's clock may lead)."""
        return max(0.0, (now - self.t).total_seconds())


@dataclass(frozen=True, slots=True)
class ChairState:
    """What the attending sees of one chair (one workstation's current or latest session)."""

    workstation: str
    session_id: int
    initials: str | None  # from the current check-in; None before check-in
    phase: Phase | None  # the latest phase marker in force; None before check-in
    phase_since: datetime | None
    started: datetime  # check-in, else the session's start
    ended: datetime | None  # the recording stopped (the tile then shows no live alarms)
    hr: Latest | None
    pr: Latest | None
    spo2: Latest | None
    nibp_sys: Latest | None
    nibp_dia: float | None  # of the same measurement as ``nibp_sys``
    alarm_priority: str | None  # the highest active alarm's: high | medium | low | technical
    alarm_urgency: str | None  # high | medium | low (a technical alarm's own urgency)
    alarm_text: str | None
    attending: bool  # the notify-attending flag is up (unacknowledged)
    attending_text: str | None
    unassessed_minutes: int  # finished minutes in a row without an entry (infusion, obs.)
    as_of: datetime

    @property
    def live(self) -> bool:
        return self.ended is None

    def elapsed(self, now: datetime) -> timedelta:
        """From check-in (or session start) to now, or to the end of the recording."""
        return max(timedelta(0), (self.ended or now) - self.started)

    def stale(self, vital: str, now: datetime) -> bool:
        """No value, or an old one: ``vital`` is ``hr``, ``pr``, ``spo2`` or ``nibp``."""
        latest: Latest | None = getattr(self, "nibp_sys" if vital == "nibp" else vital)
        return latest is None or latest.age_s(now) > STALE_AFTER_S[vital]


def initials(name: str | None) -> str | None:
    """"Ada M. Example" and "Example, Ada" -> "AE": given name and surname, never more."""
    if name is None:
        return None
    surname, comma, given = name.partition(",")
    words = (given.split()[:1] + surname.split()[-1:]) if comma else name.split()
    letters = [m.group(0).upper() for w in words if (m := re.search(r"[^\W\d_]", w))]
    if len(letters) > 2:
        letters = [letters[0], letters[-1]]
    return "".join(letters) or None


def chair_states(
    engine: Engine, *, now: datetime, since: datetime | None = None,
) -> list[ChairState]:
    """One state per workstation with an open session or a session started since ``since``
    (default: local midnight of ``now``), from its newest such session; sorted by workstation.
    Recording imports are not chairs. StoreError if the database cannot be read."""
    if since is None:
        since = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with engine.connect() as conn:
            return _states(conn, to_us(now), to_us(since))
    except SQLAlchemyError as exc:
        raise StoreError(f"could not read the clinic overview: {reason_of(exc)}") from exc


def _states(conn: Connection, now_us: int, since_us: int) -> list[ChairState]:
    s = SessionRow
    orphan_us = since_us - int(OPEN_ORPHAN_AFTER.total_seconds() * 1e6)
    rows = conn.execute(
        select(s.id, s.workstation_id, s.started_us, s.ended_us)
        .where(s.started_us >= orphan_us, s.source != SessionSource.IMPORT.value,
               or_(s.ended_us.is_(None), s.started_us >= since_us))
        .order_by(s.started_us, s.id)
    ).all()
    newest: dict[str, Any] = {}
    for row in rows:  # ascending, so the newest session of each workstation wins
        newest[row.workstation_id] = row
    chosen = sorted(newest.values(), key=lambda r: r.workstation_id)
    if not chosen:
        return []
    ids = [r.id for r in chosen]
    open_ids = [r.id for r in chosen if r.ended_us is None]
    names, latest = _names_and_latest(conn, ids, now_us)
    markers = _effective_markers(conn, ids)
    alarms = _active_alarms(conn, open_ids)
    infusing = {sid: m for sid, ms in markers.items() if (m := _infusing_since(ms)) is not None}
    charted = _charted_minutes(conn, [sid for sid in open_ids if sid in infusing])
    now = from_us(now_us)
    out = []
    for r in chosen:
        ms = markers.get(r.id, [])
        current = ms[-1] if ms else None
        check_in = next((m for m in reversed(ms) if m.phase == Phase.CHECK_IN.value), None)
        top, flag = _highest(alarms.get(r.id, []))
        vitals = latest.get(r.id, {})
        sys_, dia = vitals.get("nibp_sys"), vitals.get("nibp_dia")
        unassessed = 0
        if r.id in infusing and r.ended_us is None:
            minute = minute_of(from_us(infusing[r.id]), now)
            if minute is not None:
                unassessed = streak_of(charted.get(r.id, set()), minute)
        out.append(ChairState(
            workstation=r.workstation_id, session_id=r.id, initials=initials(names.get(r.id)),
            phase=None if current is None else Phase(current.phase),
            phase_since=None if current is None else from_us(current.t_us),
            started=from_us(check_in.t_us if check_in is not None else r.started_us),
            ended=None if r.ended_us is None else from_us(r.ended_us),
            hr=vitals.get("hr"), pr=vitals.get("pr"), spo2=vitals.get("spo2"), nibp_sys=sys_,
            nibp_dia=dia.value if dia is not None and sys_ is not None and dia.t == sys_.t
            else None,
            alarm_priority=None if top is None else top.priority,
            alarm_urgency=None if top is None else _urgency(top),
            alarm_text=None if top is None else top.text,
            attending=flag is not None, attending_text=None if flag is None else flag.text,
            unassessed_minutes=unassessed, as_of=now,
        ))
    return out


def _names_and_latest(
    conn: Connection, ids: Sequence[int], now_us: int,
) -> tuple[dict[int, str], dict[int, dict[str, Latest]]]:
    """Per session: the current check-in's name, and the newest valid value of each vital."""
    s = SessionRow
    name = (select(CheckInRow.patient_name).where(CheckInRow.session_id == s.id)
            .order_by(CheckInRow.id.desc()).limit(1).correlate(s).scalar_subquery())
    horizon = func.coalesce(s.ended_us, now_us)

    def newest(vital: str) -> Any:
        r = aliased(ReadingRow)
        return (select(r.id).where(r.session_id == s.id, r.t_us >= horizon - LOOKBACK_US[vital],
                                   r.vital == vital, r.quality == "ok")
                .order_by(r.t_us.desc()).limit(1).correlate(s).scalar_subquery())

    vitals = tuple(LOOKBACK_US)
    head = conn.execute(
        select(s.id, name.label("name"), *(newest(v).label(v) for v in vitals))
        .where(s.id.in_(ids))
    ).all()
    reading_ids = {getattr(h, v) for h in head for v in vitals} - {None}
    values = {}
    if reading_ids:
        values = {row.id: row for row in conn.execute(
            select(ReadingRow.id, ReadingRow.value, ReadingRow.t_us)
            .where(ReadingRow.id.in_(sorted(reading_ids))))}
    names = {h.id: h.name for h in head if h.name is not None}
    latest = {
        h.id: {v: Latest(float(values[rid].value), from_us(values[rid].t_us))
               for v in vitals if (rid := getattr(h, v)) is not None}
        for h in head
    }
    return names, latest


def _effective_markers(conn: Connection, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Per session, its phase markers in force, oldest first (as ``SessionChart`` has them):
    not voided, and not undone by a voiding amendment."""
    m = PhaseMarkerRow
    rows = conn.execute(
        select(m.id, m.session_id, m.phase, m.t_us, m.voided, m.amends_id)
        .where(m.session_id.in_(ids)).order_by(m.id)
    ).all()
    voided = {r.amends_id for r in rows if r.voided}
    out: dict[int, list[Any]] = {}
    for r in rows:
        if not r.voided and r.id not in voided:
            out.setdefault(r.session_id, []).append(r)
    return out


def _infusing_since(markers: Sequence[Any]) -> int | None:
    """The infusion start (µs) while the chart runs minute by minute (infusion, observation)."""
    if not markers or markers[-1].phase not in (Phase.INFUSION.value, Phase.OBSERVATION.value):
        return None
    start = next((m for m in reversed(markers) if m.phase == Phase.INFUSION.value), None)
    return None if start is None else start.t_us


def _charted_minutes(conn: Connection, ids: Sequence[int]) -> dict[int, set[int]]:
    if not ids:
        return {}
    e = MinuteEntryRow
    out: dict[int, set[int]] = {}
    for sid, minute in conn.execute(
        select(e.session_id, e.minute).where(e.session_id.in_(ids), e.minute >= 0).distinct()
    ):
        out.setdefault(sid, set()).add(minute)
    return out


def _active_alarms(conn: Connection, ids: Sequence[int]) -> dict[int, list[AlarmRecord]]:
    """Per session, its alarms still on the display (not cleared), folded from their rows."""
    if not ids:
        return {}
    a = AlarmEventRow
    done = aliased(AlarmEventRow)
    cleared = exists().where(and_(done.alarm_uid == a.alarm_uid, done.event == "cleared"))
    rows = conn.execute(
        select(a.session_id, a.alarm_uid, a.event, a.condition, a.parameter, a.priority, a.t_us,
               a.value, a.limit_value, a.latched, a.by_user, a.detail)
        .where(a.session_id.in_(ids), a.condition != AUDIO_PAUSED, ~cleared)
        .order_by(a.t_us, a.id)
    ).all()
    by_session: dict[int, list[AlarmEventRecord]] = {}
    for r in rows:
        by_session.setdefault(r.session_id, []).append(AlarmEventRecord(
            r.alarm_uid, r.event, r.condition, r.parameter, r.priority, from_us(r.t_us),
            r.value, r.limit_value, bool(r.latched), r.by_user, r.detail))
    return {sid: fold(records) for sid, records in by_session.items()}


def _urgency(alarm: AlarmRecord) -> str:
    """How urgent: a physiological alarm's priority; a technical alarm's own (link lost is
    high; "no valid value" is medium until it escalates to high)."""
    if not alarm.technical:
        return alarm.priority
    cond = TECHNICAL_CONDITIONS.get(alarm.condition)
    base = "medium" if cond is None else cond.priority.value
    return "high" if alarm.escalated and base != "low" else base


def _highest(alarms: Iterable[AlarmRecord]) -> tuple[AlarmRecord | None, AlarmRecord | None]:
    """(the most urgent active alarm, the attending flag if up and unacknowledged).

    Most urgent first; at equal urgency a physiological alarm before a technical one, then the
    newest."""
    top = flag = None
    best: tuple[int, int, datetime] | None = None
    for a in alarms:
        if a.condition == NOTIFY_ATTENDING:
            if a.acknowledged_by is None:
                flag = a
            continue
        key = (_URGENCY.get(_urgency(a), 0), 0 if a.technical else 1, a.start)
        if best is None or key > best:
            top, best = a, key
    return top, flag
