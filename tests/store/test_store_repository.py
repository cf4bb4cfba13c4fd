"""Sessions, readings and device events go in and come back exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.errors import StoreError
from infusion_monitor.store import Database, Repository
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


@pytest.fixture
def repo(db: Database) -> Repository:
    return db.repository


def test_readings_round_trip_exactly(repo: Repository) -> None:
    sid = repo.create_session(source="record", protocol="ivy", port="/dev/ttyUSB0", started=T0)
    sent = [
        Reading(Vital.HR, 72.0, t_received=T0 + timedelta(microseconds=1)),
        Reading(Vital.SPO2, 97.123456789012, Quality.QUESTIONABLE, t_received=T0),
        Reading(Vital.NIBP_SYS, 400.0, Quality.ARTIFACT,
                t_device=T0 - timedelta(seconds=3, microseconds=7),
                t_received=T0 + timedelta(seconds=2)),
        Reading(Vital.RR, 0.1 + 0.2, Quality.DEMO, t_received=T0 + timedelta(seconds=1)),
        Reading(Vital.NIBP_MEAN, -0.0, t_received=T0 + timedelta(days=400)),
    ]
    repo.insert_readings(sid, sent)
    got = repo.readings(sid)
    assert got == sorted(sent, key=lambda r: r.time)
    assert all(r.t_received is not None and r.t_received.tzinfo is UTC for r in got)


def test_import_reading_keeps_device_time_as_its_time(repo: Repository) -> None:
    sid = repo.create_session(source="import", protocol="ivy", started=T0)
    repo.insert_readings(sid, [Reading(Vital.PR, 61.0, t_device=T0)])
    (got,) = repo.readings(sid)
    assert got.time == T0 and got.t_device == T0


def test_units_are_stored(db: Database, repo: Repository) -> None:
    sid = repo.create_session(source="demo", protocol="p", started=T0)
    repo.insert_readings(sid, [Reading(v, 1.0, t_received=T0) for v in Vital])
    with db.engine.connect() as conn:
        units = dict(conn.exec_driver_sql("SELECT vital, unit FROM readings").all())
    assert units == {str(v): Reading(v, 1.0).unit for v in Vital}


def test_device_events_round_trip(repo: Repository) -> None:
    sid = repo.create_session(source="record", protocol="p", started=T0)
    sent = [
        DeviceEvent(DeviceEventKind.LINK_UP, t_received=T0),
        DeviceEvent(DeviceEventKind.FRAME_REJECTED, "bad checksum", count=3,
                    t_received=T0 + timedelta(microseconds=5)),
        DeviceEvent(DeviceEventKind.PROBE_OFF, "SpO2 probe off", Vital.SPO2,
                    t_device=T0, t_received=T0 + timedelta(seconds=1)),
        DeviceEvent(DeviceEventKind.GAP, "2026-03-14T09:00:00Z..2026-03-14T09:01:00Z",
                    t_received=T0 + timedelta(seconds=2)),
    ]
    repo.insert_device_events(sid, sent)
    assert repo.device_events(sid) == sent


def test_sessions_listing_counts_and_end(repo: Repository) -> None:
    first = repo.create_session(source="record", protocol="a", started=T0, patient_id="P-1")
    second = repo.create_session(source="gui", protocol="b", started=T0 + timedelta(hours=1))
    repo.insert_readings(first, [Reading(Vital.HR, 70.0, t_received=T0)] * 3)
    repo.insert_device_events(first, [DeviceEvent(DeviceEventKind.LINK_UP, t_received=T0)])
    repo.end_session(first, T0 + timedelta(minutes=30))

    assert [s.id for s in repo.list_sessions()] == [second, first]
    info = repo.get_session(first)
    assert (info.n_readings, info.n_events) == (3, 1)
    assert info.ended == T0 + timedelta(minutes=30) and info.started == T0
    assert info.patient_id == "P-1" and info.source == "record"
    assert len(info.uid) == 36 and info.uid != repo.get_session(second).uid
    assert info.workstation_id
    assert repo.get_session(second).ended is None


def test_missing_session_and_bad_input(repo: Repository) -> None:
    with pytest.raises(StoreError, match="no session 999"):
        repo.get_session(999)
    with pytest.raises(StoreError, match="no session 999"):
        repo.end_session(999, T0)
    with pytest.raises(StoreError):  # foreign key: readings need a real session
        repo.insert_readings(999, [Reading(Vital.HR, 1.0, t_received=T0)])
    with pytest.raises(ValueError):
        repo.create_session(source="elsewhere", protocol="p", started=T0)
    with pytest.raises(ValueError, match="naive"):
        repo.create_session(source="record", protocol="p", started=datetime(2026, 1, 1))


def test_batch_is_all_or_nothing(repo: Repository) -> None:
    sid = repo.create_session(source="record", protocol="p", started=T0)
    good = (sid, Reading(Vital.HR, 1.0, t_received=T0))
    bad = (sid + 1000, Reading(Vital.HR, 2.0, t_received=T0))
    with pytest.raises(StoreError):
        repo.insert_batch([good, bad], [])
    assert repo.readings(sid) == []
