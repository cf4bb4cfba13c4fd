"""The alarm log on disk: appended through the store writer, read back, folded into alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infusion_monitor.session.alarm_monitor import to_record
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.store import StoreWriter, open_database
from infusion_monitor.store.alarm_log import (
    AlarmEventRecord,
    AlarmLog,
    LimitChangeRecord,
    fold,
)
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def nibp(sys_: float, dia: float, t: float) -> list[Reading]:
    return [Reading(Vital.NIBP_SYS, sys_, t_received=at(t)),
            Reading(Vital.NIBP_DIA, dia, t_received=at(t))]


def a_session_of_changes():
    e = AlarmEngine(origin=T0)
    e.on_link_state("stopped", "", 0)
    changes = e.on_events(nibp(184, 104, 0))
    changes += e.on_events(nibp(203, 104, 300))
    changes += e.tick(400)  # escalations at 360
    sev = next(a.uid for a in e.active() if a.condition == "sbp_high_severe")
    changes += e.acknowledge(sev, by="nurse RN", now=410)
    changes += e.add_response(sev, "repeated NIBP: 176/104", by="nurse RN", now=420)
    changes += e.add_response(sev, "called attending", by="nurse RN", now=421)
    changes += e.pause_audio(425, by="nurse RN", minutes=1)
    changes += e.on_events(nibp(150, 90, 600))
    return changes


def test_fold_gives_start_end_worst_ack_and_responses():
    alarms = {a.condition: a for a in fold(to_record(c) for c in a_session_of_changes())}
    assert set(alarms) == {"sbp_high", "sbp_high_severe", "notify_attending"}  # no pause row
    sev = alarms["sbp_high_severe"]
    assert (sev.start, sev.end, sev.worst_value, sev.limit, sev.priority) == (
        at(300), at(600), 203, 200, "high")
    assert (sev.latched, sev.escalated, sev.acknowledged_by, sev.acknowledged_at) == (
        True, True, "nurse RN", at(410))
    assert sev.responses == ("repeated NIBP: 176/104", "called attending")
    assert sev.response == "repeated NIBP: 176/104; called attending"
    assert sev.cleared == at(600)
    mild = alarms["sbp_high"]
    assert (mild.start, mild.end, mild.worst_value, mild.latched, mild.acknowledged_by) == (
        at(0), at(600), 203, False, None)
    flag = alarms["notify_attending"]
    assert (flag.priority, flag.end) == ("high", None)  # raised medium, made high later


def test_alarm_events_go_through_the_writer_and_read_back(db_url):
    changes = a_session_of_changes()
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                           patient_id=None, started=T0)
        writer = StoreWriter(db.repository)
        for c in changes:
            writer.submit(sid, to_record(c))
        writer.submit(sid, Reading(Vital.HR, 70, t_received=at(1)))
        assert writer.flush(5)
        writer.close()
        assert writer.written_alarm_events == len(changes)
        assert writer.written_readings == 1
        log = AlarmLog(db.engine)
        events = log.events(sid)
        assert sorted(events, key=lambda r: (r.time, r.alarm_uid, r.event)) == sorted(
            (to_record(c) for c in changes), key=lambda r: (r.time, r.alarm_uid, r.event))
        assert log.alarms(sid) == fold(to_record(c) for c in changes)
        assert log.alarms(sid + 1) == []


def test_limit_changes_are_appended_and_read_per_session(db_url):
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                           patient_id=None, started=T0)
        log = AlarmLog(db.engine)
        mine = LimitChangeRecord("spo2_low", 92, 90, at(5), "Dr A", "COPD", sid)
        clinic = LimitChangeRecord("hr_high", 110, 120, at(1), "admin", "clinic policy", None)
        log.append_limit_changes([mine, clinic])
        assert log.limit_changes(sid) == [mine]
        assert log.limit_changes(None) == [clinic]


def test_writer_refuses_an_alarm_event_with_a_naive_time(sqlite_url):
    # Refused before anything reaches the database: one engine is enough.
    with open_database(sqlite_url) as db:
        writer = StoreWriter(db.repository)
        try:
            with pytest.raises(ValueError, match="naive"):
                writer.submit(1, AlarmEventRecord("u", "raised", "spo2_low", "spo2", "medium",
                                                  datetime(2026, 1, 1)))
        finally:
            writer.close()
