"""Simulated IntelliVue -> pty -> ``infusion-monitor record`` -> SQLite, value by value."""

from __future__ import annotations

from collections import Counter

import pytest

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.vitals import SPECS, Quality

pytestmark = pytest.mark.timeout(180)


def db_values(readings) -> Counter:
    return Counter((r.vital.value, r.value, r.t_device) for r in readings)


def test_every_value_sent_is_recorded_once_with_its_unit_and_device_time(run):
    # ``record`` runs on the real clock and sends a keep-alive every 5 s: at 10x that is every
    # 50 simulated seconds, well inside the monitor's 120-s timeout.
    run.protocol = "intellivue"
    sid = run.record_whole_session("--scenario", "typical", "--speed", "10", "--duration", "420",
                                   "--seed", "7")
    truth = run.truth_values()
    assert {v for v, _, _ in truth} == {"hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_mean"}
    assert sum(1 for v, _, _ in truth if v == "nibp_sys") == 2  # shown at 90 s and 390 s, once
    readings = run.db_readings(sid)
    assert db_values(readings) == truth  # every value, once, at its device time; nothing else
    for r in readings:
        assert r.unit == SPECS[r.vital].unit
        assert r.quality is Quality.OK
        assert r.t_received is not None and r.t_device is not None
    kinds = [e.kind for e in run.db_events(sid)]
    assert DeviceEventKind.DEVICE_ERROR not in kinds
    assert "0 rejected frames" in run.record_err


def test_demo_mode_is_recorded_as_demo_with_one_device_error(run):
    run.protocol = "intellivue"
    sid = run.record_whole_session("--scenario", "typical", "--speed", "10", "--duration", "150",
                                   "--seed", "3", "--demo-mode")
    readings = run.db_readings(sid)
    assert db_values(readings) == run.truth_values()
    assert {r.quality for r in readings} == {Quality.DEMO}
    errors = [e.detail for e in run.db_events(sid) if e.kind is DeviceEventKind.DEVICE_ERROR]
    assert errors == ["monitor in DEMO mode: values are not patient data"]
