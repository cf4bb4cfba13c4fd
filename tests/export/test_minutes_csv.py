"""minutes-csv: the exact header and rows, "not assessed", notes and amendments, via the CLI."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infusion_monitor.cli import main
from infusion_monitor.clock import ManualClock
from infusion_monitor.export.minutes_csv import HEADER, write_minutes_csv
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store import open_database
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXPECTED_HEADER = (
    "minute,start_utc,end_utc,hr_median,hr_source,spo2_min,spo2_median,nibp_sys,nibp_dia,"
    "nibp_mean,nibp_age_s,rr_median,artifacts,dissociation,rass,distress,assessed,entered_by,"
    "entered_utc,late,notes,amendments"
)


def charted_session(url: str) -> tuple[int, SessionChart]:
    """Baseline at 09:00, infusion 09:01:00, three minutes, one amended, one note, discharge."""
    db = open_database(url)
    clock = ManualClock(T0)
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
    chart = SessionChart.open(db, sid, clock)
    readings: list[Reading] = []

    def observe(batch: list[Reading]) -> None:
        readings.extend(batch)
        chart.observe(batch)

    def seconds(n: int, hr: float = 80, spo2: float = 98) -> None:
        for _ in range(n):
            observe([Reading(Vital.HR, hr, t_received=clock.now()),
                     Reading(Vital.SPO2, spo2, t_received=clock.now())])
            clock.advance(1)

    def bp(sys_: float, dia: float) -> None:
        observe([Reading(v, x, t_received=clock.now()) for v, x in
                 ((Vital.NIBP_SYS, sys_), (Vital.NIBP_DIA, dia), (Vital.NIBP_MEAN, 93))])

    chart.check_in(patient_id="MRN-9", patient_name="P Q", birth_date="1975-04-01",
                   weight_kg=70, dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A",
                   nurse="N B", by="nurse.b")
    chart.start_baseline("nurse.b")
    bp(120, 80)
    seconds(60)
    chart.start_infusion("nurse.b")  # 09:01:00
    seconds(30, hr=90)
    observe([Reading(Vital.SPO2, 130, Quality.ARTIFACT, t_received=clock.now())])
    seconds(30, hr=92, spo2=96)  # minute 0: HR 90/92 -> median 91, SpO2 min 96
    chart.chart_minute(0, 1, -1, 0, "nurse.b")  # 09:02:00
    seconds(60)
    chart.add_note("eyes closed, calm", "nurse.b", at=T0 + timedelta(seconds=125))
    seconds(60)  # 09:04:00: minute 2 in progress... and done
    entry = chart.chart_minute(2, 0, 0, 0, "nurse.b")
    clock.advance(0.5)
    chart.amend_minute(entry.id, 0, 0, 1, "nurse.c", "distress, not dissociation")
    chart.end_infusion("nurse.b")
    bp(118, 79)
    seconds(30)
    chart.discharge("nurse.b", reason="chart test")  # 09:04:30: minute 3 is the last
    db.repository.insert_readings(sid, readings)
    db.close()
    return sid, chart


def test_exact_header_and_rows(db_url: str) -> None:
    _, chart = charted_session(db_url)
    out = io.StringIO()
    assert write_minutes_csv(chart.minute_rows(), out) == 4
    lines = out.getvalue().splitlines()
    assert ",".join(HEADER) == lines[0] == EXPECTED_HEADER
    assert lines[1] == (
        "0,2026-03-02T09:01:00Z,2026-03-02T09:02:00Z,91,hr,96,97,120,80,93,120,,1,"
        "1,-1,0,yes,nurse.b,2026-03-02T09:02:00Z,no,,"
    )
    assert lines[2] == (
        "1,2026-03-02T09:02:00Z,2026-03-02T09:03:00Z,80,hr,98,98,120,80,93,180,,0,"
        "not assessed,not assessed,not assessed,not assessed,,,,"
        "\"2026-03-02T09:02:05Z nurse.b: eyes closed, calm\","
    )
    assert lines[3] == (
        "2,2026-03-02T09:03:00Z,2026-03-02T09:04:00Z,80,hr,98,98,120,80,93,240,,0,"
        "0,0,1,yes,nurse.b,2026-03-02T09:04:00Z,no,,"
        "\"was dissociation 0, RASS 0, distress 0 (by nurse.b at 2026-03-02T09:04:00Z); "
        "amended by nurse.c at 2026-03-02T09:04:00.500Z, reason: distress, not dissociation\""
    )
    assert lines[4] == (
        "3,2026-03-02T09:04:00Z,2026-03-02T09:05:00Z,80,hr,98,98,118,79,93,30,,0,"
        "not assessed,not assessed,not assessed,not assessed,,,,,"
    )


def test_cli_exports_minutes_csv(tmp_path: Path, capsys, db_url: str) -> None:
    sid, _ = charted_session(db_url)
    out = tmp_path / "minutes.csv"
    assert main(["export", str(sid), "--format", "minutes-csv", "-o", str(out),
                 "--db", db_url]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == EXPECTED_HEADER and len(lines) == 5
    assert "wrote 4 minutes" in capsys.readouterr().err
    assert main(["export", str(sid), "--format", "minutes-csv", "--db", db_url]) == 0
    assert capsys.readouterr().out.splitlines() == lines
    assert main(["export", "999", "--format", "minutes-csv", "--db", db_url]) == 1
    assert "no session 999" in capsys.readouterr().err
