"""``infusion-monitor audit verify|show`` on SQLite and PostgreSQL, and exports being recorded.

Done-when of the audit-trail issue: a clinical row and an audit row are tampered with directly
in SQL, and ``audit verify`` names the broken entry, on both engines.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from infusion_monitor import cli
from infusion_monitor.store import StoreWriter, open_database
from infusion_monitor.store.audit import AuditLog, current_user
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def session(db_url: str) -> Iterator[tuple[str, int, int]]:
    """(url, session id, id of its minute entry): readings through the writer, one score."""
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0,
                                           by="ws-user")
        writer = StoreWriter(db.repository)
        for i in range(20):
            writer.submit(sid, Reading(Vital.HR, 72.0, t_received=T0 + timedelta(seconds=i)))
        writer.close()
        entry = ChartStore(db.engine).add_minute_entry(
            sid, minute=2, dissociation=1, rass=0, distress=0, entered=T0, by="R. Nurse")
        ChartStore(db.engine).add_minute_entry(
            sid, minute=2, dissociation=2, rass=0, distress=0, entered=T0, by="R. Nurse",
            amends_id=entry.id, reason="scored the wrong minute")
        db.repository.end_session(sid, T0 + timedelta(minutes=30), by="ws-user")
    yield db_url, sid, entry.id


def entries(url: str, sid: int):
    with open_database(url) as db:
        return AuditLog(db.engine).entries(sid)


def test_verify_reports_an_intact_trail(capsys, session) -> None:
    url, sid, _ = session
    code, out, _err = run(capsys, "--db", url, "audit", "verify")
    n = len(entries(url, sid))
    assert (code, out) == (0, f"audit trail intact: {n} entries in 1 chain\n")
    code, out, _err = run(capsys, "audit", "verify", "--session", str(sid), "--db", url)
    assert (code, out) == (0, f"audit trail intact: {n} entries in 1 chain\n")


def test_verify_names_a_tampered_clinical_row(capsys, session) -> None:
    url, sid, entry_id = session
    with open_database(url) as db, db.engine.begin() as conn:
        conn.execute(text("UPDATE minute_entries SET dissociation = 4 WHERE id = :i"),
                     {"i": entry_id})
    e = next(x for x in entries(url, sid) if x.entity_id == entry_id
             and x.entity == "minute_entries")
    code, out, err = run(capsys, "--db", url, "audit", "verify")
    assert code == 1
    assert out.splitlines()[0] == (
        f"audit trail BROKEN at entry #{e.id} (chain {e.chain}, seq {e.seq}): row digest "
        f"mismatch: minute_entries id {entry_id} changed since recorded")
    assert err.startswith("infusion-monitor: the record was changed outside the app") and \
        err.count("\n") == 1


def test_verify_names_a_tampered_audit_row(capsys, session) -> None:
    url, sid, _ = session
    amend = next(x for x in entries(url, sid) if x.action == "amend")
    with open_database(url) as db, db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'no reason' WHERE id = :i"),
                     {"i": amend.id})
    code, out, _err = run(capsys, "--db", url, "audit", "verify", "--session", str(sid))
    assert code == 1
    assert out == (f"audit trail BROKEN at entry #{amend.id} (chain {amend.chain}, "
                   f"seq {amend.seq}): hash mismatch (audit row edited)\n")


def test_verify_names_a_deleted_audit_row(capsys, session) -> None:
    url, sid, _ = session
    trail = entries(url, sid)
    with open_database(url) as db, db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": trail[-1].id - 1})
    code, out, _err = run(capsys, "--db", url, "audit", "verify")
    assert code == 1
    assert out.splitlines()[0] == (
        f"audit trail BROKEN at entry #{trail[-1].id} (chain {trail[-1].chain}, seq "
        f"{trail[-1].seq}): sequence gap (audit row deleted): seq {trail[-1].seq - 1} is "
        "missing before this entry")


def test_show_lists_who_when_what_why(capsys, session) -> None:
    url, sid, _ = session
    code, out, err = run(capsys, "--db", url, "audit", "show", "--session", str(sid))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["time", "(UTC)", "seq", "who", "what", "—", "why"]
    # Fixed columns: time (24), seq (6), who (20), then what — why.
    head = entries(url, sid)[-1]
    assert lines[-1] == f"chain {head.chain} head: seq {head.seq}, hash {head.hash}"
    assert [(line[33:53].rstrip(), line[54:]) for line in lines[1:-1]] == [
        ("ws-user", "session created"), ("R. Nurse", "minute 2 charted"),
        ("R. Nurse", "minute 2 amended — scored the wrong minute"),
        ("ws-user", "session ended")]
    assert lines[1].startswith("2026-05-04T09:00:00Z")
    assert "(1 entry covering device data not shown; --all lists them)" in err
    code, out, _err = run(capsys, "--db", url, "audit", "show", "--session", str(sid), "--all")
    assert "system" in out and "device data recorded: 20 readings" in out


def test_exports_are_recorded(capsys, session, tmp_path: Path) -> None:
    url, sid, _ = session
    target = tmp_path / "r.csv"
    code, _out, err = run(capsys, "--db", url, "export", str(sid), "--format", "csv", "-o",
                          str(target))
    assert code == 0, err
    code, _out, _err = run(capsys, "--db", url, "export", str(sid), "--format", "alarms-csv")
    assert code == 0
    exports = [e for e in entries(url, sid) if e.action == "export"]
    assert [(e.actor, e.detail) for e in exports] == [
        (current_user(), {"format": "csv", "file": str(target)}),
        (current_user(), {"format": "alarms-csv", "file": "stdout"})]
    code, out, _err = run(capsys, "--db", url, "audit", "verify")
    assert code == 0 and out.startswith("audit trail intact:")


def test_usage_and_missing_session(capsys, session) -> None:
    url, _sid, _ = session
    with pytest.raises(SystemExit) as info:
        cli.main(["--db", url, "audit"])
    assert info.value.code == 2
    capsys.readouterr()
    code, _out, err = run(capsys, "--db", url, "audit", "verify", "--session", "999")
    assert (code, err) == (1, "infusion-monitor: no session 999\n")
    code, _out, err = run(capsys, "--db", url, "audit", "show", "--session", "999")
    assert (code, err) == (1, "infusion-monitor: no session 999\n")


def test_the_installed_command_exits_1_on_a_broken_trail(db_url: str) -> None:
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="gui", protocol="p", started=T0, by="w")
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE sessions SET protocol = 'q' WHERE id = :s"), {"s": sid})
    done = subprocess.run([sys.executable, "-m", "infusion_monitor.cli", "--db", db_url,
                           "audit", "verify"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout.startswith("audit trail BROKEN at entry #1 (chain session:")
    assert done.stdout.rstrip().endswith(
        f"row digest mismatch: sessions id {sid} changed since recorded")
