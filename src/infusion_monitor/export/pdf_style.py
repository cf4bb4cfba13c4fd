"""Fonts, paragraph styles, escaping and time formats shared by the PDF report modules.

The report is for paper: black on white, one sans-serif family. The font is Bitstream Vera,
which ships inside the reportlab wheel (no system fonts needed) and has ≤ ≥ − ± – —; a character
it lacks is printed as its unaccented letter when there is one (ą -> a), else as "?".
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT = "IMVera"
BOLD = "IMVera-Bold"
ITALIC = "IMVera-Italic"
BOLD_ITALIC = "IMVera-BoldItalic"
_FILES = {FONT: "Vera.ttf", BOLD: "VeraBd.ttf", ITALIC: "VeraIt.ttf", BOLD_ITALIC: "VeraBI.ttf"}

GRID = colors.Color(0.55, 0.55, 0.55)
HEAD_BG = colors.Color(0.88, 0.88, 0.88)
STRIPE = colors.Color(0.96, 0.96, 0.96)
DASH = "—"


@cache
def register_fonts() -> None:
    """Register the Vera family once per process."""
    folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    for name, file in _FILES.items():
        pdfmetrics.registerFont(TTFont(name, os.path.join(folder, file)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=ITALIC,
                                  boldItalic=BOLD_ITALIC)


@cache
def _glyphs() -> frozenset[int]:
    register_fonts()
    face = pdfmetrics.getFont(FONT).face
    return frozenset(face.charToGlyph)


def printable(text: str) -> str:
    """``text`` with every character the font lacks replaced (base letter, else "?")."""
    have = _glyphs()
    out = []
    for ch in text:
        if ord(ch) in have or ch in "\n\t":
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if ord(c) in have
                       and not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


def esc(text: object) -> str:
    """User text made safe for Paragraph markup: printable, ``& < >`` escaped, line breaks kept."""
    s = printable(str(text)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return escape(s).replace("\n", "<br/>")


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters (for table cells, which cannot split across pages)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Times:
    """How times are printed: in one time zone (the workstation's by default), to the second."""

    tz: tzinfo

    @classmethod
    def local(cls) -> Times:
        zone = datetime.now(UTC).astimezone().tzinfo
        return cls(zone or UTC)

    def at(self, t: datetime) -> datetime:
        return t.astimezone(self.tz)

    def hms(self, t: datetime | None) -> str:
        return DASH if t is None else self.at(t).strftime("%H:%M:%S")

    def hm(self, t: datetime | None) -> str:
        return DASH if t is None else self.at(t).strftime("%H:%M")

    def full(self, t: datetime | None) -> str:
        return DASH if t is None else self.at(t).strftime("%Y-%m-%d %H:%M:%S")

    def date(self, t: datetime) -> str:
        return self.at(t).strftime("%Y-%m-%d")

    def zone(self, t: datetime) -> str:
        """E.g. "UTC" or "CET, UTC+01:00"."""
        local = self.at(t)
        offset = local.strftime("%z")
        name = local.tzname() or ""
        pretty = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
        if offset in ("+0000", "") and name in ("UTC", ""):
            return "UTC"
        return f"{name}, {pretty}" if name and not name.startswith(("+", "-", "UTC")) else pretty


def num(value: float | None, digits: int = 0) -> str:
    """A measured value: 78 not 78.0; None as a dash."""
    if value is None:
        return DASH
    if digits == 0 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def signed(score: int | None) -> str:
    """A RASS score: "+1", "0", "−2"."""
    if score is None:
        return DASH
    return f"{score:+d}".replace("-", "−") if score else "0"


class Styles:
    """The paragraph styles of the report (built after the fonts are registered)."""

    def __init__(self) -> None:
        register_fonts()
        base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=10.8,
                              splitLongWords=True, textColor=colors.black)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.2,
                                    spaceBefore=2)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=7, leading=8.4)
        self.cell_bold = ParagraphStyle("cellb", parent=self.cell, fontName=BOLD)
        self.cell_center = ParagraphStyle("cellc", parent=self.cell, alignment=TA_CENTER)
        self.title = ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=15,
                                    leading=19, spaceAfter=2)
        self.h1 = ParagraphStyle("h1", parent=base, fontName=BOLD, fontSize=11.5, leading=14,
                                 spaceBefore=9, spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=9, leading=11.5,
                                 spaceBefore=5, spaceAfter=2, keepWithNext=True)
        self.notice = ParagraphStyle("notice", parent=base, fontName=BOLD, fontSize=9,
                                     leading=12, borderColor=colors.black, borderWidth=0.8,
                                     borderPadding=4, leftIndent=4, rightIndent=4,
                                     spaceBefore=6, spaceAfter=8)
        self.indent = ParagraphStyle("indent", parent=self.small, leftIndent=12, spaceBefore=1)
