"""The long tables of the PDF report: the minute log (with amendments) and the alarm log.

Table cells cannot split across pages, so free text in a cell is clipped and given in full in
paragraphs after the table (amendment reasons, alarm responses), which can.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from infusion_monitor.export.pdf_style import (
    DASH,
    FONT,
    GRID,
    HEAD_BG,
    STRIPE,
    Styles,
    Times,
    clip,
    esc,
    num,
    signed,
)
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.scales import NOT_ASSESSED, score_text
from infusion_monitor.session.thresholds import (
    DEFAULT_CONDITIONS,
    NOTIFY_ATTENDING,
    TECHNICAL_CONDITIONS,
    number,
)
from infusion_monitor.store.alarm_log import AlarmRecord
from infusion_monitor.store.charting import MinuteEntry
from infusion_monitor.vitals import Vital

CELL_CLIP = 240  # characters of free text in one table cell
PRIORITY = {"high": "*** high", "medium": "** medium", "low": "* low", "technical": "technical"}
_LABELS = {c.name: c.label for c in (*DEFAULT_CONDITIONS, *TECHNICAL_CONDITIONS.values())}
_LABELS[NOTIFY_ATTENDING] = "Notify attending"


def grid_table(rows: list[list[object]], widths: Sequence[float], *, header_rows: int = 1,
               extra: Sequence[tuple] = ()) -> Table:
    """A ruled table whose header repeats on every page; alternate rows lightly shaded."""
    t = Table(rows, colWidths=list(widths), repeatRows=header_rows, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 7),
        ("GRID", (0, 0), (-1, -1), 0.35, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), HEAD_BG),
    ]
    style += [("BACKGROUND", (0, r), (-1, r), STRIPE)
              for r in range(header_rows + 1, len(rows), 2)]
    t.setStyle(TableStyle(style + list(extra)))
    return t


def head(st: Styles, *labels: str) -> list[Paragraph]:
    """Header cells ("\n" breaks a label where it should, never inside a word)."""
    return [Paragraph(esc(x), st.cell_bold) for x in labels]


def cell(st: Styles, text: object, limit: int = CELL_CLIP) -> Paragraph:
    return Paragraph(esc(clip(str(text), limit)), st.cell)


# -- minute log -------------------------------------------------------------------------------
MINUTE_WIDTHS = (20, 30, 28, 40, 62, 20, 54, 46, 48, 108, 24, 30)  # 510 pt: the frame


def _score(score: int | None, rass: bool = False) -> str:
    if score is None:
        return NOT_ASSESSED
    return signed(score) if rass else score_text(score)


def _scores(e: MinuteEntry) -> str:
    return (f"dissociation {_score(e.dissociation)}, RASS {_score(e.rass, True)}, "
            f"distress {_score(e.distress)}")


def minute_log(record: SessionRecord, st: Styles, times: Times,
               note_refs: dict[int, str]) -> list[Flowable]:
    """One row per minute, then the amendments it refers to (A1, A2, ...)."""
    if not record.minutes:
        return [Paragraph("No minute log: the infusion was not started.", st.body)]
    rows: list[list[object]] = [head(
        st, "Min", "Time", "HR", "SpO2\nmin/med", "NIBP (age)", "Art.", "Dissociation", "RASS",
        "Distress", "Charted by, at", "Late", "Ref.")]
    extra: list[tuple] = []
    amendments: list[Flowable] = []
    for row in record.minutes:
        refs = []
        if row.history:
            ref = f"A{len(amendments) + 1}"
            refs.append(ref)
            amendments.append(_amendment(st, times, ref, row))
        refs += [note_refs[c[0].id] for c in row.notes if c[0].id in note_refs]
        r = len(rows)
        rows.append(_minute_cells(st, times, row, ", ".join(refs)))
        if row.entry is None:
            extra.append(("SPAN", (6, r), (8, r)))
    table = grid_table(rows, MINUTE_WIDTHS, extra=[
        ("ALIGN", (0, 1), (5, -1), "RIGHT"), ("ALIGN", (6, 1), (8, -1), "CENTER"), *extra])
    out: list[Flowable] = [table]
    out.append(Paragraph(
        "HR is the median of valid values in the minute (PR when there was no ECG HR, marked "
        "“PR”); SpO2 minimum/median; NIBP the latest valid measurement at the minute's end and "
        "its age; Art. counts values not used (artifact/questionable). Late: first charted more "
        "than 60 s after the minute ended. Ref.: A = amendment, N = note (listed below).",
        st.small))
    if amendments:
        out.append(Paragraph("Amendments to minute entries", st.h2))
        out += amendments
    return out


def _minute_cells(st: Styles, times: Times, row: MinuteRow, refs: str) -> list[object]:
    v, e, first = row.vitals, row.entry, row.first_entry
    hr = num(v.hr_median)
    if v.hr_median is not None and v.hr_source is Vital.PR:
        hr += " PR"
    spo2 = DASH if v.spo2_min is None else f"{num(v.spo2_min)}/{num(v.spo2_median)}"
    if v.nibp is None:
        nibp = DASH
    else:
        age = "" if v.nibp_age_s is None else f" ({int(v.nibp_age_s // 60)} min)"
        nibp = f"{num(v.nibp.sys)}/{num(v.nibp.dia)}{age}"
    if e is None:
        scores: list[object] = [Paragraph(f"<i>{NOT_ASSESSED}</i>", st.cell_center), "", ""]
    else:
        scores = [_score_cell(st, e.dissociation), _score_cell(st, e.rass, True),
                  _score_cell(st, e.distress)]
    who = DASH if first is None else f"{clip(first.entered_by, 48)} {times.hms(first.entered_at)}"
    return [str(v.minute), times.hm(v.start), hr, spo2, nibp, str(v.n_artifacts or ""),
            *scores, cell(st, who), "late" if row.late else "", refs]


def _score_cell(st: Styles, score: int | None, rass: bool = False) -> object:
    if score is None:
        return Paragraph(f"<i>{NOT_ASSESSED}</i>", st.cell_center)
    return _score(score, rass)


def _amendment(st: Styles, times: Times, ref: str, row: MinuteRow) -> Flowable:
    assert row.entry is not None
    chain = (*row.history, row.entry)
    parts = [f"<b>{ref}</b> minute {row.minute}: first charted {esc(_scores(chain[0]))} by "
             f"{esc(chain[0].entered_by)} at {times.full(chain[0].entered_at)}"]
    for old, new in pairwise(chain):
        parts.append(f"amended to {esc(_scores(new))} by {esc(new.entered_by)} at "
                     f"{times.full(new.entered_at)} (was {esc(_scores(old))}); "
                     f"reason: {esc(new.reason or DASH)}")
    return Paragraph("; ".join(parts), st.indent)


# -- alarm log --------------------------------------------------------------------------------
ALARM_WIDTHS = (54, 36, 120, 46, 42, 30, 68, 114)  # 510 pt


def condition_label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " "))


def alarm_log(record: SessionRecord, st: Styles, times: Times, minute_of) -> list[Flowable]:
    """One row per alarm of the log; responses too long for a cell follow in full."""
    if not record.alarms:
        return [Paragraph("No alarms were recorded in this session.", st.body)]
    rows: list[list[object]] = [head(st, "Start (min)", "End", "Condition", "Priority",
                                     "Worst / limit", "Latch.", "Acknowledged", "Response")]
    long: list[Flowable] = []
    for i, a in enumerate(record.alarms, start=1):
        response = a.response
        if len(response) > CELL_CLIP:
            long.append(Paragraph(f"<b>R{i}</b> ({times.hms(a.start)}, "
                                  f"{esc(condition_label(a.condition))}): {esc(response)}",
                                  st.indent))
            response = clip(response, CELL_CLIP - 30) + f" (R{i} below)"
        rows.append(_alarm_cells(st, times, a, minute_of, response))
    out: list[Flowable] = [grid_table(rows, ALARM_WIDTHS)]
    out.append(Paragraph(
        "Priority: *** high, ** medium, * low (IEC 60601-1-8 style); technical = about the "
        "equipment or the link. A latched alarm stays shown until acknowledged. Times are "
        "receipt times of the values; minutes count from infusion start.", st.small))
    if long:
        out.append(Paragraph("Alarm responses in full", st.h2))
        out += long
    return out


def _alarm_cells(st: Styles, times: Times, a: AlarmRecord, minute_of,
                 response: str) -> list[object]:
    m = minute_of(a.start)
    start = times.hms(a.start) + ("" if m is None else f" ({m})")
    end = times.hms(a.end) if a.end is not None else ("ongoing" if a.cleared is None else DASH)
    worst = DASH if a.worst_value is None else number(a.worst_value)
    limit = DASH if a.limit is None else number(a.limit)
    cond = f"<b>{esc(condition_label(a.condition))}</b>"
    if a.text:
        cond += f"<br/>{esc(clip(a.text, 120))}"
    ack = DASH if a.acknowledged_by is None else (
        f"{clip(a.acknowledged_by, 48)} {times.hms(a.acknowledged_at)}")
    prio = esc(PRIORITY.get(a.priority, a.priority)) + ("<br/>escalated" if a.escalated else "")
    return [cell(st, start), end, Paragraph(cond, st.cell), Paragraph(prio, st.cell),
            f"{worst} / {limit}", "yes" if a.latched else "no", cell(st, ack),
            cell(st, response or DASH)]
