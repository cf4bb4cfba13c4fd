"""Checks on what a nurse types: each refusal is a ChartingError saying what to enter instead."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime

from infusion_monitor.errors import ChartingError

MAX_TEXT = 10_000  # a note or a reason (characters)
MAX_NAME = 128  # who, patient ID, clinician names (the DB column width)
#: Invisible characters that reorder the text around them (bidi embeddings, overrides and
#: isolates, category Cf): "ID 42\u202e99" displays as another ID. Letters of any script, and
#: joiners such as ZWNJ, stay allowed.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Line and paragraph separators (categories Zl, Zp) break a one-line field as \n would.
LINE_BREAKS = frozenset("\u2028\u2029")


def text(value: object, what: str, *, max_len: int = MAX_NAME, multiline: bool = False) -> str:
    """A required, trimmed string without control characters (newline/tab allowed if multiline)."""
    if not isinstance(value, str):
        raise ChartingError(f"{what} must be text; got {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        raise ChartingError(f"{what} is required; enter it")
    if len(cleaned) > max_len:
        raise ChartingError(f"{what} must be at most {max_len} characters; got {len(cleaned)}")
    allowed = "\n\t" if multiline else ""
    bad = next((c for c in cleaned if c not in allowed and (
        unicodedata.category(c) == "Cc" or (c in LINE_BREAKS and not multiline))), None)
    if bad is not None:
        raise ChartingError(
            f"{what} contains a control character (U+{ord(bad):04X}); remove it"
            + ("" if multiline else " (use a single line)")
        )
    hidden = next((c for c in cleaned if c in DIRECTION_CONTROLS), None)
    if hidden is not None:
        raise ChartingError(f"{what} contains an invisible text-direction control "
                            f"(U+{ord(hidden):04X}); retype it without that character")
    return cleaned


def reason(value: object) -> str:
    """Why a correction or an exception was made: required free text."""
    return text(value, "reason", max_len=MAX_TEXT, multiline=True)


def number(value: object, what: str, low: float, high: float, unit: str = "") -> float:
    """A finite number within ``[low, high]``; the message states the limits."""
    shown = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChartingError(f"{what} must be a number between {low:g} and {high:g}{shown}; "
                            f"got {value!r}")
    if not low <= value <= high:
        raise ChartingError(f"{what} must be between {low:g} and {high:g}{shown}; got {value:g}")
    return float(value)


def whole(value: object, what: str, low: int, high: int, unit: str = "") -> int:
    """A whole number within ``[low, high]``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChartingError(f"{what} must be a whole number between {low} and {high}"
                            f"{' ' + unit if unit else ''}; got {value!r}")
    number(value, what, low, high, unit)
    return value


def birth_date(value: object, today: date) -> date:
    """A date of birth (a date or "YYYY-MM-DD") that is not in the future nor before 1900."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ChartingError(
                f"date of birth must be written YYYY-MM-DD; got {value!r}"
            ) from None
    if not isinstance(value, date):
        raise ChartingError("date of birth is required (YYYY-MM-DD)")
    if value > today:
        raise ChartingError(f"date of birth {value.isoformat()} is in the future; check it")
    if value < date(1900, 1, 1):
        raise ChartingError(f"date of birth {value.isoformat()} is before 1900; check it")
    return value


def aware(t: object, what: str) -> datetime:
    """A timezone-aware datetime (all times are UTC)."""
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise ChartingError(f"{what} must be a timezone-aware time; got {t!r}")
    return t


CHECK_IN_FIELDS = ("patient_id", "patient_name", "birth_date", "weight_kg", "dose_mg_per_kg",
                   "planned_minutes", "attending", "nurse")


def check_in_fields(given: Mapping[str, object], today: date) -> dict[str, object]:
    """Validate every check-in field at once (nothing is written if any is wrong)."""
    return {
        "patient_id": text(given["patient_id"], "patient ID (MRN)"),
        "patient_name": text(given["patient_name"], "patient name", max_len=256),
        "birth_date": birth_date(given["birth_date"], today),
        "weight_kg": number(given["weight_kg"], "weight", 20, 300, "kg"),
        "dose_mg_per_kg": number(given["dose_mg_per_kg"], "planned dose", 0.05, 2, "mg/kg"),
        "planned_minutes": whole(given["planned_minutes"], "planned duration", 10, 240, "min"),
        "attending": text(given["attending"], "attending clinician"),
        "nurse": text(given["nurse"], "nurse"),
    }
