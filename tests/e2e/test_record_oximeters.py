"""Oximeters end to end: simulator -> pty -> ``infusion-monitor record`` -> SQLite, value by value.

Pleth blocks are not checked here: how they are stored is another part of the app.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.vitals import SPECS, Quality


def db_values(readings) -> Counter:
    return Counter((r.vital.value, r.value, r.t_device) for r in readings)


def test_masimo_every_value_sent_is_recorded_once_with_its_unit_and_nothing_else(run):
    run.protocol = "masimo"
    sid = run.record_whole_session("--scenario", "typical", "--speed", "60", "--duration", "660",
                                   "--seed", "7", "--masimo-model", "radical-7")
    truth = run.truth_values()
    assert {v for v, _, _ in truth} == {"spo2", "pr", "pi", "pvi"}
    readings = run.db_readings(sid)
    assert db_values(readings) == truth  # every value, once, at the line's time; nothing else
    for r in readings:
        assert r.unit == SPECS[r.vital].unit
        assert r.quality is Quality.OK
        assert r.t_received is not None and r.t_device is not None
    assert " 0 rejected frames" in run.record_err  # whole lines only: none cut, none garbled


def test_masimo_probe_off_is_events_and_no_values(run):
    run.protocol = "masimo"
    # The artifact scenario has SpO2 and PR invalid for 1200-1220 s (the sensor is off). The
    # simulator runs from the moment it starts; 10 real seconds leave a slow-starting `record`
    # (3 s on a loaded machine = 90 simulated seconds) in time for the probe-off at 1200.
    sid = run.record_whole_session("--scenario", "artifact", "--speed", "30", "--skip", "1000",
                                   "--duration", "1300", "--seed", "2")
    readings = run.db_readings(sid)
    assert db_values(readings) == run.truth_values()
    t_sim = {(r.t_device - run.start_time).total_seconds() for r in readings}
    assert not any(1200 <= t < 1220 for t in t_sim)
    assert {1199, 1220} <= t_sim
    events = run.db_events(sid)
    probe = [e for e in events if e.kind is DeviceEventKind.PROBE_OFF]
    assert sorted(e.vital.value for e in probe) == ["pr", "spo2"]
    assert {e.t_device for e in probe} == {run.start_time + timedelta(seconds=1200)}
    assert {e.detail for e in probe} == {"sensor off"}
    details = [e.detail for e in events if e.kind is DeviceEventKind.PARAMETER_STATUS]
    assert details.count("no value") == 3 and "sensor off cleared" in details  # SpO2, PR, PI


def test_nonin_every_value_sent_is_recorded_once_with_its_unit_and_nothing_else(run):
    run.protocol = "nonin"
    sid = run.record_whole_session("--scenario", "typical", "--speed", "60", "--duration", "660",
                                   "--seed", "7")
    truth = run.truth_values()
    assert {v for v, _, _ in truth} == {"spo2", "pr"}
    assert {t for _, _, t in truth} == {None}  # Nonin frames carry no time
    readings = run.db_readings(sid)
    assert len(readings) == sum(truth.values())
    assert Counter((r.vital.value, r.value) for r in readings) == Counter(
        {(v, x): n for (v, x, _), n in truth.items()})
    assert db_values(readings) == truth
    for r in readings:
        assert r.unit == SPECS[r.vital].unit
        assert r.quality is Quality.OK
        assert r.t_received is not None and r.t_device is None
    kinds = {e.kind for e in run.db_events(sid)}
    assert DeviceEventKind.DEVICE_ERROR not in kinds  # format #7 was accepted
    assert " 0 rejected frames" in run.record_err  # in sync from the first packet to the last
