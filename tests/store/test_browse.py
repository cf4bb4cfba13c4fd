"""browse_sessions: exact aggregates on hand-built sessions, every filter, SQLite + PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from infusion_monitor.clock import to_us
from infusion_monitor.store import open_database
from infusion_monitor.store.browse import browse_sessions
from infusion_monitor.store.models import SessionRow
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CheckInRow,
    MinuteEntryRow,
    PhaseMarkerRow,
    SignOffRow,
)

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _session(conn, sid: int, start: datetime, patient: str, name: str, nurse: str) -> None:
    conn.execute(insert(SessionRow).values(
        id=sid, uid=f"u{sid}", workstation_id="ws", patient_id=None, source="gui",
        protocol="datex-s5", port=None, started_us=to_us(start),
        ended_us=to_us(start + 80 * MIN), note=None))
    conn.execute(insert(CheckInRow).values(
        session_id=sid, patient_id=patient, patient_name=name, attending="Dr X", nurse=nurse,
        entered_us=to_us(start), entered_by=nurse))


def _marker(conn, sid: int, phase: str, t: datetime, *, voided: bool = False,
            amends: int | None = None, mid: int | None = None) -> None:
    conn.execute(insert(PhaseMarkerRow).values(
        **({} if mid is None else {"id": mid}), session_id=sid, phase=phase, t_us=to_us(t),
        detail="{}", voided=voided, entered_us=to_us(t), entered_by="n", amends_id=amends))


def _alarm(conn, sid: int, uid: str, rows: list[tuple[str, str]], condition: str = "x") -> None:
    for event, priority in rows:
        conn.execute(insert(AlarmEventRow).values(
            session_id=sid, alarm_uid=uid, event=event, condition=condition, parameter=None,
            priority=priority, t_us=to_us(T0), detail=""))


@pytest.fixture
def engine(db_url: str):
    database = open_database(db_url)
    with database.engine.begin() as conn:
        # 1: infusion 10 min after start, discharged at 50 min -> 40 minutes; 3 assessed
        # (minute 4 twice: an amendment), one out of range; alarms 1 high (escalated from
        # medium), 1 medium, 2 low, 1 technical; notify_attending not counted; signed.
        _session(conn, 1, T0, "MRN-1", "Ada Example", "R. Nurse")
        _marker(conn, 1, "infusion", T0 + 10 * MIN)
        _marker(conn, 1, "discharged", T0 + 50 * MIN)
        for minute in (0, 4, 4, 39, 40):
            conn.execute(insert(MinuteEntryRow).values(
                session_id=1, minute=minute, dissociation=0, rass=0, distress=0,
                entered_us=to_us(T0), entered_by="n"))
        _alarm(conn, 1, "a", [("raised", "medium"), ("escalated", "high"), ("ended", "high")])
        _alarm(conn, 1, "b", [("raised", "medium")])
        _alarm(conn, 1, "c", [("raised", "low")])
        _alarm(conn, 1, "d", [("raised", "low"), ("acknowledged", "low")])
        _alarm(conn, 1, "e", [("raised", "technical")])
        _alarm(conn, 1, "f", [("raised", "high")], condition="notify_attending")
        _alarm(conn, 1, "g", [("acknowledged", "high")])  # a stray row: no alarm
        conn.execute(insert(SignOffRow).values(
            session_id=1, signed_by="s", printed_name="S", role="supervisor",
            meaning="reviewed", signed_us=to_us(T0 + timedelta(days=1))))
        # 2: a day later; infusion start undone and set again (voided marker), no discharge:
        # ends with the session (80 min) -> 80 - 20 = 60 minutes, none assessed.
        t1 = T0 + timedelta(days=1)
        _session(conn, 2, t1, "MRN-2", "Ben Okafor", "K. Adeyemi")
        _marker(conn, 2, "infusion", t1 + 5 * MIN, mid=100)
        _marker(conn, 2, "infusion", t1 + 5 * MIN, voided=True, amends=100, mid=101)
        _marker(conn, 2, "infusion", t1 + 20 * MIN, mid=102)
        # 3: two days later, never infused; a later amended check-in renames the patient.
        t2 = T0 + timedelta(days=2)
        _session(conn, 3, t2, "MRN-3", "Cleo Wrong", "R. Nurse")
        conn.execute(insert(CheckInRow).values(
            session_id=3, patient_id="MRN-3", patient_name="Cleo Moreau", attending="Dr Y",
            nurse="L. Berg", entered_us=to_us(t2), entered_by="L. Berg", amends_id=None))
    yield database.engine
    database.close()


def test_aggregates_are_exact(engine) -> None:
    s3, s2, s1 = browse_sessions(engine)  # newest first
    assert (s1.patient_id, s1.patient_name, s1.nurse, s1.attending) == (
        "MRN-1", "Ada Example", "R. Nurse", "Dr X")
    assert (s1.alarms_high, s1.alarms_medium, s1.alarms_low, s1.alarms_technical) == (1, 1, 2, 1)
    assert (s1.monitored_minutes, s1.unassessed_minutes, s1.signed) == (40, 37, True)
    assert s1.duration_s == 80 * 60
    assert s1.infusion_start == T0 + 10 * MIN
    assert (s2.monitored_minutes, s2.unassessed_minutes, s2.signed) == (60, 60, False)
    assert s2.infusion_start == T0 + timedelta(days=1, minutes=20)
    assert (s2.alarms_high, s2.alarms_low) == (0, 0)
    assert (s3.patient_name, s3.nurse, s3.monitored_minutes, s3.unassessed_minutes) == (
        "Cleo Moreau", "L. Berg", None, None)


def ids(engine, **kw) -> list[int]:
    return [s.session_id for s in browse_sessions(engine, **kw)]


def test_filters_and_search(engine) -> None:
    assert ids(engine, date_from=T0 + timedelta(hours=1)) == [3, 2]
    assert ids(engine, date_to=T0 + timedelta(days=1)) == [1]
    assert ids(engine, date_from=T0, date_to=T0 + timedelta(days=2)) == [2, 1]
    assert ids(engine, patient="MRN-2") == [2]
    assert ids(engine, nurse="nurse") == [1]  # session 3's current check-in: L. Berg
    assert ids(engine, nurse="BERG") == [3]
    assert ids(engine, had_high_alarms=True) == [1]
    assert ids(engine, unsigned=True) == [3, 2]
    assert ids(engine, search="mrn-3") == [3]
    assert ids(engine, search="okafor") == [2]
    assert ids(engine, search="Cleo Moreau") == [3]
    assert ids(engine, search="%") == []  # wildcards are literal
    assert ids(engine, limit=2) == [3, 2]
    assert ids(engine, limit=2, offset=2) == [1]
    assert ids(engine, unsigned=True, search="ben") == [2]
