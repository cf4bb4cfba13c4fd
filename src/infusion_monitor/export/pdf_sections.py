"""The shorter sections of the PDF report: who and what, phases, baseline, notes, CADSS-6,
discharge check, REMS summary, device events and the signatures block."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.export.pdf_style import (
    DASH,
    FONT,
    GRID,
    Styles,
    Times,
    clip,
    esc,
    num,
    signed,
)
from infusion_monitor.export.pdf_tables import CELL_CLIP, cell, condition_label, grid_table, head
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.checks import DischargeCheck
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import CONDITION_NAMES, ThresholdProfile, number
from infusion_monitor.store.charting import CheckIn
from infusion_monitor.vitals import SPECS, Quality

NOT_SIGNED = "Not yet signed off"


def key_values(st: Styles, pairs: list[tuple[str, str]], width: float,
               lw: float = 78) -> Table:
    """Label/value pairs in two columns of pairs; ``lw`` is the label width."""
    rows = []
    for i in range(0, len(pairs), 2):
        row: list[object] = []
        for label, value in pairs[i:i + 2]:
            row += [Paragraph(esc(label), st.cell_bold), Paragraph(esc(value), st.small)]
        rows.append(row + [""] * (4 - len(row)))
    t = Table(rows, colWidths=[lw, width / 2 - lw, lw, width / 2 - lw], hAlign="LEFT")
    t.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID),
        ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return t


def identity(record: SessionRecord, st: Styles, times: Times, width: float) -> list[Flowable]:
    info, c = record.info, record.check_in
    pairs: list[tuple[str, str]]
    if c is None:
        pairs = [("Patient", "not checked in"), ("MRN / patient ID", info.patient_id or DASH)]
    else:
        dose = DASH if c.dose_mg_per_kg is None else f"{c.dose_mg_per_kg:g} mg/kg"
        if c.dose_mg_per_kg is not None and c.weight_kg is not None:
            dose += f" (= {c.dose_mg_per_kg * c.weight_kg:.1f} mg)"
        pairs = [
            ("Patient", c.patient_name), ("MRN / patient ID", c.patient_id),
            ("Date of birth", DASH if c.birth_date is None else c.birth_date.isoformat()),
            ("Weight", DASH if c.weight_kg is None else f"{c.weight_kg:g} kg"),
            ("Dose", dose),
            ("Planned infusion", DASH if c.planned_minutes is None else
             f"{c.planned_minutes} min"),
            ("Attending", c.attending), ("Nurse", c.nurse),
            ("Checked in", f"{times.full(record.check_in_history[0].entered_at)} by "
             f"{record.check_in_history[0].entered_by}" if record.check_in_history else DASH),
        ]
    pairs += [
        ("Session", f"{info.id} (uid {info.uid})"),
        ("Equipment", f"{record.equipment_id} (source: {info.source})"),
        ("Recording", f"{times.full(info.started)} to {times.full(info.ended)}" if info.ended
         else f"since {times.full(info.started)} (still open)"),
        ("Exported", times.full(record.exported_at)),
        ("Times shown in", times.zone(info.started)),
    ]
    if info.note:
        pairs.append(("Session note", clip(info.note, CELL_CLIP)))
    out: list[Flowable] = [key_values(st, pairs, width)]
    if len(record.check_in_history) > 1:
        out.append(Paragraph("Check-in amendments", st.h2))
        for old, new in pairwise(record.check_in_history):
            out.append(Paragraph(_check_in_change(old, new, times), st.indent))
    return out


_CHECK_IN_FIELDS = ("patient_id", "patient_name", "birth_date", "weight_kg", "dose_mg_per_kg",
                    "planned_minutes", "attending", "nurse")


def _check_in_change(old: CheckIn, new: CheckIn, times: Times) -> str:
    changes = [f"{f.replace('_', ' ')} {getattr(old, f)} → {getattr(new, f)}"
               for f in _CHECK_IN_FIELDS if getattr(old, f) != getattr(new, f)]
    return (f"Amended by {esc(new.entered_by)} at {times.full(new.entered_at)}: "
            f"{esc('; '.join(changes) or 'no field changed')}. Reason: {esc(new.reason or DASH)}")


def phases(record: SessionRecord, st: Styles, times: Times, minute_of) -> list[Flowable]:
    if not record.markers:
        return [Paragraph("No phase was marked.", st.body)]
    rows: list[list[object]] = [head(st, "Phase", "Time", "Minute", "Marked by", "Status")]
    for mk in sorted(record.markers, key=lambda m: (m.t, m.marker.id)):
        m = minute_of(mk.t)
        status = "in force"
        if mk.undo is not None:
            status = (f"VOIDED by {mk.undo.entered_by} at {times.full(mk.undo.entered_at)}; "
                      f"reason: {mk.undo.reason or DASH}")
        rows.append([mk.phase.label, times.full(mk.t), DASH if m is None else str(m),
                     cell(st, clip(mk.marker.entered_by, 60)), cell(st, status)])
    return [grid_table(rows, (62, 84, 38, 110, 210))]


def baseline(record: SessionRecord, st: Styles, times: Times, width: float) -> list[Flowable]:
    b = record.baseline
    if b is None:
        return [Paragraph("No baseline: the infusion was not started.", st.body)]
    nibp = DASH if b.nibp is None else (
        f"{num(b.nibp.sys)}/{num(b.nibp.dia)}"
        + ("" if b.nibp.mean is None else f" (mean {num(b.nibp.mean)})")
        + f" mmHg at {times.hms(b.nibp.t)}")
    hr_label = "HR" if b.hr_source is None else SPECS[b.hr_source].label
    pairs = [
        ("Taken at", times.full(b.t)), ("NIBP", nibp),
        ("SpO2", f"{num(b.spo2)} % (median of {b.n_spo2} values in 60 s)"),
        (hr_label, f"{num(b.hr)} /min (median of {b.n_hr} values in 60 s)"),
    ]
    out: list[Flowable] = [key_values(st, pairs, width)]
    if b.bp_high:
        out.append(Paragraph("Baseline BP above 140/90: the attending decided whether to "
                             "proceed (see the alarm log and notes).", st.small))
    return out


def limits(record: SessionRecord, st: Styles, times: Times) -> list[Flowable]:
    """The alarm limits in force (changed ones marked) and who changed them, why."""
    defaults = ThresholdProfile.defaults().limits()
    items = [(condition_label(n), record.limits.get(n), record.limits.get(n) != defaults.get(n))
             for n in CONDITION_NAMES if n in record.limits]
    rows: list[list[object]] = [head(st, *("Condition", "Limit") * 3)]
    for i in range(0, len(items), 3):
        row: list[object] = []
        for label, value, changed in items[i:i + 3]:
            shown = DASH if value is None else number(value).replace("-", "−")
            row += [label, shown + (" *" if changed else "")]
        rows.append(row + [""] * (6 - len(row)))
    out: list[Flowable] = [grid_table(rows, (118, 50) * 3)]
    if record.limit_changes:
        out.append(Paragraph("* changed for this session:", st.small))
        for c in record.limit_changes:
            out.append(Paragraph(
                f"{esc(condition_label(c.condition))}: {_lim(c.old_value)} → "
                f"{_lim(c.new_value)} by {esc(c.by)} at {times.full(c.time)}; reason: "
                f"{esc(c.reason)}", st.indent))
    return out


def _lim(v: float | None) -> str:
    return DASH if v is None else number(v)


def notes(record: SessionRecord, st: Styles, times: Times, refs: dict[int, str],
          minute_of) -> list[Flowable]:
    if not record.notes:
        return [Paragraph("No notes.", st.body)]
    out: list[Flowable] = []
    for chain in record.notes:
        first, last = chain[0], chain[-1]
        m = minute_of(first.t)
        where = "before infusion start" if m is None else f"minute {m}"
        out.append(Paragraph(
            f"<b>{refs.get(first.id, '')}</b> {times.hms(first.t)} ({where}), "
            f"{esc(first.entered_by)}" + (f" — amended {len(chain) - 1}×" if len(chain) > 1
                                          else ""), st.cell_bold))
        out.append(Paragraph(esc(last.text), st.indent))
        for old, new in pairwise(chain):
            out.append(Paragraph(
                f"<i>Amended by {esc(new.entered_by)} at {times.full(new.entered_at)}; reason: "
                f"{esc(new.reason or DASH)}. Earlier wording ({esc(old.entered_by)}, "
                f"{times.full(old.entered_at)}):</i> {esc(old.text)}", st.indent))
        out.append(Spacer(1, 3))
    return out


CADSS_ITEMS = (1, 2, 6, 7, 15, 22)


def cadss(record: SessionRecord, st: Styles, times: Times) -> list[Flowable]:
    if not record.cadss:
        return [Paragraph("No CADSS-6 form was recorded (optional).", st.body)]
    rows: list[list[object]] = [head(st, "Time point", "Time", "Recorded by",
                                     *(f"Item {n}" for n in CADSS_ITEMS), "Total", "Amended")]
    amended: list[Flowable] = []
    for chain in record.cadss:
        form = chain[-1]
        scores = dict(form.items)
        rows.append([form.timepoint, times.hms(form.t), cell(st, chain[0].entered_by),
                     *(str(scores.get(n, DASH)) for n in CADSS_ITEMS), str(form.total),
                     "yes" if len(chain) > 1 else ""])
        for old, new in pairwise(chain):
            changed = ", ".join(f"item {n}: {a} → {b}" for (n, a), (_, b)
                                in zip(old.items, new.items, strict=True) if a != b)
            amended.append(Paragraph(
                f"{esc(form.timepoint)}: total {old.total} → {new.total} ({changed}) "
                f"by {esc(new.entered_by)} at {times.full(new.entered_at)}; reason: "
                f"{esc(new.reason or DASH)}", st.indent))
    out: list[Flowable] = [grid_table(rows, (58, 46, 100, *(36,) * 6, 34, 44))]
    out.append(Paragraph("Each item 0 (not at all) to 4 (extremely); total 0–24.", st.small))
    return out + amended


def discharge(record: SessionRecord, st: Styles, times: Times) -> list[Flowable]:
    mk = next((m for m in reversed(record.markers)
               if m.phase is Phase.DISCHARGED and not m.voided), None)
    if mk is None or "check" not in mk.marker.detail:
        return [Paragraph("Not discharged in this record.", st.body)]
    check = DischargeCheck.from_detail(mk.marker.detail["check"])
    rows: list[list[object]] = [head(st, "Criterion", "Met", "Value", "Target")]
    for item in check.items:
        rows.append([cell(st, item.label), "met" if item.met else "NOT met", cell(st, item.value),
                     cell(st, item.target or DASH)])
    out: list[Flowable] = [Paragraph(
        f"Checked at {times.full(check.t)}; discharged by {esc(mk.marker.entered_by)}. "
        f"All criteria met: <b>{'yes' if check.all_met else 'no'}</b>.", st.body),
        grid_table(rows, (150, 44, 150, 160))]
    reason = mk.marker.detail.get("reason")
    if reason:
        out.append(Paragraph(f"Reason for discharging with unmet criteria: {esc(reason)}",
                             st.indent))
    return out


def rems(record: SessionRecord, st: Styles, times: Times, width: float) -> list[Flowable]:
    s = record.rems
    if s is None:
        return [Paragraph("No REMS summary: the infusion was not started.", st.body)]

    def bp(m) -> str:
        return DASH if m is None else f"{num(m.sys)}/{num(m.dia)} mmHg at {times.hms(m.t)}"

    def yn(v: bool | None) -> str:
        return DASH if v is None else ("yes" if v else "no")

    pairs = [
        ("BP before dosing", bp(s.bp_before_dosing)),
        ("BP about 40 min after start", bp(s.bp_about_40_min)),
        ("BP at end of monitoring", bp(s.bp_at_end)),
        ("Vitals acceptable before dosing", yn(s.vitals_acceptable_before_dosing)),
        ("Vitals acceptable before completion", yn(s.vitals_acceptable_before_completion)),
        ("Sedation (RASS ≤ −2)", yn(s.sedation) + ("" if s.lowest_rass is None else
                                                  f" (lowest RASS {signed(s.lowest_rass)})")),
        ("Dissociation (≥ 1)", yn(s.dissociation) + (
            "" if s.highest_dissociation is None else f" (highest {s.highest_dissociation})")),
        ("Respiratory depression", yn(s.respiratory_depression)
         + (f" ({s.respiratory_detail})" if s.respiratory_depression else "")),
        ("First dose", times.full(s.first_dose)),
        ("End of monitoring", times.full(s.end_of_monitoring)),
        ("Ready to leave", times.full(s.ready_to_leave)),
        ("Total monitored minutes", DASH if s.monitored_minutes is None
         else str(s.monitored_minutes)),
    ]
    return [key_values(st, pairs, width, lw=122)]


_LINK = (DeviceEventKind.LINK_UP, DeviceEventKind.LINK_DOWN, DeviceEventKind.NO_DATA,
         DeviceEventKind.DATA_RESUMED, DeviceEventKind.GAP, DeviceEventKind.DEVICE_ERROR,
         DeviceEventKind.PROBE_OFF)
MAX_EVENT_ROWS = 40


def device_events(record: SessionRecord, st: Styles, times: Times) -> list[Flowable]:
    ev = record.device_events
    kinds = Counter(e.kind for e in ev)
    rejected = sum(e.count for e in ev if e.kind is DeviceEventKind.FRAME_REJECTED)
    used = Counter(r.vital for r in record.readings if r.quality is Quality.OK)
    unused = Counter(r.vital for r in record.readings if r.quality is not Quality.OK)
    vitals = ", ".join(f"{SPECS[v].label} {used[v]}" + (f" (+{unused[v]} not used)"
                                                         if unused[v] else "")
                       for v in SPECS if used[v] or unused[v])
    out: list[Flowable] = [Paragraph(
        f"Values received: {esc(vitals or 'none')}. Rejected frames (checksum/length): "
        f"<b>{rejected}</b>. Disconnects: <b>{kinds[DeviceEventKind.LINK_DOWN]}</b>; "
        f"no-data periods: <b>{kinds[DeviceEventKind.NO_DATA]}</b>; gaps: "
        f"<b>{kinds[DeviceEventKind.GAP]}</b>; parameter status changes: "
        f"{kinds[DeviceEventKind.PARAMETER_STATUS]}.", st.body)]
    link = [e for e in ev if e.kind in _LINK]
    if link:
        rows: list[list[object]] = [head(st, "Time", "Event", "Detail")]
        for e in link[:MAX_EVENT_ROWS]:
            t = e.t_received or e.t_device
            rows.append([times.hms(t) if t else DASH, str(e.kind).replace("_", " "),
                         cell(st, e.detail or DASH, 160)])
        out.append(grid_table(rows, (50, 70, 384)))
        if len(link) > MAX_EVENT_ROWS:
            out.append(Paragraph(f"… and {len(link) - MAX_EVENT_ROWS} more link events "
                                 "(all are in the database and the CSV export).", st.small))
    return out


def signatures(record: SessionRecord, st: Styles, times: Times) -> list[Flowable]:
    """The sign-offs recorded by the app (after 21 CFR 11.50) and the addenda made after the
    first one; an unsigned record gets empty lines to sign on paper."""
    if not record.signoffs:
        return _paper_lines(st)
    rows: list[list[object]] = [head(st, "Role", "Printed name", "User", "Date / time",
                                     "Meaning of signature")]
    for s in record.signoffs:
        rows.append([cell(st, s.role), cell(st, s.printed_name), cell(st, s.signed_by),
                     times.full(s.signed_at), cell(st, s.meaning_label)])
    out: list[Flowable] = [
        Paragraph(f"<b>Signed off</b> {len(record.signoffs)}× in the app; the first sign-off "
                  "locked the record: later changes are addenda, listed below.", st.body),
        grid_table(rows, (62, 120, 100, 92, 130))]
    for s in record.signoffs:
        if s.comment:
            out.append(Paragraph(f"<i>Comment by {esc(s.printed_name)} "
                                 f"({times.full(s.signed_at)}):</i> {esc(s.comment)}", st.indent))
    if not record.addenda:
        out.append(Paragraph("No addenda after sign-off.", st.body))
        return out
    unsigned = sum(not a.signed for a in record.addenda)
    out.append(Paragraph(f"<b>Addenda after sign-off: {len(record.addenda)}</b>"
                         + (f" ({unsigned} not yet signed off)" if unsigned else
                            " (all covered by a later sign-off)"), st.body))
    arows: list[list[object]] = [head(st, "Entered", "By", "Addendum", "Reason", "Signed")]
    for a in record.addenda:
        arows.append([times.full(a.entered_at), cell(st, a.entered_by),
                      cell(st, f"{a.kind}: {a.summary}", 400), cell(st, a.reason or DASH, 400),
                      "yes" if a.signed else "NOT YET"])
    out.append(grid_table(arows, (84, 80, 170, 120, 50)))
    return out


def _paper_lines(st: Styles) -> list[Flowable]:
    """The sign-off block of an unsigned record: empty lines to sign on paper."""
    rows: list[list[object]] = [head(st, "Role", "Printed name", "Signature", "Date / time",
                                     "Meaning of signature")]
    rows += [[role, "", "", "", ""] for role in ("Nurse", "Attending")]
    t = Table(rows, colWidths=(62, 120, 120, 80, 122), rowHeights=[None, 30, 30], hAlign="LEFT")
    t.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 8), ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        ("LINEBELOW", (1, 1), (-1, -1), 0.6, GRID), ("LINEBELOW", (0, 0), (-1, 0), 0.6, GRID),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 8),
    ]))
    return [KeepTogether([
        Paragraph(f"<b>{NOT_SIGNED}.</b> No supervisor has signed this record off in the app;"
                  " sign below on paper if your clinic requires it.", st.body),
        Spacer(1, 4), t])]
