"""``infusion-monitor import`` of a real S/5 capture (issue 2, Done-when 2), through the CLI,
into a SQLite file and into a PostgreSQL database."""

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.store import open_database
from infusion_monitor.store.db import inspect_database
from infusion_monitor.vitals import Quality, Vital

FIXTURE = Path(__file__).parent / "fixtures" / "datex-s5" / "AS3Rawoutput1.raw"


def cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infusion_monitor.cli", "--db", db, *args],
        capture_output=True, text=True, timeout=120,
    )


def stored_sessions(url: str) -> int:
    """How many sessions the database at ``url`` holds; 0, without creating it, if it is empty."""
    if inspect_database(url).revision is None:
        return 0
    with open_database(url) as database:
        return len(database.repository.list_sessions())


def test_import_real_capture_yields_123_hr_readings_and_2_rejected_frames(db_url):
    db = db_url
    done = cli("import", "--protocol", "datex-s5", str(FIXTURE), "--patient", "MRN-1", db=db)
    assert done.returncode == 0, done.stderr
    sid = int(done.stdout.strip())
    assert "123 readings" in done.stderr and "2 rejected frames" in done.stderr

    with open_database(db) as database:
        readings = database.repository.readings(sid)
        events = database.repository.device_events(sid)
        info = database.repository.get_session(sid)
    assert len(readings) == 123
    assert {r.vital for r in readings} == {Vital.HR}
    assert {r.value for r in readings} == {78}
    assert {r.unit for r in readings} == {"/min"}
    assert {r.quality for r in readings} == {Quality.OK}
    # Stamped with the monitor's r_time: the capture runs 03:14:19 to 06:11:19 UTC.
    assert all(r.t_device is not None and r.t_received == r.t_device for r in readings)
    assert readings[0].t_device == datetime(2021, 7, 3, 3, 14, 19, tzinfo=UTC)
    assert readings[-1].t_device == datetime(2021, 7, 3, 6, 11, 19, tzinfo=UTC)
    rejected = [e for e in events if e.kind is DeviceEventKind.FRAME_REJECTED]
    assert sum(e.count for e in rejected) == 2
    assert len(rejected) == 2  # each where it happened in the capture
    assert info.patient_id == "MRN-1" and info.source == "import"


def test_import_then_export_csv_round_trips(tmp_path, db_url):
    db = db_url
    sid = cli("import", "--protocol", "datex-s5", str(FIXTURE), db=db).stdout.strip()
    out = tmp_path / "readings.csv"
    done = cli("export", sid, "--format", "csv", "-o", str(out), db=db)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "time_utc,parameter,value,unit,quality"
    assert lines[1] == "2021-07-03T03:14:19Z,hr,78,/min,ok"
    assert len(lines) == 1 + 123


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no valid datex-s5 frame"),
        (b"\x7e" + bytes(range(200)) + b"\x7e", "no valid datex-s5 frame"),
        (b"SPO2=098% BPM=097\r\n" * 50, "no valid datex-s5 frame"),
    ],
    ids=["empty", "garbage", "wrong-protocol"],
)
def test_import_of_a_bad_file_fails_cleanly_and_creates_nothing(tmp_path, db_url, content,
                                                                message):
    db = db_url
    bad = tmp_path / "bad.raw"
    bad.write_bytes(content)
    done = cli("import", "--protocol", "datex-s5", str(bad), db=db)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert stored_sessions(db) == 0


def test_import_of_a_truncated_capture_keeps_what_is_valid(tmp_path, db_url):
    db = db_url
    cut = tmp_path / "cut.raw"
    shutil.copy(FIXTURE, cut)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    done = cli("import", "--protocol", "datex-s5", str(cut), db=db)
    assert done.returncode == 0, done.stderr
    with open_database(db) as database:
        n = len(database.repository.readings(int(done.stdout)))
    assert 0 < n < 123


def test_missing_file_and_unknown_protocol_are_clear_errors(tmp_path):
    # No data reaches a database here (the arguments are refused first): SQLite only.
    db = str(tmp_path / "x.db")
    done = cli("import", "--protocol", "datex-s5", str(tmp_path / "nope.raw"), db=db)
    assert done.returncode == 1 and "cannot read" in done.stderr
    done = cli("import", "--protocol", "bogus", str(FIXTURE), db=db)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_import_of_an_oximeter_capture_keeps_the_pleth_as_waveform_blocks(tmp_path, db_url):
    """A Nonin capture (the simulator's file output): values as readings, the pleth as blocks."""
    import json

    capture, truth = tmp_path / "nonin.bin", tmp_path / "truth.jsonl"
    sim = subprocess.run(
        [sys.executable, "-m", "simulators", "--protocol", "nonin", "--scenario", "typical",
         "--duration", "60", "--out", str(capture), "--truth", str(truth)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
    )
    assert sim.returncode == 0, sim.stderr
    db = db_url
    done = cli("import", "--protocol", "nonin", str(capture), db=db)
    assert done.returncode == 0, done.stderr
    sid = int(done.stdout.strip())
    with open_database(db) as database:
        readings = database.repository.readings(sid)
        blocks = database.repository.waveform_blocks(sid)
    sent = sorted((vital, float(value)) for line in truth.read_text().splitlines()
                  for vital, value in json.loads(line)["values"].items() if value is not None)
    assert sorted((r.vital.value, r.value) for r in readings) == sent
    assert all(r.vital is not None for r in readings)
    samples = sum(len(b.samples) for b in blocks)
    assert 59 * 75 <= samples <= 60 * 75  # 75 pleth samples a second, none made into readings
