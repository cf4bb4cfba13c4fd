"""Simulator -> pty -> ``infusion-monitor record`` -> SQLite, compared value by value."""

from __future__ import annotations

from collections import Counter

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.vitals import SPECS, Quality


def db_values(readings) -> Counter:
    return Counter((r.vital.value, r.value, r.t_device) for r in readings)


def test_every_value_sent_is_recorded_once_with_its_unit_and_nothing_else(run):
    sid = run.record_whole_session("--scenario", "typical", "--speed", "60", "--duration", "660",
                                   "--seed", "7")
    truth = run.truth_values()
    assert {v for v, _, _ in truth} >= {"hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_mean"}
    readings = run.db_readings(sid)
    assert db_values(readings) == truth  # every value, once, at its device time; nothing else
    for r in readings:
        assert r.unit == SPECS[r.vital].unit
        assert r.quality is Quality.OK
        assert r.t_received is not None and r.t_device is not None
    assert "rejected frames" in run.record_err


def test_unplug_and_replug_keeps_recording_into_the_same_session(run):
    # The `unplug` scenario pulls the cable at t=900 s for 60 s: the simulator closes its pty
    # and removes the device, then makes a new one at the same path.
    sid = run.record_whole_session("--scenario", "unplug", "--speed", "100", "--duration", "1080",
                                   "--seed", "3")
    truth = run.truth_values()
    readings = run.db_readings(sid)
    assert db_values(readings) == truth  # no reading lost, none duplicated
    kinds = [e.kind for e in run.db_events(sid)]
    assert kinds.count(DeviceEventKind.LINK_DOWN) >= 1
    assert kinds.count(DeviceEventKind.LINK_UP) >= 2
    gaps = [e for e in run.db_events(sid) if e.kind is DeviceEventKind.GAP]
    assert len(gaps) == 1
    # In simulated time: nothing while the cable was out (900-960 s), data on both sides of it.
    t_sim = sorted({(r.t_device - run.start_time).total_seconds() for r in readings})
    assert [t for t in t_sim if 900 <= t < 960] == []
    assert max(t for t in t_sim if t < 900) >= 880
    # Back within 1.5 s of real time after the replug (the simulator runs at 100x).
    assert min(t for t in t_sim if t >= 960) <= 960 + 1.5 * 100
