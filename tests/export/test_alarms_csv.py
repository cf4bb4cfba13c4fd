"""``export --format alarms-csv``: the exact header and rows, times with Z."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from infusion_monitor.cli import main
from infusion_monitor.export.alarms_csv import HEADER, write_alarms_csv
from infusion_monitor.session.alarm_monitor import to_record
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.store import open_database
from infusion_monitor.store.alarm_log import AlarmLog, fold
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def changes():
    e = AlarmEngine(origin=T0)
    out = e.on_events([Reading(Vital.SPO2, 85, t_received=at(t)) for t in range(0, 30, 5)])
    out += e.on_events([Reading(Vital.SPO2, 97, t_received=at(30.25))])
    sev = next(a.uid for a in e.active() if a.condition == "spo2_low_severe")
    out += e.acknowledge(sev, by="nurse RN", now=40.5)
    out += e.add_response(sev, "O2 2 l/min, chin lift", by="nurse RN", now=41)
    out += e.tick(60)  # link lost at 40.25 (10 s after the last frame)
    return out


def test_header_and_rows():
    out = io.StringIO()
    n = write_alarms_csv(fold(to_record(c) for c in changes()), out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("start_utc,end_utc,condition,parameter,priority,worst_value,limit,"
                        "latched,acknowledged_by,acknowledged_utc,response")
    assert tuple(lines[0].split(",")) == HEADER
    assert n == 4 and len(lines) == 5
    assert lines[1:] == [
        "2026-05-04T09:00:10Z,,notify_attending,spo2,high,,,false,,,",
        "2026-05-04T09:00:10Z,2026-05-04T09:00:30.250Z,spo2_low_severe,spo2,high,85,88,true,"
        "nurse RN,2026-05-04T09:00:40.500Z,\"O2 2 l/min, chin lift\"",
        "2026-05-04T09:00:15Z,2026-05-04T09:00:30.250Z,spo2_low,spo2,medium,85,92,false,,,",
        "2026-05-04T09:00:40.250Z,,link_lost,,technical,,,false,,,",
    ]


def test_cli_export_alarms_csv(tmp_path, capsys, db_url):
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="record", protocol="datex-s5", port="x",
                                           patient_id=None, started=T0)
        AlarmLog(db.engine).append(sid, [to_record(c) for c in changes()])
    out = tmp_path / "alarms.csv"
    assert main(["--db", db_url, "export", str(sid), "--format", "alarms-csv",
                 "-o", str(out)]) == 0
    assert "wrote 4 alarms" in capsys.readouterr().err
    assert out.read_text().splitlines()[0].startswith("start_utc,end_utc,condition")
    assert main(["--db", db_url, "export", str(sid + 5), "--format", "alarms-csv"]) == 1
    assert "no session" in capsys.readouterr().err
