"""Crash recovery's core: open sessions of a chair, the restored alarm state, the gap, the audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.clock import ManualClock
from infusion_monitor.config import Settings
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.errors import StoreError
from infusion_monitor.session.alarm_monitor import to_record
from infusion_monitor.session.alarm_types import ChangeKind
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.resume import (
    INTERRUPTED,
    GapNote,
    OpenSessionError,
    interrupted_sessions,
    open_sessions,
    restore_alarms,
    settle_open_sessions,
)
from infusion_monitor.session.thresholds import Priority
from infusion_monitor.store.alarm_log import AlarmLog, LimitChangeRecord
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CHAIR = "chair-3"


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def nibp(sys_: float, dia: float, t: float) -> list[Reading]:
    mean = round(dia + (sys_ - dia) / 3)
    return [Reading(v, x, Quality.OK, t_received=at(t))
            for v, x in ((Vital.NIBP_SYS, sys_), (Vital.NIBP_DIA, dia), (Vital.NIBP_MEAN, mean))]


def fresh(origin: datetime) -> AlarmEngine:
    engine = AlarmEngine(origin=origin)
    engine.on_link_state("stopped", "", 0)  # not about the link watchdog
    return engine


def crashed_engine() -> tuple[AlarmEngine, list]:
    """A session that went hypertensive: 185/112 (medium), then 205/125 (high, latched)."""
    engine = fresh(T0)
    changes = engine.on_events(nibp(185, 112, 10)) + engine.on_events(nibp(205, 125, 20))
    return engine, [to_record(c) for c in changes]


# -- the alarm state ---------------------------------------------------------------------------
def test_latched_high_alarms_stay_shown_and_the_rest_is_judged_again():
    old, records = crashed_engine()
    assert {a.condition for a in old.active()} >= {"sbp_high_severe", "dbp_high_severe"}
    engine = fresh(at(300))  # resumed 5 min later; the app stopped at 20 s
    changes = restore_alarms(engine, records, interrupted_at=at(21), phase=Phase.INFUSION)

    shown = {a.condition: a for a in engine.active()}
    assert set(shown) == {"sbp_high_severe", "dbp_high_severe"}  # the medium ones cleared
    for a in shown.values():
        assert a.latched and not a.active and a.acknowledged_by is None
        assert a.priority is Priority.HIGH and a.started == at(20)
    ended = [c for c in changes if c.kind is ChangeKind.ENDED]
    assert {c.condition for c in ended} == {"sbp_high", "dbp_high", "sbp_high_severe",
                                            "dbp_high_severe"}
    assert all(c.time == at(21) and c.detail == INTERRUPTED for c in ended)
    cleared = {c.condition for c in changes if c.kind is ChangeKind.CLEARED}
    assert cleared == {"sbp_high", "dbp_high"}
    # The same alarms, not copies: their uids go on, and so does the attending flag.
    assert {a.uid for a in engine.history()} == {a.uid for a in old.history()}
    assert engine.flag() is not None and engine.flag().uid == old.flag().uid
    assert engine.phase is Phase.INFUSION


def test_a_restored_latched_alarm_is_acknowledged_and_cleared_under_its_own_uid():
    old, records = crashed_engine()
    engine = fresh(at(300))
    restore_alarms(engine, records, interrupted_at=at(21), phase=None)
    uid = next(a.uid for a in engine.active() if a.condition == "sbp_high_severe")
    changes = engine.acknowledge(uid, by="R. Nurse", now=1.0)
    assert [(c.kind, c.alarm_uid) for c in changes] == [
        (ChangeKind.ACKNOWLEDGED, uid), (ChangeKind.CLEARED, uid)]
    assert uid not in {a.uid for a in engine.active()}
    flag = engine.flag()
    assert flag is not None and flag.uid == old.flag().uid
    changes = engine.acknowledge_attending(by="Dr A", role="attending", now=2.0)
    assert engine.flag() is None and {c.alarm_uid for c in changes} == {flag.uid}


def test_escalation_goes_on_from_the_resume_without_inventing_the_gap():
    _, records = crashed_engine()
    engine = fresh(at(300))  # the alarms started at 20 s; escalation every 60 s
    changes = restore_alarms(engine, records, interrupted_at=at(21), phase=None)
    assert not [c for c in changes if c.kind is ChangeKind.ESCALATED]
    # The first escalation due after the resume (at 300 s) is 20 + 5 x 60 = 320 s: 20 s on
    # the new timeline; the ones that fell in the gap are not written after the fact.
    assert not [c for c in engine.tick(19.0) if c.kind is ChangeKind.ESCALATED]
    escalated = [c for c in engine.tick(21.0) if c.kind is ChangeKind.ESCALATED]
    assert {c.time for c in escalated} == {at(320)}


def test_an_acknowledged_alarm_is_not_asked_again():
    old = fresh(T0)
    changes = old.on_events(nibp(205, 125, 10))
    uid = next(a.uid for a in old.active() if a.condition == "sbp_high_severe")
    changes += old.acknowledge(uid, by="R. Nurse", now=12)
    engine = fresh(at(100))
    restore_alarms(engine, [to_record(c) for c in changes], interrupted_at=at(15), phase=None)
    assert uid not in {a.uid for a in engine.active()}  # ended at the crash, and acknowledged
    restored = next(a for a in engine.history() if a.uid == uid)
    assert restored.acknowledged_by == "R. Nurse"


@pytest.mark.parametrize(("resume_after", "left"), [(30, 90.0), (130, 0.0)])
def test_an_audio_pause_runs_to_its_own_end(resume_after, left):
    old, records = crashed_engine()
    records += [to_record(c) for c in old.pause_audio(21, by="R. Nurse", minutes=2)]
    engine = fresh(at(21 + resume_after))
    restore_alarms(engine, records, interrupted_at=at(21), phase=None)
    assert engine.audio_pause_remaining(0.0) == pytest.approx(left)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(150, 230), st.integers(70, 135), st.booleans()),
                min_size=1, max_size=8))
def test_what_stays_shown_is_exactly_the_latched_unacknowledged(steps):
    """Any run of NIBPs, some acknowledged at once: after a resume the display holds exactly
    the alarms that were latched and unacknowledged at the crash, nothing else."""
    old = fresh(T0)
    records = []
    t = 0.0
    for sys_, dia, ack in steps:
        t += 10
        records += [to_record(c) for c in old.on_events(nibp(sys_, dia, t))]
        if ack:
            records += [to_record(c) for c in old.acknowledge_all(by="R. Nurse", now=t + 1)]
    expected = {a.uid for a in old.active() if a.latched and a.acknowledged_by is None}
    engine = fresh(at(t + 600))
    restore_alarms(engine, records, interrupted_at=at(t + 2), phase=None)
    assert {a.uid for a in engine.active()} == expected
    assert all(not a.active for a in engine.active())


# -- the gap -----------------------------------------------------------------------------------
def test_the_gap_goes_before_the_first_new_reading_once():
    clock = ManualClock(at(90))
    gap = GapNote(at(20), clock)
    link_up = [DeviceEvent(DeviceEventKind.LINK_UP, "open")]
    assert gap(link_up) == link_up  # no reading yet: the gap is not over
    first = [Reading(Vital.HR, 70, Quality.OK)]
    out = gap(first)
    assert out[1:] == first and out[0].kind is DeviceEventKind.GAP
    assert out[0].detail == (f"{INTERRUPTED}; no data from 2026-05-04T09:00:20Z to "
                             "2026-05-04T09:01:30Z (70.0 s)")
    assert gap(first) == first and gap.done


# -- the database: open sessions, the choice, the resumed recording ---------------------------
def new_session(db, workstation: str = CHAIR, started: datetime = T0) -> int:
    return db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                        started=started, workstation_id=workstation)


def test_only_this_chairs_unended_sessions_are_open(db):
    mine = new_session(db)
    ended = new_session(db)
    db.repository.end_session(ended, at(60))
    new_session(db, workstation="chair-4")
    ChartStore(db.engine).add_check_in(
        mine, patient_id="P1", patient_name="Ada M. Example", birth_date=date(1980, 1, 1),
        weight_kg=70.0, dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A",
        nurse="R. Nurse", entered=at(5), by="R. Nurse", with_marker=True)
    db.repository.insert_readings(mine, [Reading(Vital.HR, 70, Quality.OK, t_received=at(42))])
    (found,) = open_sessions(db, CHAIR)
    assert (found.id, found.phase, found.patient_initials) == (mine, Phase.CHECK_IN, "AE")
    assert found.last_reading == at(42) and found.left_open >= at(42)
    local = found.left_open.astimezone().strftime("%H:%M")
    assert found.describe(at(100)) == (f"session {mine} (AE, Check-in, left open at {local})")
    assert "check it is the same patient" in found.describe(at(42 + 31 * 60))


def test_record_refuses_to_start_beside_an_open_session_and_changes_nothing(db):
    sid = new_session(db)
    before = len(db.repository.list_sessions())
    with pytest.raises(OpenSessionError, match=rf"session {sid} .*--resume.*--new"):
        settle_open_sessions(db, CHAIR, resume=False, new=False, by="R. Nurse", now=at(60))
    assert len(db.repository.list_sessions()) == before
    assert db.repository.get_session(sid).ended is None
    assert settle_open_sessions(db, CHAIR, resume=True, new=False, by="x", now=at(60)) == sid
    assert settle_open_sessions(db, "chair-9", resume=False, new=False, by="x",
                                now=at(60)) is None
    with pytest.raises(OpenSessionError, match="no open session to resume"):
        settle_open_sessions(db, "chair-9", resume=True, new=False, by="x", now=at(60))
    with pytest.raises(StoreError, match="belongs to workstation"):
        settle_open_sessions(db, "chair-9", resume=sid, new=False, by="x", now=at(60))


def test_new_closes_the_open_session_as_interrupted_with_an_audit_entry(db):
    sid = new_session(db)
    db.repository.insert_readings(sid, [Reading(Vital.HR, 70, Quality.OK, t_received=at(42))])
    assert settle_open_sessions(db, CHAIR, resume=False, new=True, by="R. Nurse",
                                now=at(600)) is None
    info = db.repository.get_session(sid)
    assert info.ended == at(42)  # ended where the data end, not when someone noticed
    assert interrupted_sessions(db) == {sid}
    entry = next(e for e in AuditLog(db.engine).entries(sid) if e.action == "interrupted")
    assert (entry.actor, entry.what) == ("R. Nurse", "session closed as interrupted")
    assert AuditLog(db.engine).verify(sid).ok
    with pytest.raises(StoreError, match="already closed"):
        settle_open_sessions(db, CHAIR, resume=sid, new=False, by="x", now=at(600))


def test_a_resumed_recording_has_its_limits_alarms_and_audit(db, tmp_path):
    sid = new_session(db)
    log = AlarmLog(db.engine)
    log.append_limit_changes([LimitChangeRecord("sbp_high", 180, 170, at(1), "Dr A",
                                                "known hypertensive", sid)])
    _, records = crashed_engine()
    log.append(sid, records)
    clock = ManualClock(at(300))
    recording = LiveRecording(db, protocol="datex-s5", url=str(tmp_path / "no-such-tty"),
                              source="record", clock=clock, settings=Settings(),
                              workstation_id=CHAIR, resume=sid)
    try:
        assert recording.session_id == sid
        assert recording.alarms.profile.limit("sbp_high") == 170
        assert {a.condition for a in recording.alarms.active()} == {"sbp_high_severe",
                                                                    "dbp_high_severe"}
        recording.start()
    finally:
        recording.stop()
    assert len(log.limit_changes(sid)) == 1  # put back in force, not logged again
    entry = next(e for e in AuditLog(db.engine).entries(sid) if e.action == "resume")
    assert entry.detail["interrupted_s"] == pytest.approx(280.0)
    ended = [e for e in log.events(sid) if e.event == "ended" and e.detail == INTERRUPTED]
    assert {e.condition for e in ended} == {"sbp_high", "dbp_high", "sbp_high_severe",
                                            "dbp_high_severe"}
    assert [len(db.repository.list_sessions())] == [1]
    started = [e for e in db.repository.device_events(sid)
               if e.kind is DeviceEventKind.RECORDING_STARTED]
    assert started and INTERRUPTED in started[-1].detail


def test_the_datex_codec_does_not_store_the_repeated_nibp_again_after_a_resume():
    """The S/5 repeats its last NIBP in every record: a fresh codec in a resumed session takes
    the stored one as already recorded, and a different one as new."""
    from infusion_monitor.devices.datex_s5 import (
        BasicValues,
        DatexS5Codec,
        build_displayed_values,
    )

    def frame(sys_: float, dia: float, mean: float) -> bytes:
        return build_displayed_values(int(at(60).timestamp()), BasicValues(
            hr=70, nibp_sys=sys_, nibp_dia=dia, nibp_mean=mean))

    stored = nibp(202, 121, 20)  # mean 148
    codec = DatexS5Codec()
    codec.resume_after(stored)
    assert not [r for r in codec.receive_data(frame(202, 121, 148)) if r.vital is Vital.NIBP_SYS]
    new = [r.value for r in codec.receive_data(frame(174, 106, 129)) if r.vital is Vital.NIBP_SYS]
    assert new == [174]
    fresh_codec = DatexS5Codec()  # without the resume: the repeat is taken for a measurement
    assert [r.value for r in fresh_codec.receive_data(frame(202, 121, 148))
            if r.vital is Vital.NIBP_SYS] == [202]
