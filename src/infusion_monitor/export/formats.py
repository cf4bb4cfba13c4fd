"""Every export format behind one call, for the review window (the CLI has its own paths).

``write_export(record, fmt, path, progress=...)`` writes one ``SessionRecord`` to a file. It is
Qt-free and runs on a worker thread in the GUI. The file appears only when it is complete: the
data go to a temporary file beside it that is renamed into place, so a full disk or a failure
half-way never leaves a truncated report that looks finished. An ``audit`` hook, when given,
records the export (21 CFR 11.10(e)) before the file appears: if it cannot, no file appears.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from infusion_monitor.errors import InfusionMonitorError, PermissionDeniedError
from infusion_monitor.export.record import SessionRecord

#: ``progress(done, total)``; ``total`` 0 means "working, extent unknown".
Progress = Callable[[int, int], None]
#: ``audit(record, fmt, path, count)`` records an export that is about to appear at ``path``
#: (``store.audit.export_recorder`` makes one); an InfusionMonitorError from it stops the export.
ExportAudit = Callable[[SessionRecord, str, Path, int], None]


class ExportError(InfusionMonitorError):
    """An export could not be written (the message says why, for the user)."""


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    title: str  # menu text
    suffix: str  # file name suffix
    file_filter: str  # for the save dialog
    what: str  # "readings", "pages", ... for the result message
    module: str  # the module that writes it (imported on first use; FHIR's takes ~1 s)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("pdf", "PDF report…", ".pdf", "PDF report (*.pdf)", "pages",
                 "infusion_monitor.export.pdf"),
    ExportFormat("csv", "Readings (CSV)…", ".csv", "CSV (*.csv)", "readings",
                 "infusion_monitor.export.csv_readings"),
    ExportFormat("minutes-csv", "Minute log (CSV)…", "-minutes.csv", "CSV (*.csv)", "minutes",
                 "infusion_monitor.export.minutes_csv"),
    ExportFormat("alarms-csv", "Alarm log (CSV)…", "-alarms.csv", "CSV (*.csv)", "alarms",
                 "infusion_monitor.export.alarms_csv"),
    ExportFormat("hl7", "HL7 v2 ORU^R01…", ".hl7", "HL7 v2 (*.hl7 *.txt)", "HL7 message(s)",
                 "infusion_monitor.export.hl7v2"),
    ExportFormat("fhir", "FHIR R4 Bundle…", ".json", "FHIR JSON (*.json)", "FHIR resources",
                 "infusion_monitor.export.fhir"),
)}


def default_file_name(record: SessionRecord, fmt: str) -> str:
    """``session-42-2026-05-04.pdf``: the session and its day, nothing about the patient."""
    return f"session-{record.info.id}-{record.info.started:%Y-%m-%d}{FORMATS[fmt].suffix}"


def _write_text(record: SessionRecord, fmt: str, out: TextIO, progress: Progress) -> int:
    if fmt == "csv":
        from infusion_monitor.export.csv_readings import write_readings_csv
        return write_readings_csv(record.readings, out)
    if fmt == "minutes-csv":
        from infusion_monitor.export.minutes_csv import write_minutes_csv
        return write_minutes_csv(record.minutes, out)
    if fmt == "alarms-csv":
        from infusion_monitor.export.alarms_csv import write_alarms_csv
        return write_alarms_csv(record.alarms, out)
    if fmt == "fhir":
        from infusion_monitor.export.fhir import write_fhir
        return write_fhir(record, out, progress)
    if fmt == "hl7":
        from infusion_monitor.export.hl7v2 import write_hl7
        return write_hl7(record, out)
    raise ExportError(f"unknown export format {fmt!r}")


def write_export(record: SessionRecord, fmt: str, path: str | os.PathLike[str], *,
                 clinic_name: str | None = None,
                 progress: Progress | None = None,
                 audit: ExportAudit | None = None) -> int:
    """Write ``record`` as ``fmt`` to ``path``; returns the count of ``FORMATS[fmt].what``.

    Raises ``ExportError`` with a message for the user when the file cannot be written, or
    when ``audit`` cannot record the export (then no file is written).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    report = progress or (lambda done, total: None)
    target = Path(path)
    report(0, 0)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.parent)
    except OSError as exc:
        raise ExportError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        if fmt == "pdf":
            os.close(fd)
            from infusion_monitor.export.pdf import DEFAULT_CLINIC, write_pdf
            n = write_pdf(record, tmp, clinic_name=clinic_name or DEFAULT_CLINIC)
        else:
            # newline="": CSV rows and HL7's \r segment separators reach the file unchanged.
            with open(fd, "w", newline="", encoding="utf-8") as out:
                n = _write_text(record, fmt, out, report)
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp, 0o600)  # a clinical record: owner-only, like the database
        report(n, n)  # the last moment a cancel (raised by ``progress``) leaves no file
        if audit is not None:
            try:
                audit(record, fmt, target, n)
            except PermissionDeniedError as exc:
                raise ExportError(f"{exc}; no file was written") from exc
            except InfusionMonitorError as exc:
                raise ExportError(f"the export could not be recorded in the audit trail, so "
                                  f"no file was written: {exc}") from exc
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return n
