"""``export --format csv``: one row per reading, ``time_utc,parameter,value,unit,quality``."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from infusion_monitor.clock import iso_z
from infusion_monitor.vitals import Reading

HEADER = ("time_utc", "parameter", "value", "unit", "quality")


def format_value(value: float) -> str:
    """Shortest exact text for a value: 78 not 78.0, 97.5 stays 97.5."""
    return f"{value:.6g}" if value != int(value) else str(int(value))


def write_readings_csv(readings: Iterable[Reading], out: TextIO) -> int:
    """Write the rows; returns how many readings were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    n = 0
    for r in readings:
        writer.writerow(
            (iso_z(r.time), r.vital.value, format_value(r.value), r.unit, r.quality.value)
        )
        n += 1
    return n
