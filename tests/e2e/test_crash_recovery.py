"""Issue 8, done-when 1: ``record`` killed with SIGKILL mid-infusion, then resumed.

The simulator (hypertensive, 20x, from simulated minute 33) runs on a real pty; ``record``
stores it while the test charts the session through the core (check-in, baseline, infusion
start, minute 0, a note), as the GUI at the chair would. Once the severe BP alarm has latched,
``record`` is killed with SIGKILL. Then: the SQLite file is intact; a plain ``record`` refuses
to start beside the open session and names both choices; ``record --resume`` continues it.
Every value the simulator put on the wire up to 1 s before the kill is stored, nothing twice,
the gap is a device event, and the phase, minute log and latched alarm are as they were.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy.engine import make_url

from infusion_monitor.clock import Clock, SystemClock, iso_z
from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.resume import INTERRUPTED, open_sessions
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.vitals import NIBP, Vital

CHAIR = "chair-crash"
NURSE = "R. Nurse"
NOTE = "patient calm, music on"
#: What may be missing at a crash: the store writer commits at least every 0.2 s.
MAX_LOSS_S = 1.0

Key = tuple[str, float, datetime | None]


def sent_values(run) -> list[tuple[float, Key]]:
    """(wall time it went on the wire, (vital, value, device time)) for every value sent."""
    out = []
    for line in run.truth.read_text().splitlines():
        frame = json.loads(line)
        t = None if frame["r_time"] is None else datetime.fromtimestamp(frame["r_time"], UTC)
        for vital, value in frame["values"].items():
            if value is not None:
                out.append((frame["sent"], (vital, float(value), t)))
    return out


def stored_values(run, sid: int) -> Counter[Key]:
    return Counter((r.vital.value, float(r.value), r.t_device) for r in run.db_readings(sid))


def cli(run, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infusion_monitor.cli", "--db", run.db, *args],
                          capture_output=True, text=True, timeout=60)


def chart_until_infusion(database, sid: int, wait_for, clock: Clock) -> SessionChart:
    """Check in, baseline, start the infusion as soon as the baseline is complete, chart
    minute 0 and a note, on the chair's ``clock`` (``wait_for(predicate, timeout, what)``)."""
    chart = SessionChart.open(database, sid, clock)
    chart.check_in(patient_id="MRN-8", patient_name="Ada M. Example",
                   birth_date=date(1980, 1, 1), weight_kg=70.0, dose_mg_per_kg=0.5,
                   planned_minutes=40, attending="Dr A", nurse=NURSE, by=NURSE)
    chart.start_baseline(by=NURSE)
    wait_for(lambda: SessionChart.open(database, sid, chart.clock).assess_baseline().ready,
             120, "a complete baseline (an NIBP after check-in, stable SpO2 and HR)")
    chart = SessionChart.open(database, sid, chart.clock)
    chart.start_infusion(by=NURSE)  # the BP may be high: an advisory, not a refusal
    chart.chart_minute(0, 1, 0, 0, by=NURSE)
    chart.add_note(NOTE, by=NURSE)
    return chart


def severe_alarm(run, sid: int):
    with run.open_database() as db:
        return next((a for a in AlarmLog(db.engine).alarms(sid)
                     if a.condition == "sbp_high_severe"), None)


