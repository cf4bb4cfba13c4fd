"""The live glue: recorder -> engine -> store writer and listeners, ticked from its own thread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from infusion_monitor.clock import ManualClock
from infusion_monitor.config import Settings
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.store import StoreWriter
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def tickers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "alarm-ticker"]


def new_session(db) -> int:
    return db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                        patient_id=None, started=T0)


def test_readings_raise_alarms_that_reach_listeners_and_the_log(db):
    sid = new_session(db)
    clock = ManualClock(T0)
    writer = StoreWriter(db.repository)
    monitor = AlarmMonitor(sid, clock=clock, sink=writer, alarm_log=AlarmLog(db.engine),
                           tick_s=0.01)
    recorder = Recorder(sid, sink=writer, clock=clock)
    recorder.subscribe(monitor.on_events)
    heard: list[str] = []
    monitor.add_listener(lambda changes: heard.extend(f"{c.kind}:{c.condition}" for c in changes))
    monitor.start()
    try:
        recorder.handle([Reading(Vital.NIBP_SYS, 184, t_device=T0),
                         Reading(Vital.NIBP_DIA, 100, t_device=T0)])
        assert heard == ["raised:sbp_high", "raised:notify_attending"]
        assert [a.text for a in monitor.active()] == ["NIBP sys 184 ≥ 180"]
        clock.advance(12)  # no frame since: the ticker raises "link lost" at 10 s
        wait_until(lambda: "raised:link_lost" in heard)
        flag = monitor.flag()
        assert flag is not None
        with pytest.raises(ChartingError):
            monitor.acknowledge_attending(by="nurse", role="nurse")
        monitor.acknowledge_attending(by="Dr A", role="attending")
        monitor.pause_audio(by="nurse RN", minutes=2)
        assert monitor.audio_pause_remaining() == 120
    finally:
        monitor.stop()
        writer.close()
    assert tickers() == []
    log = {a.condition: a for a in AlarmLog(db.engine).alarms(sid)}
    assert log["sbp_high"].start == T0 and log["sbp_high"].end == T0 + timedelta(seconds=12)
    assert log["link_lost"].start == T0 + timedelta(seconds=10)
    assert log["notify_attending"].acknowledged_by == "Dr A"
    assert monitor.tick() == []  # stopped: nothing more happens


def test_a_broken_listener_does_not_stop_the_alarms(db):
    monitor = AlarmMonitor(new_session(db), clock=ManualClock(T0))
    monitor.add_listener(lambda changes: 1 / 0)
    changes = monitor.on_minute_entry(rass=-4)
    assert changes is not None and monitor.active()[0].condition == "rass_deep"


def test_override_is_audited_before_it_takes_effect(db):
    sid = new_session(db)
    clock = ManualClock(T0)
    monitor = AlarmMonitor(sid, clock=clock, alarm_log=AlarmLog(db.engine))
    monitor.set_phase(Phase.BASELINE)
    clock.advance(30)
    change = monitor.override("hr_high", 120, by="Dr A", reason="anxious, baseline 112")
    assert monitor.profile.limit("hr_high") == 120
    (row,) = AlarmLog(db.engine).limit_changes(sid)
    assert (row.condition, row.old_value, row.new_value, row.by, row.reason, row.time) == (
        "hr_high", 110, 120, "Dr A", "anxious, baseline 112", T0 + timedelta(seconds=30))
    assert change.time == row.time
    monitor.set_phase(Phase.INFUSION)
    with pytest.raises(ChartingError, match="after infusion start"):
        monitor.override("hr_high", 125, by="Dr A", reason="r")
    assert len(AlarmLog(db.engine).limit_changes(sid)) == 1


def test_live_recording_wires_alarms_for_record_and_gui(db, tmp_path):
    clock = ManualClock(T0)
    settings = Settings(thresholds=MappingProxyType({"spo2_low": 90}),
                        path=tmp_path / "settings.toml")
    recording = LiveRecording(db, protocol="datex-s5", url=str(tmp_path / "no-such-tty"),
                              source="record", clock=clock, settings=settings)
    heard: list[str] = []
    recording.alarms.add_listener(lambda cs: heard.extend(c.condition for c in cs))
    recording.start()
    try:
        clock.advance(11)  # the port never opens: no frame for 10 s
        wait_until(lambda: "link_lost" in heard)
    finally:
        recording.stop()
    assert tickers() == []
    log = AlarmLog(db.engine)
    (alarm,) = log.alarms(recording.session_id)
    assert (alarm.condition, alarm.priority, alarm.start) == (
        "link_lost", "technical", T0 + timedelta(seconds=10))
    assert alarm.end is not None  # the link stopped with the recording
    (change,) = log.limit_changes(recording.session_id)
    assert (change.condition, change.new_value, change.by) == ("spo2_low", 90, "clinic settings")
