"""chair_states: one state per chair from real writes, exact on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from infusion_monitor.clock import to_us
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database
from infusion_monitor.store.alarm_log import AlarmEventRecord, AlarmLog
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.models import SessionRow
from infusion_monitor.store.overview import ChairState, chair_states, initials
from infusion_monitor.vitals import Quality, Reading, Vital

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)  # "today" for these tests
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)


def session(db: Database, workstation: str, started: datetime, *, ended: datetime | None = None,
            source: str = "record") -> int:
    sid = db.repository.create_session(source=source, protocol="datex-s5", started=started,
                                       workstation_id=workstation)
    if ended is not None:
        db.repository.end_session(sid, ended)
    return sid


def check_in(db: Database, sid: int, name: str, t: datetime) -> None:
    ChartStore(db.engine).add_check_in(
        sid, patient_id=f"MRN-{sid}", patient_name=name, birth_date=None, weight_kg=70,
        dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A", nurse="N B", entered=t,
        by="nurse", with_marker=True)


def marker(db: Database, sid: int, phase: Phase, t: datetime, **kw) -> int:
    return ChartStore(db.engine).add_marker(sid, phase=phase, t=t, entered=t, by="nurse",
                                            **kw).id


def readings(db: Database, sid: int, *items: tuple[Vital, float, datetime, Quality]) -> None:
    db.repository.insert_readings(sid, [Reading(v, x, q, t_received=t) for v, x, t, q in items])


def alarm(db: Database, sid: int, uid: str, condition: str, priority: str,
          events: tuple[str, ...], text: str = "", t: datetime = NOW - MIN) -> None:
    AlarmLog(db.engine).append(sid, [
        AlarmEventRecord(uid, ev, condition, None, priority, t + i * S, detail=text,
                         by="dr" if ev == "acknowledged" else None)
        for i, ev in enumerate(events)])


OK = Quality.OK


def by_chair(states: list[ChairState]) -> dict[str, ChairState]:
    return {s.workstation: s for s in states}


def test_initials_never_more_than_given_name_and_surname():
    assert initials("Ada M. Example") == "AE"
    assert initials("Example, Ada Maria") == "AE"
    assert initials("  zoë   ñandú ") == "ZÑ"
    assert initials("Cher") == "C"
    assert initials("") is None and initials(None) is None


def test_each_chair_shows_its_own_current_session(db: Database) -> None:
    # chair-1: an ended session this morning, then the current one (infusing).
    session(db, "chair-1", NOW - 5 * 60 * MIN, ended=NOW - 4 * 60 * MIN)
    c1 = session(db, "chair-1", NOW - 40 * MIN)
    check_in(db, c1, "Ada M. Example", NOW - 38 * MIN)
    marker(db, c1, Phase.BASELINE, NOW - 30 * MIN)
    marker(db, c1, Phase.INFUSION, NOW - 10 * MIN - 30 * S)  # now is in minute 10
    obs = marker(db, c1, Phase.OBSERVATION, NOW - 2 * MIN)
    marker(db, c1, Phase.OBSERVATION, NOW - 2 * MIN, voided=True, amends_id=obs,
           reason="pressed too early")
    chart = ChartStore(db.engine)
    for minute in (0, 1, 2, 3, 4, 5, 5):  # minute 5 amended: one minute; 6..9 not charted
        chart.add_minute_entry(c1, minute=minute, dissociation=1, rass=0, distress=0,
                               entered=NOW, by="nurse")
    readings(db, c1,
             (Vital.HR, 71, NOW - 60 * S, OK), (Vital.HR, 88, NOW - 2 * S, OK),
             (Vital.HR, 320, NOW - 1 * S, Quality.ARTIFACT),  # newest HR is not valid
             (Vital.SPO2, 97, NOW - 30 * S, OK),
             (Vital.NIBP_SYS, 120, NOW - 6 * MIN, OK), (Vital.NIBP_DIA, 80, NOW - 6 * MIN, OK),
             (Vital.NIBP_SYS, 184, NOW - 1 * MIN, OK), (Vital.NIBP_DIA, 112, NOW - 1 * MIN, OK),
             (Vital.NIBP_MEAN, 136, NOW - 1 * MIN, OK))
    alarm(db, c1, "a1", "sbp_high", "medium", ("raised",), "NIBP sys 184 ≥ 180")
    alarm(db, c1, "a2", "nibp_overdue", "technical", ("raised",), "NIBP overdue")
    alarm(db, c1, "a3", "spo2_low_severe", "high",
          ("raised", "ended", "acknowledged", "cleared"), "SpO2 85 < 88")  # over: not shown
    alarm(db, c1, "a4", "audio_paused", "technical", ("paused",))
    alarm(db, c1, "f1", "notify_attending", "medium", ("raised", "triggered"),
          "Notify attending: NIBP sys 184 ≥ 180")
    # chair-2: baseline, a latched high alarm still up, the attending already came.
    c2 = session(db, "chair-2", NOW - 20 * MIN)
    check_in(db, c2, "Example, Ben", NOW - 19 * MIN)
    marker(db, c2, Phase.BASELINE, NOW - 15 * MIN)
    readings(db, c2, (Vital.HR, 64, NOW - 1 * S, OK), (Vital.PR, 65, NOW - 1 * S, OK))
    alarm(db, c2, "b1", "spo2_low_severe", "high", ("raised", "ended"), "SpO2 86 < 88")
    alarm(db, c2, "b2", "link_lost", "technical", ("raised",), "Monitor link lost")
    alarm(db, c2, "g1", "notify_attending", "high",
          ("raised", "acknowledged", "ended", "cleared"), "Notify attending: SpO2 86 < 88")
    # Not chairs: yesterday's session, an import, a session left open three days ago.
    session(db, "chair-3", NOW - 30 * 60 * MIN, ended=NOW - 29 * 60 * MIN)
    session(db, "chair-1", NOW - 60 * MIN, source="import")
    session(db, "chair-4", NOW - 3 * 24 * 60 * MIN)

    states = chair_states(db.engine, now=NOW, since=SINCE)

    assert [s.workstation for s in states] == ["chair-1", "chair-2"]
    one, two = states
    assert (one.session_id, one.initials, one.phase) == (c1, "AE", Phase.INFUSION)
    assert one.phase_since == NOW - 10 * MIN - 30 * S
    assert one.started == NOW - 38 * MIN and one.elapsed(NOW) == 38 * MIN
    assert one.live and one.ended is None
    assert (one.hr.value, one.hr.t) == (88, NOW - 2 * S)
    assert one.pr is None and one.spo2.value == 97
    assert (one.nibp_sys.value, one.nibp_dia, one.nibp_sys.t) == (184, 112, NOW - MIN)
    assert not one.stale("hr", NOW) and one.stale("spo2", NOW) and one.stale("pr", NOW)
    assert (one.alarm_priority, one.alarm_urgency) == ("medium", "medium")
    assert one.alarm_text == "NIBP sys 184 ≥ 180"
    assert one.attending and one.attending_text == "Notify attending: NIBP sys 184 ≥ 180"
    assert one.unassessed_minutes == 4  # minutes 6, 7, 8, 9; minute 10 is in progress

    assert (two.session_id, two.initials, two.phase) == (c2, "BE", Phase.BASELINE)
    assert (two.hr.value, two.pr.value) == (64, 65)
    assert two.spo2 is None and two.nibp_sys is None and two.nibp_dia is None
    # High physiological beats high technical; latched until acknowledged.
    assert (two.alarm_priority, two.alarm_text) == ("high", "SpO2 86 < 88")
    assert not two.attending and two.unassessed_minutes == 0
    for state in states:  # initials only: the name is nowhere in what the overview gets
        assert "Example" not in repr(state) and "Ada" not in repr(state)


def test_technical_alarms_rank_by_their_own_urgency(db: Database) -> None:
    sid = session(db, "chair-5", NOW - 10 * MIN)
    alarm(db, sid, "t1", "nibp_overdue", "technical", ("raised",), "NIBP overdue")
    alarm(db, sid, "t2", "charting_overdue", "low", ("raised",), "3 minutes not charted")
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert (state.alarm_priority, state.alarm_text) == ("low", "3 minutes not charted")
    alarm(db, sid, "t3", "signal_lost", "technical", ("raised",), "SpO2: probe off")
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert (state.alarm_priority, state.alarm_urgency) == ("technical", "medium")
    alarm(db, sid, "t3", "signal_lost", "technical", ("escalated",), t=NOW)  # after 60 s
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert (state.alarm_urgency, state.alarm_text) == ("high", "SpO2: probe off")
    alarm(db, sid, "t3", "signal_lost", "technical", ("ended", "cleared"), t=NOW)
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert state.alarm_urgency == "low"


def test_an_ended_session_shows_its_last_values_but_no_live_alarms(db: Database) -> None:
    sid = session(db, "chair-6", NOW - 90 * MIN)
    readings(db, sid, (Vital.HR, 77, NOW - 31 * MIN, OK))
    alarm(db, sid, "x", "hr_high_severe", "high", ("raised", "ended"), "HR 140 > 130")
    db.repository.end_session(sid, NOW - 30 * MIN)
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert state.ended == NOW - 30 * MIN and not state.live
    assert state.hr.value == 77  # looked for back from the end, not from now
    assert state.alarm_priority is None and not state.attending
    assert state.elapsed(NOW) == 60 * MIN and state.started == NOW - 90 * MIN


def test_a_new_session_at_a_chair_replaces_the_previous_one(db: Database) -> None:
    first = session(db, "chair-1", NOW - 120 * MIN, ended=NOW - 60 * MIN)
    readings(db, first, (Vital.HR, 90, NOW - 61 * MIN, OK))
    second = session(db, "chair-1", NOW - 5 * MIN)
    [state] = chair_states(db.engine, now=NOW, since=SINCE)
    assert state.session_id == second and state.hr is None and state.initials is None
    assert state.phase is None and state.started == NOW - 5 * MIN


def test_a_chair_with_two_open_sessions_shows_the_newest(db: Database) -> None:
    # A recorder that crashed leaves its session open; the chair's next session is shown.
    session(db, "chair-1", NOW - 120 * MIN)
    newer = session(db, "chair-1", NOW - 10 * MIN)
    assert [s.session_id for s in chair_states(db.engine, now=NOW, since=SINCE)] == [newer]


def test_no_sessions_no_chairs(db: Database) -> None:
    assert chair_states(db.engine, now=NOW, since=SINCE) == []


def test_workstation_ids_are_kept_exactly(db: Database) -> None:
    # Same prefix, case and a space: distinct chairs, never merged.
    for ws in ("chair-1", "Chair-1", "chair-1 ", "chair-10"):
        with db.engine.begin() as conn:
            conn.execute(insert(SessionRow).values(
                uid=f"u-{ws}", workstation_id=ws, source="record", protocol="datex-s5",
                started_us=to_us(NOW - MIN)))
    names = [s.workstation for s in chair_states(db.engine, now=NOW, since=SINCE)]
    assert sorted(names) == sorted(["chair-1", "Chair-1", "chair-1 ", "chair-10"])
