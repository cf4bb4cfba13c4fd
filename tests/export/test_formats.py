"""``write_export``: one call per format, files appear only when complete."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from infusion_monitor.export import csv_readings
from infusion_monitor.export.csv_readings import write_readings_csv
from infusion_monitor.export.formats import FORMATS, ExportError, write_export
from infusion_monitor.export.record import load_session_record


@pytest.fixture(scope="module")
def record(simulated_session):
    return load_session_record(simulated_session.database, simulated_session.session_id)


def test_each_format_writes_an_owner_only_file_and_reports_progress(record, tmp_path: Path):
    for fmt in FORMATS:
        target = tmp_path / f"out{FORMATS[fmt].suffix}"
        calls: list[tuple[int, int]] = []
        n = write_export(record, fmt, target, progress=lambda d, t, c=calls: c.append((d, t)))
        assert n > 0 and target.stat().st_size > 0
        assert target.stat().st_mode & 0o777 == 0o600
        assert calls[0] == (0, 0) and calls[-1] == (n, n)
    expected = io.StringIO(newline="")
    write_readings_csv(record.readings, expected)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == expected.getvalue()
    assert list(tmp_path.glob("*.part")) == []


def test_a_failure_half_way_leaves_the_old_file_untouched(record, tmp_path: Path, monkeypatch):
    target = tmp_path / "r.csv"
    target.write_text("yesterday's export\n")

    def breaks(readings, out):
        out.write("time,vital\n" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv_readings, "write_readings_csv", breaks)
    with pytest.raises(ExportError, match="No space left on device"):
        write_export(record, "csv", target)
    assert target.read_text() == "yesterday's export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_a_cancel_before_the_rename_writes_nothing(record, tmp_path: Path):
    class StopError(Exception):
        pass

    def cancel_at_the_end(done: int, total: int) -> None:
        if total and done == total:
            raise StopError

    with pytest.raises(StopError):
        write_export(record, "hl7", tmp_path / "m.hl7", progress=cancel_at_the_end)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_and_missing_directory_are_clear_errors(record, tmp_path: Path):
    with pytest.raises(ExportError, match="unknown export format 'xls'"):
        write_export(record, "xls", tmp_path / "x.xls")
    with pytest.raises(ExportError, match=r"cannot write to .*missing"):
        write_export(record, "csv", tmp_path / "missing" / "r.csv")