def check_integrity(run) -> None:
    url = make_url(run.db)
    if url.get_backend_name() != "sqlite":
        return  # a server database has no file a killed client could leave half-written
    with sqlite3.connect(str(url.database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_record_killed_mid_infusion_resumes_with_nothing_lost(run, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # clinic defaults only
    port = run.simulator("--scenario", "hypertensive", "--speed", "20", "--skip", "2000",
                         "--duration", "3600", "--seed", "5")
    sid = run.record(port, "--workstation", CHAIR)
    with run.open_database() as db:
        chart_until_infusion(db, sid, run.wait_for, SystemClock())
    # 202/121 is shown at simulated 2490 s, ~25 s after the start: the severe alarm latches.
    run.wait_for(lambda: severe_alarm(run, sid) is not None, 120, "the severe BP alarm")
    before = len(run.db_readings(sid))
    run.wait_for(lambda: len(run.db_readings(sid)) > before + 20, 30, "more readings")

    killed_at = time.time()
    run.rec.send_signal(signal.SIGKILL)
    run.rec.wait(timeout=20)
    assert run.rec.returncode == -signal.SIGKILL
    check_integrity(run)

    # Left open: listed so, and a plain `record` will not start a second session beside it.
    listed = {s["id"]: s for s in json.loads(cli(run, "sessions", "--json").stdout)}
    assert listed[sid]["state"] == "open"
    refused = cli(run, "record", "--protocol", "datex-s5", "--port", port, "--seconds", "5",
                  "--workstation", CHAIR)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"session {sid} (AE, Infusion, left open at" in refused.stderr
    assert "--resume" in refused.stderr and "--new" in refused.stderr
    assert len(json.loads(cli(run, "sessions", "--json").stdout)) == 1

    resumed_at = time.time()
    assert run.record(port, "--workstation", CHAIR, "--resume") == sid
    run.wait_for(lambda: any(e.kind is DeviceEventKind.GAP for e in run.db_events(sid)), 60,
                 "the first reading after the resume")
    after = len(run.db_readings(sid))
    run.wait_for(lambda: len(run.db_readings(sid)) > after + 20, 60, "readings after resume")
    run.stop_record()

    # Every value on the wire up to 1 s before the kill is stored; nothing is stored twice.
    sent = sent_values(run)
    stored = stored_values(run, sid)
    missing = Counter(k for t, k in sent if t <= killed_at - MAX_LOSS_S) - stored
    assert not missing, [(k, f"sent {(killed_at - t) * 1000:.0f} ms before the kill")
                         for t, k in sent if k in missing]
    assert not stored - Counter(k for _, k in sent), "stored a value that was not sent"
    lost = Counter(k for t, k in sent if t <= killed_at) - stored
    lost_since = min((t for t, k in sent if k in lost), default=killed_at)
    print(f"\ncrash loss: {sum(lost.values())} readings, sent in the last "
          f"{(killed_at - lost_since) * 1000:.0f} ms before SIGKILL; resumed "
          f"{time.time() - resumed_at:.1f} s after the restart began")

    readings = run.db_readings(sid)
    events = run.db_events(sid)
    (gap,) = [e for e in events if e.kind is DeviceEventKind.GAP and INTERRUPTED in e.detail]
    last_before = max(r.t_received for r in readings if r.t_received <= gap.t_received
                      and r.t_received.timestamp() < killed_at)
    first_after = min(r.t_received for r in readings if r.t_received >= gap.t_received)
    assert first_after == gap.t_received  # the gap ends at the first new reading
    assert f"no data from {iso_z(last_before)} to" in gap.detail  # ... from the last before
    assert not [r for r in readings if last_before < r.t_received < first_after]

    with run.open_database() as db:
        chart = SessionChart.open(db, sid, SystemClock())
        (session,) = [s for s in db.repository.list_sessions() if s.id == sid]
        assert session.ended is not None and open_sessions(db, CHAIR) == []
        audit = AuditLog(db.engine)
        assert [e.actor for e in audit.entries(sid) if e.action == "resume"] != []
        assert audit.verify(sid).ok
        alarms = AlarmLog(db.engine).alarms(sid)
    assert chart.state is Phase.INFUSION
    entry = chart.minute_rows()[0].entry
    assert entry is not None and (entry.minute, entry.dissociation, entry.entered_by) == (
        0, 1, NURSE)
    assert [n[-1].text for n in chart.notes()] == [NOTE]
    (severe,) = [a for a in alarms if a.condition == "sbp_high_severe"]
    assert severe.latched and severe.acknowledged_by is None and severe.cleared is None
    (flag,) = [a for a in alarms if a.condition == "notify_attending"]
    assert flag.cleared is None  # still waiting for an attending
    # The NIBP the S/5 repeats after the reconnect was not stored as a new measurement.
    nibp_times = [r.t_device for r in readings if r.vital is Vital.NIBP_SYS]
    assert len(nibp_times) == len(set(nibp_times))
    assert all(sum(1 for r in readings if r.vital is v and r.t_device == t) == 1
               for v in NIBP for t in nibp_times)
