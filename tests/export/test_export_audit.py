"""Exports and the audit trail: the record carries its trail, and every export is recorded
before its file appears (or no file appears)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infusion_monitor.errors import StoreError
from infusion_monitor.export.formats import ExportError, write_export
from infusion_monitor.export.record import SessionRecord, load_session_record
from infusion_monitor.store.audit import AuditLog, export_recorder


@pytest.fixture(scope="module")
def record(simulated_session) -> SessionRecord:
    return load_session_record(simulated_session.database, simulated_session.session_id)


def test_the_record_carries_the_sessions_trail_without_device_batches(
        record: SessionRecord, simulated_session) -> None:
    whole = AuditLog(simulated_session.database.engine).entries(simulated_session.session_id)
    assert record.audit == tuple(e for e in whole if e.action != "record")
    assert any(e.action == "record" for e in whole)  # the device data are covered...
    assert [e.seq for e in record.audit] == sorted(e.seq for e in record.audit)
    what = [e.what for e in record.audit]
    # ...and the acts of people are listed: check-in, the amended minute, acknowledgements.
    assert what[:2] == ["session created", "checked in"]
    assert f"minute {simulated_session.amended_minute} amended" in what
    amended = next(e for e in record.audit if e.what.startswith("minute") and
                   e.action == "amend")
    assert (amended.actor, amended.why) == (simulated_session.nurse,
                                            simulated_session.amend_reason)
    assert "alarm acknowledged" in what and "alarm response" in what


def test_the_audit_hook_runs_once_before_the_file_appears(record: SessionRecord,
                                                          tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    calls: list[tuple[object, ...]] = []

    def audit(rec: SessionRecord, fmt: str, path: Path, n: int) -> None:
        assert not target.exists(), "the file appeared before its export was recorded"
        calls.append((rec.info.id, fmt, path, n))

    n = write_export(record, "csv", target, audit=audit)
    assert calls == [(record.info.id, "csv", target, n)] and target.exists()


def test_an_export_that_cannot_be_recorded_writes_no_file(record: SessionRecord,
                                                          tmp_path: Path) -> None:
    def audit(*_args: object) -> None:
        raise StoreError("could not add to the audit trail: database is locked")

    target = tmp_path / "r.pdf"
    with pytest.raises(ExportError, match=r"could not be recorded in the audit trail, so no "
                                          r"file was written: .*database is locked"):
        write_export(record, "pdf", target, audit=audit)
    assert list(tmp_path.iterdir()) == []


def test_export_recorder_appends_an_export_entry(signed_session, tmp_path: Path) -> None:
    database, sid = signed_session.database, signed_session.session_id
    record = load_session_record(database, sid)
    target = tmp_path / "session.hl7"
    n = write_export(record, "hl7", target, audit=export_recorder(database.engine, "sup1"))
    log = AuditLog(database.engine)
    last = log.entries(sid)[-1]
    assert (last.action, last.actor, last.what) == ("export", "sup1", "exported hl7")
    assert last.detail == {"format": "hl7", "file": str(target), "count": n}
    assert log.verify(sid).ok
