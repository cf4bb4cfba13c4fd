"""PDF report: it opens in QtPdf, has the pages and text the session calls for, no page is blank.

Pages are rendered to PNG with QtPdf (no system tools) into ``$INFUSION_MONITOR_SCREENSHOTS``
when set, so a human can look at them, else into the test's temporary directory.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt starts

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage
from PySide6.QtPdf import QPdfDocument

from infusion_monitor.cli import main
from infusion_monitor.export.pdf import SECONDARY, SECTION_TITLES, write_pdf
from infusion_monitor.export.pdf_sections import NOT_SIGNED
from infusion_monitor.export.pdf_style import Times, esc, printable
from infusion_monitor.export.record import SessionRecord, load_session_record
from infusion_monitor.session.lifecycle import ChartMarker
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import open_database
from infusion_monitor.store.charting import CheckIn, Note, PhaseMarker

CLINIC = "Riverside Ketamine Clinic"
UTC_TIMES = Times(UTC)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("INFUSION_MONITOR_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def flat(text: str) -> str:
    """Whitespace-insensitive form: extracted PDF text breaks lines wherever the layout did."""
    return "".join(text.split())


class Rendered:
    """A PDF opened with QtPdf: per-page text and images (also saved as PNG)."""

    def __init__(self, path: Path, shots: Path, stem: str) -> None:
        self.doc = QPdfDocument()
        assert self.doc.load(str(path)) == QPdfDocument.Error.None_
        self.count = self.doc.pageCount()
        self.texts = [self.doc.getAllText(i).text() for i in range(self.count)]
        self.images: list[QImage] = []
        for i in range(self.count):
            size = self.doc.pagePointSize(i)
            image = self.doc.render(i, QSize(round(size.width() * 2), round(size.height() * 2)))
            assert not image.isNull()
            image.save(str(shots / f"{stem}-page-{i + 1}.png"))
            self.images.append(image)
        self.all = "\n".join(self.texts)
        # The body without each page's header (3 lines) and footer (2), so that text running
        # on over a page break reads on.
        self.body = flat("".join("".join(t.splitlines()[3:-2]) for t in self.texts))

    def has(self, text: str) -> bool:
        return flat(text) in self.body


def dark_fraction(image: QImage, top: float = 0.0, bottom: float = 1.0) -> float:
    """The share of sampled pixels in a horizontal band that are not near-white."""
    dark = total = 0
    for y in range(int(image.height() * top), int(image.height() * bottom), 3):
        for x in range(0, image.width(), 3):
            total += 1
            if image.pixelColor(x, y).lightness() < 200:
                dark += 1
    return dark / max(total, 1)


@pytest.fixture(scope="module")
def record(simulated_session) -> SessionRecord:
    return load_session_record(simulated_session.database, simulated_session.session_id)


def test_sixty_minute_session_report(qapp, simulated_session, record, tmp_path, shots) -> None:
    out = tmp_path / "session.pdf"
    pages = write_pdf(record, out, clinic_name=CLINIC, times=UTC_TIMES)
    pdf = Rendered(out, shots, "session")
    # 71 minute rows need two table pages (≈ 56 rows a page) after the summary page and the
    # half-page trends chart; the 19-row alarm log, notes, CADSS-6, device events and the
    # signatures fill one or two more: 4 to 6 pages for this 60-min infusion + observation.
    assert pages == pdf.count and 4 <= pdf.count <= 6
    for n, text in enumerate(pdf.texts, start=1):
        assert f"Page {n} of {pdf.count}" in text
        assert CLINIC in text and "Ada Example" in text and "MRN-0042" in text  # every header
        assert "1980-05-17" in text and SECONDARY in text
    for title in SECTION_TITLES:
        assert title in pdf.all, title
    header = pdf.texts[-1].splitlines()[:3]  # the last page's header too
    assert f"Nurse: {simulated_session.nurse} · Attending: {simulated_session.attending}" in \
        header[2]
    assert "not assessed" in pdf.all
    # Minute 20 as charted: 2, −1, 1 (the fixture's scores) by the nurse at 09:26:10 UTC.
    assert re.search(r"20\s+09:25\s.*\b2\s+−1\s+1\s+R\. Nurse 09:26:10", pdf.all)
    assert pdf.has(simulated_session.amend_reason)
    assert pdf.has("minute 10: first charted dissociation 2, RASS −1, distress 0")
    assert pdf.has(simulated_session.note_text)  # user markup printed literally, not applied
    assert pdf.has(simulated_session.response_text)
    assert pdf.has("SBP high, severe") and pdf.has("NIBP sys 202 ≥ 200")
    assert pdf.has("Total monitored minutes 71")
    assert NOT_SIGNED in pdf.all
    for n, image in enumerate(pdf.images, start=1):
        assert dark_fraction(image, 0.04, 0.10) > 0.01, f"page {n}: no header"
        assert dark_fraction(image, 0.93, 0.97) > 0.005, f"page {n}: no footer"
        assert dark_fraction(image, 0.10, 0.93) > 0.01, f"page {n} is blank"
    chart_page = next(i for i, t in enumerate(pdf.texts) if "minutes from infusion start" in t)
    assert dark_fraction(pdf.images[chart_page], 0.15, 0.6) > 0.04  # the chart has ink


def _note(nid: int, base: Note, text: str, **kw) -> Note:
    return replace(base, id=nid, text=text, **kw)


def test_hostile_and_long_text_is_escaped_wrapped_and_kept(qapp, record, tmp_path,
                                                           shots) -> None:
    """Markup in user text, 10 kB notes and reasons (one with no space at all), odd names."""
    base = record.notes[0][0]
    prose = " ".join(f"word{i}" for i in range(1700))  # ≈ 10 kB that wraps on spaces
    unbroken = "x" * 9_990 + "END"  # 10 kB with nowhere to break
    markup = "<b>&amp;</b> <i>unclosed & <font size=40>"
    notes = (
        (_note(9001, base, markup),),
        (_note(9002, base, prose), _note(9003, base, unbroken, amends_id=9002, reason=prose)),
    )
    alarms = list(record.alarms)
    alarms[0] = replace(alarms[0], responses=(unbroken,))
    name = "Zoë Łukasiewicz-Wąsowska " + "von Überlänge " * 8
    check_in = replace(record.check_in, patient_name=name.strip())
    assert isinstance(check_in, CheckIn)
    first = record.markers[2]
    undo = replace(first.marker, id=9100, voided=True, amends_id=first.marker.id, reason=markup)
    voided = ChartMarker(Phase.OBSERVATION, first.t + timedelta(minutes=3),
                         replace(first.marker, id=9099, phase=Phase.OBSERVATION), undo)
    assert isinstance(voided.marker, PhaseMarker)
    hostile = replace(record, notes=record.notes + notes, alarms=tuple(alarms),
                      check_in=check_in, markers=(*record.markers, voided))
    out = tmp_path / "hostile.pdf"
    pages = write_pdf(hostile, out, clinic_name="Clinic <&> " + "Long Name " * 20)
    pdf = Rendered(out, shots, "hostile")
    assert pdf.count == pages
    assert pdf.has(markup)  # printed as typed
    assert pdf.has(prose[:200]) and pdf.has(prose[-200:])
    assert pdf.body.count(unbroken) == 2  # the note and the alarm response, in full
    assert pdf.has("Zoë Łukasiewicz-Wasowska")  # "ą" is not in the font: printed as "a"
    assert "Observation (voided)" in pdf.all and pdf.has("VOIDED by R. Nurse")
    for n, text in enumerate(pdf.texts, start=1):
        assert f"Page {n} of {pdf.count}" in text
    for image in pdf.images:
        assert dark_fraction(image, 0.10, 0.93) > 0.005


def test_escape_and_printable() -> None:
    assert esc("<b>&amp;</b>\nnext") == "&lt;b&gt;&amp;amp;&lt;/b&gt;<br/>next"
    assert printable("ą ≤ − ✓") == "a ≤ − ?"


def test_a_session_without_check_in_or_values_still_prints(qapp, tmp_path, shots,
                                                           db_url) -> None:
    db = open_database(db_url)
    t0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    sid = db.repository.create_session(source="import", protocol="datex-s5", started=t0,
                                       patient_id="P-77")
    empty = load_session_record(db, sid)
    db.close()
    out = tmp_path / "empty.pdf"
    pages = write_pdf(empty, out, times=UTC_TIMES)
    pdf = Rendered(out, shots, "empty")
    # Every section says it is empty; with the limits table that is one page and a bit.
    assert pages == pdf.count <= 2 and f"Page 1 of {pages}" in pdf.texts[0]
    assert "not checked in" in pdf.all and "P-77" in pdf.all
    assert "No values were recorded." in pdf.all and NOT_SIGNED in pdf.all


def test_cli_writes_the_pdf_and_refuses_stdout(qapp, simulated_session, tmp_path, shots,
                                               capsys) -> None:
    url = str(simulated_session.database.engine.url)
    sid = str(simulated_session.session_id)
    out = tmp_path / "cli.pdf"
    assert main(["--db", url, "export", sid, "--format", "pdf", "-o", str(out),
                 "--clinic", CLINIC]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert "-page PDF" in capsys.readouterr().err
    pdf = Rendered(out, shots, "cli")
    assert CLINIC in pdf.texts[0] and f"Page {pdf.count} of {pdf.count}" in pdf.texts[-1]
    assert main(["--db", url, "export", sid, "--format", "pdf"]) == 2
    assert "-o FILE" in capsys.readouterr().err
    assert main(["--db", url, "export", "999999", "--format", "pdf", "-o",
                 str(tmp_path / "none.pdf")]) == 1
    assert not (tmp_path / "none.pdf").exists()
    assert main(["--db", url, "export", sid, "--format", "pdf", "-o",
                 str(tmp_path / "no" / "such" / "dir.pdf")]) == 1


def test_signed_report_prints_the_sign_offs_and_addenda(qapp, signed_session, tmp_path,
                                                         shots) -> None:
    # As signed and added by the ``signed_session`` fixture (tests/export/conftest.py).
    SUPERVISOR = "Dr S. Upervisor"  # noqa: N806
    FINDINGS = "minutes 36-39 not assessed; BP trend reviewed"  # noqa: N806
    ADDENDUM = "patient phoned next morning: well at home"  # noqa: N806
    record = load_session_record(signed_session.database, signed_session.session_id)
    assert [s.printed_name for s in record.signoffs] == [SUPERVISOR]
    assert [(a.kind, a.signed) for a in record.addenda] == [("note", False)]
    out = tmp_path / "signed.pdf"
    write_pdf(record, out, clinic_name=CLINIC, times=UTC_TIMES)
    pdf = Rendered(out, shots, "signed")
    assert NOT_SIGNED not in pdf.all
    assert pdf.has(f"supervisor {SUPERVISOR} sup.s 2026-05-04 11:00:00 Reviewed with findings")
    assert pdf.has(FINDINGS)
    assert pdf.has("Addenda after sign-off: 1 (1 not yet signed off)")
    assert pdf.has(f"2026-05-04 12:00:00 R. Nurse note: {ADDENDUM} follow-up call NOT YET")


def test_a_recorded_gap_breaks_the_lines_and_is_marked_even_when_short(record) -> None:
    """Crash recovery notes the interruption as a GAP event: the chart must not join the
    values across it, however short (here 20 s, under GAP_S), and says "gap"."""
    from reportlab.graphics.shapes import PolyLine, String

    from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
    from infusion_monitor.export.pdf_chart import GAP_S, trends_drawing
    from infusion_monitor.export.pdf_style import register_fonts

    register_fonts()
    hr = sorted(r.time for r in record.readings if r.vital.value == "hr")
    end = hr[len(hr) // 2]
    hole = [r for r in record.readings if not end - timedelta(seconds=20) < r.time < end]
    assert 20 < GAP_S
    plain = replace(record, readings=tuple(hole))
    gap = DeviceEvent(DeviceEventKind.GAP, "recording interrupted", t_received=end)
    marked = replace(plain, device_events=(*plain.device_events, gap))

    def shapes(r: SessionRecord, kind: type) -> list:
        return [s for s in trends_drawing(r, 500).contents if isinstance(s, kind)]

    assert len(shapes(marked, PolyLine)) >= len(shapes(plain, PolyLine)) + 2  # HR and SpO2
    assert "gap" not in [s.text for s in shapes(plain, String)]
    assert "gap" in [s.text for s in shapes(marked, String)]
