"""A database made by the first release upgrades to the newest schema with its data intact."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, make_url, text

from infusion_monitor.clock import to_us
from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.store import open_database
from infusion_monitor.store.db import migrate_to, schema_status
from infusion_monitor.vitals import Quality, Vital

T0 = datetime(2026, 5, 9, 9, 0, tzinfo=UTC)


def _make_release_one(url: str) -> None:
    """The schema of migration 0001 and data written as the first release wrote it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        migrate_to(engine, "0001")
        assert schema_status(engine)[0] == "0001"
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sessions (uid, workstation_id, patient_id, source, protocol, port,"
                " started_us, ended_us, note) VALUES (:uid, 'chair-3', 'MRN-7', 'record',"
                " 'datex-s5', '/dev/ttyUSB0', :start, :end, NULL)"),
                {"uid": "0b4a6f9e-0000-4000-8000-000000000001", "start": to_us(T0),
                 "end": to_us(T0) + 3_600_000_000})
            sid = conn.execute(text("SELECT id FROM sessions")).scalar_one()
            conn.execute(text(
                "INSERT INTO readings (session_id, vital, value, unit, quality, t_us,"
                " t_device_us) VALUES (:sid, :vital, :value, :unit, :q, :t, :td)"),
                [{"sid": sid, "vital": v, "value": value, "unit": unit, "q": q,
                  "t": to_us(T0) + i * 5_000_000, "td": None if i % 2 else to_us(T0) + i}
                 for i, (v, value, unit, q) in enumerate([
                     ("hr", 78.0, "/min", "ok"), ("spo2", 97.5, "%", "ok"),
                     ("nibp_sys", 182.0, "mmHg", "ok"), ("nibp_dia", 108.0, "mmHg", "ok"),
                     ("hr", 400.0, "/min", "artifact")])])
            conn.execute(text(
                "INSERT INTO device_events (session_id, kind, vital, detail, count, t_us,"
                " t_device_us) VALUES (:sid, 'link_down', NULL, 'cable pulled', 1, :t, NULL)"),
                {"sid": sid, "t": to_us(T0) + 60_000_000})
    finally:
        engine.dispose()


def test_release_one_database_upgrades_to_head_with_its_data(db_url: str) -> None:
    _make_release_one(db_url)
    with open_database(db_url) as database:  # opening migrates
        current, head = schema_status(database.engine)
        assert current == head != "0001"
        tables = set(inspect(database.engine).get_table_names())
        assert {"minute_entries", "alarm_events", "signoffs", "waveform_blocks"} <= tables
        (info,) = database.repository.list_sessions()
        assert (info.uid, info.workstation_id, info.patient_id) == (
            "0b4a6f9e-0000-4000-8000-000000000001", "chair-3", "MRN-7")
        assert info.started == T0 and info.ended is not None
        readings = database.repository.readings(info.id)
        assert [(r.vital, r.value, r.unit, r.quality) for r in readings] == [
            (Vital.HR, 78.0, "/min", Quality.OK), (Vital.SPO2, 97.5, "%", Quality.OK),
            (Vital.NIBP_SYS, 182.0, "mmHg", Quality.OK),
            (Vital.NIBP_DIA, 108.0, "mmHg", Quality.OK),
            (Vital.HR, 400.0, "/min", Quality.ARTIFACT)]
        assert readings[0].t_device is not None and readings[1].t_device is None
        (event,) = database.repository.device_events(info.id)
        assert (event.kind, event.detail) == (DeviceEventKind.LINK_DOWN, "cable pulled")
        # The upgraded database takes new data like a new one.
        sid = database.repository.create_session(source="gui", protocol="nonin", port="COM4",
                                                 started=T0)
        assert sid != info.id
    with open_database(db_url) as again:  # a second open finds nothing to do
        assert schema_status(again.engine)[0] == schema_status(again.engine)[1]
        assert len(again.repository.list_sessions()) == 2


def test_workstations_starting_together_migrate_once(db_url: str) -> None:
    """Eight workstations open a new database at the same moment: one schema, no error."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait()
            open_database(db_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Without the migration lock, PostgreSQL workstations deadlock on each other's DDL.
    assert not [t for t in threads if t.is_alive()], "a workstation is stuck migrating"
    assert errors == []
    with open_database(db_url) as database:
        current, head = schema_status(database.engine)
        assert current == head
