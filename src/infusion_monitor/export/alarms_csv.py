"""``export --format alarms-csv``: one row per alarm of the session's alarm log.

Columns: ``start_utc,end_utc,condition,parameter,priority,worst_value,limit,latched,
acknowledged_by,acknowledged_utc,response``. Priority is ``high``, ``medium``, ``low`` or
``technical``; times are ISO 8601 with ``Z``; a cell that does not apply is empty. The
notify-attending flag is a row too (condition ``notify_attending``), so the attending's
acknowledgement is in the export.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

from infusion_monitor.clock import iso_z
from infusion_monitor.export.csv_readings import format_value
from infusion_monitor.store.alarm_log import AlarmRecord

HEADER = ("start_utc", "end_utc", "condition", "parameter", "priority", "worst_value", "limit",
          "latched", "acknowledged_by", "acknowledged_utc", "response")


def _time(t: datetime | None) -> str:
    return "" if t is None else iso_z(t)


def _number(v: float | None) -> str:
    return "" if v is None else format_value(v)


def write_alarms_csv(alarms: Iterable[AlarmRecord], out: TextIO) -> int:
    """Write the rows; returns how many alarms were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    n = 0
    for a in alarms:
        writer.writerow((
            _time(a.start), _time(a.end), a.condition, a.parameter or "", a.priority,
            _number(a.worst_value), _number(a.limit), "true" if a.latched else "false",
            a.acknowledged_by or "", _time(a.acknowledged_at), a.response,
        ))
        n += 1
    return n
