"""Done-when 5: headless ``record`` raises and stores the alarms, exported as alarms-csv.

``record`` runs on the real clock, as at the bedside: condition delays are real seconds. A
simulator at 200x compresses a 40-s desaturation into 0.2 s, which (rightly) is no alarm, so
this test uses the hypertensive scenario: NIBP conditions have no delay, and every alarm must
start at the exact receipt time of the NIBP that breached. The same stored readings, replayed
through a fresh engine, must give the same log: what `record` stored is what the GUI (the same
LiveRecording) would have raised.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import datetime, timedelta

from infusion_monitor.session.alarm_monitor import to_record
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.store.alarm_log import AlarmLog, fold
from infusion_monitor.vitals import Vital


def export_alarms(run, sid: int) -> list[dict[str, str]]:
    out = subprocess.run(
        [sys.executable, "-m", "infusion_monitor.cli", "--db", run.db, "export", str(sid),
         "--format", "alarms-csv"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    return list(csv.DictReader(io.StringIO(out)))


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def close(a: datetime, b: datetime) -> bool:
    return abs(a - b) <= timedelta(milliseconds=2)


def test_record_stores_the_hypertensive_alarms_and_exports_them(run, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # clinic defaults only
    sid = run.record_whole_session("--scenario", "hypertensive", "--speed", "200",
                                   "--duration", "2820", "--seed", "5")

    readings = run.db_readings(sid)
    received = {  # simulated second of each NIBP measurement -> its receipt time
        round((r.t_device - run.start_time).total_seconds()): r.t_received
        for r in readings if r.vital is Vital.NIBP_SYS
    }
    rows = [r for r in export_alarms(run, sid) if r["condition"] != "link_lost"]
    got = [(r["condition"], r["parameter"], r["priority"], r["worst_value"], r["limit"],
            r["latched"]) for r in rows]
    assert got == [
        ("dbp_high", "nibp_dia", "medium", "121", "110", "false"),
        ("notify_attending", "nibp_sys", "high", "", "", "false"),
        ("sbp_high", "nibp_sys", "medium", "202", "180", "false"),
        ("dbp_high_severe", "nibp_dia", "high", "121", "120", "true"),
        ("sbp_high_severe", "nibp_sys", "high", "202", "200", "true"),
    ]
    by = {r["condition"]: r for r in rows}
    for name in ("sbp_high", "dbp_high", "notify_attending"):  # 184/112, shown at 2190 s
        assert close(parse(by[name]["start_utc"]), received[2190]), name
    for name in ("sbp_high_severe", "dbp_high_severe"):  # 202/121, shown at 2490 s
        assert close(parse(by[name]["start_utc"]), received[2490]), name
    for name in ("sbp_high", "dbp_high", "sbp_high_severe", "dbp_high_severe"):  # 174/106
        assert close(parse(by[name]["end_utc"]), received[2790]), name
    assert by["notify_attending"]["end_utc"] == ""  # waits for an attending
    assert all(r["acknowledged_by"] == "" for r in rows)

    # The same stored data through a fresh engine gives the same physiological log.
    with run.open_database() as db:
        stored = [a for a in AlarmLog(db.engine).alarms(sid) if a.condition != "link_lost"]
    items = sorted([*readings, *run.db_events(sid)], key=lambda e: e.t_received)
    engine = AlarmEngine(origin=items[0].t_received)
    replayed = fold(to_record(c) for c in engine.on_events(items))
    assert [(a.condition, a.priority, a.worst_value, a.latched) for a in replayed
            if a.condition != "link_lost"] == [
        (a.condition, a.priority, a.worst_value, a.latched) for a in stored]
    for mine, theirs in zip([a for a in replayed if a.condition != "link_lost"], stored,
                            strict=True):
        assert close(mine.start, theirs.start)
