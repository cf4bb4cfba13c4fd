"""``export --format minutes-csv``: one row per minute of the chart, infusion start to discharge.

Scores are "not assessed" when missing; the amendments column lists every earlier version with
who, when and why; notes are joined with " | ", each with its time and author.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from itertools import pairwise
from typing import TextIO

from infusion_monitor.clock import Clock, iso_z
from infusion_monitor.export.csv_readings import format_value
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.scales import NOT_ASSESSED, score_text
from infusion_monitor.store.charting import ChartStore, MinuteEntry, Note
from infusion_monitor.store.db import Database

HEADER = (
    "minute", "start_utc", "end_utc", "hr_median", "hr_source", "spo2_min", "spo2_median",
    "nibp_sys", "nibp_dia", "nibp_mean", "nibp_age_s", "rr_median", "artifacts",
    "dissociation", "rass", "distress", "assessed", "entered_by", "entered_utc", "late",
    "notes", "amendments",
)


def write_minutes_csv(rows: Iterable[MinuteRow], out: TextIO) -> int:
    """Write the header and one line per minute row; returns how many rows were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    n = 0
    for row in rows:
        writer.writerow(minute_fields(row))
        n += 1
    return n


def minute_fields(row: MinuteRow) -> tuple[str, ...]:
    """One minute as CSV fields, in HEADER order."""
    v, first = row.vitals, row.first_entry
    nibp = v.nibp
    chain = (*row.history, row.entry) if row.entry is not None else ()
    return (
        str(v.minute), iso_z(v.start), iso_z(v.end), _num(v.hr_median),
        "" if v.hr_source is None else v.hr_source.value, _num(v.spo2_min), _num(v.spo2_median),
        _num(nibp.sys if nibp else None), _num(nibp.dia if nibp else None),
        _num(nibp.mean if nibp else None),
        "" if v.nibp_age_s is None else str(round(v.nibp_age_s)), _num(v.rr_median),
        str(v.n_artifacts),
        row.dissociation_text, row.rass_text, row.distress_text,
        "yes" if row.assessed else NOT_ASSESSED,
        "" if first is None else first.entered_by,
        "" if first is None else iso_z(first.entered_at),
        "" if first is None else ("yes" if row.late else "no"),
        " | ".join(_note_text(notes) for notes in row.notes),
        " | ".join(_amendment_text(old, new) for old, new in pairwise(chain)),
    )


def _num(value: float | None) -> str:
    return "" if value is None else format_value(value)


def _scores(e: MinuteEntry) -> str:
    return (f"dissociation {score_text(e.dissociation)}, RASS {score_text(e.rass)}, "
            f"distress {score_text(e.distress)}")


def _amendment_text(old: MinuteEntry, new: MinuteEntry) -> str:
    """One correction: what it was (who, when) and what it became (who, when, why)."""
    return (f"was {_scores(old)} (by {old.entered_by} at {iso_z(old.entered_at)}); amended by "
            f"{new.entered_by} at {iso_z(new.entered_at)}, reason: {new.reason or ''}")


def _note_text(chain: tuple[Note, ...]) -> str:
    """A note as it reads now, with its time and author, and any earlier wording."""
    first, last = chain[0], chain[-1]
    text = f"{iso_z(first.t)} {first.entered_by}: {last.text}"
    for old, new in pairwise(chain):
        text += (f" [amended by {new.entered_by} at {iso_z(new.entered_at)}, reason: "
                 f"{new.reason or ''}; was: {old.text}]")
    return text


def session_minute_rows(database: Database, session_id: int, clock: Clock) -> list[MinuteRow]:
    """A stored session's minute rows: to discharge, else to its end or its last reading."""
    info = database.repository.get_session(session_id)
    readings = database.repository.readings(session_id)
    chart = SessionChart(ChartStore(database.engine), session_id, clock, readings)
    ends = [t for t in (info.ended, readings[-1].time if readings else None) if t is not None]
    end = chart.discharged_at or (max(ends) if ends else clock.now())
    return chart.minute_rows(end)
