"""``export --format pdf``: the printable session record, a pure function of a SessionRecord.

Built with reportlab only (no Qt in export/, no system libraries): A4 portrait — the paper most
of our clinics print on; Letter printers scale it to fit — black on white, the dark theme is for
screens. Every page carries the clinic, patient (name, MRN, date of birth), session, nurse and
attending at the top and "Page n of N" with the secondary-record statement at the bottom.

Sections, in order (``SECTION_TITLES``): the summary a supervisor reads first (session and
patient, phase markers, baseline, REMS summary, discharge check), then the detail (trends,
minute log with amendments, alarm log, alarm limits, notes, CADSS-6, device events) and the
signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    PageTemplate,
    Paragraph,
)

from infusion_monitor import __version__
from infusion_monitor.export import pdf_sections as sections
from infusion_monitor.export.pdf_chart import origin, trends_drawing
from infusion_monitor.export.pdf_style import BOLD, FONT, GRID, Styles, Times, printable
from infusion_monitor.export.pdf_tables import alarm_log, minute_log
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.minutes import minute_of

DEFAULT_CLINIC = "Infusion clinic"
SECONDARY = "Secondary record — the patient monitor's own alarms remain primary."
TITLE = "Infusion session record"
PAGE = A4
MARGIN = 15 * mm
HEADER_H = 19 * mm
FOOTER_H = 11 * mm

#: Section titles, in order (the tests look for each one in the PDF's text).
SECTION_TITLES = (
    "Session and patient", "Phase markers", "Baseline", "REMS summary", "Discharge check",
    "Trends", "Minute log", "Alarm log", "Alarm limits", "Notes", "CADSS-6", "Device events",
    "Signatures",
)


def write_pdf(record: SessionRecord, path: str | Path, *, clinic_name: str = DEFAULT_CLINIC,
              times: Times | None = None) -> int:
    """Write the report to ``path``; returns the number of pages.

    ``times`` says in which time zone times are printed (default: this workstation's).
    """
    times = times or Times.local()
    st = Styles()
    width = PAGE[0] - 2 * MARGIN
    doc = BaseDocTemplate(
        str(path), pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
        topMargin=MARGIN + HEADER_H, bottomMargin=MARGIN + FOOTER_H,
        title=f"{TITLE} — session {record.info.id}", author=clinic_name,
        subject=SECONDARY, creator=f"Infusion Monitor {__version__}",
    )
    # No frame padding: the body lines up with the header and footer rules.
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate("page", [frame],
                                       onPage=_header(record, clinic_name, times))])
    pages: list[int] = []
    doc.build(story(record, st, times, width),
              canvasmaker=_numbered_canvas(record, times, pages))
    return pages[0] if pages else 0


def story(record: SessionRecord, st: Styles, times: Times, width: float) -> list[Flowable]:
    """Every flowable of the report, in order."""
    t0 = origin(record)
    started = any(m.phase.value == "infusion" and not m.voided for m in record.markers)

    def minute(t: datetime) -> int | None:
        return minute_of(t0, t) if started else None

    note_refs = {chain[0].id: f"N{i}" for i, chain in enumerate(record.notes, start=1)}
    out: list[Flowable] = [Paragraph(TITLE, st.title), Paragraph(SECONDARY, st.notice)]

    def section(title: str, body: list[Flowable], room: float = 100) -> None:
        # A heading never ends a page: start a new one unless ``room`` points are left.
        out.append(CondPageBreak(room))
        out.append(Paragraph(title, st.h1))
        out.extend(body)

    # The summary a supervisor reads first, then the detail.
    section("Session and patient", sections.identity(record, st, times, width))
    section("Phase markers", sections.phases(record, st, times, minute))
    section("Baseline", sections.baseline(record, st, times, width))
    section("REMS summary", sections.rems(record, st, times, width), 150)
    section("Discharge check", sections.discharge(record, st, times), 120)
    if record.readings:
        chart = trends_drawing(record, width)
        section("Trends", [chart], chart.height + 30)
    else:
        section("Trends", [Paragraph("No values were recorded.", st.body)])
    section("Minute log", minute_log(record, st, times, note_refs))
    section("Alarm log", alarm_log(record, st, times, minute))
    section("Alarm limits", sections.limits(record, st, times))
    section("Notes", sections.notes(record, st, times, note_refs, minute))
    section("CADSS-6", sections.cadss(record, st, times))
    section("Device events", sections.device_events(record, st, times))
    section("Signatures", sections.signatures(record, st, times), 150)
    return out


def _fit(text: str, font: str, size: float, room: float) -> str:
    """``text`` shortened with "…" to fit ``room`` points."""
    text = printable(text)
    if stringWidth(text, font, size) <= room:
        return text
    while text and stringWidth(text + "…", font, size) > room:
        text = text[:-1]
    return text + "…"


def _header(record: SessionRecord, clinic: str, times: Times) -> Callable[[Canvas, Any], None]:
    c, info = record.check_in, record.info
    if c is None:
        patient = f"Patient: not checked in · ID {info.patient_id or '—'}"
        people = "Nurse: — · Attending: —"
    else:
        dob = "—" if c.birth_date is None else c.birth_date.isoformat()
        patient = f"Patient: {c.patient_name} · MRN {c.patient_id} · DOB {dob}"
        people = f"Nurse: {c.nurse} · Attending: {c.attending}"
    session = f"Session {info.id} · {times.date(info.started)}"
    zone = f"Times: {times.zone(info.started)}"

    def draw(canvas: Canvas, _doc: Any) -> None:
        w, h = PAGE
        left, right, top = MARGIN, w - MARGIN, h - MARGIN
        room = right - left
        canvas.saveState()
        canvas.setFillColorRGB(0, 0, 0)
        canvas.setFont(BOLD, 10)
        canvas.drawString(left, top - 9, _fit(clinic, BOLD, 10, room * 0.6))
        canvas.setFont(FONT, 8)
        canvas.drawRightString(right, top - 9, TITLE)
        for y, text, side in ((top - 20, patient, session), (top - 30, people, zone)):
            canvas.setFont(BOLD if y == top - 20 else FONT, 8)
            font = BOLD if y == top - 20 else FONT
            canvas.drawString(left, y, _fit(text, font, 8, room * 0.72))
            canvas.setFont(FONT, 8)
            canvas.drawRightString(right, y, _fit(side, FONT, 8, room * 0.27))
        canvas.setStrokeColor(GRID)
        canvas.setLineWidth(0.6)
        canvas.line(left, top - 35, right, top - 35)
        canvas.restoreState()

    return draw


def _numbered_canvas(record: SessionRecord, times: Times, pages: list[int]) -> type[Canvas]:
    """A canvas that holds each page back until the end, to print "Page n of N"."""
    exported = f"Exported {times.full(record.exported_at)} · session uid {record.info.uid}"

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._saved: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab API
            self._saved.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved)
            pages.append(total)
            for state in self._saved:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            w = PAGE[0]
            left, right, y = MARGIN, w - MARGIN, MARGIN + 4
            self.saveState()
            self.setStrokeColor(GRID)
            self.setLineWidth(0.6)
            self.line(left, y + 13, right, y + 13)
            self.setFillColorRGB(0, 0, 0)
            self.setFont(BOLD, 7.5)
            self.drawString(left, y + 4, SECONDARY)
            self.setFont(BOLD, 8.5)
            self.drawRightString(right, y + 4, f"Page {self._pageNumber} of {total}")
            self.setFont(FONT, 6.5)
            self.drawString(left, y - 5, _fit(exported, FONT, 6.5, right - left - 60))
            self.restoreState()

    return NumberedCanvas
