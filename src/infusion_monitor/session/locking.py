"""What a sign-off locks: after it, a session takes no new entries, only addenda.

An ADDENDUM is any charting row (check-in amendment, phase marker, minute entry, note, CADSS-6
form) entered after the first sign-off; it stays "unsigned" until a later sign-off covers it.
``SignOffLock`` is mixed into ``SessionChart`` (through ``ChartEntries``): every write path for
a new entry calls ``_refuse_if_signed`` first, which re-reads the sign-offs (another workstation
may have signed) and refuses with the lock message, before anything is written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from infusion_monitor.errors import ChartingError
from infusion_monitor.store.charting import CadssForm, ChartStore, CheckIn, MinuteEntry, Note
from infusion_monitor.store.charting import PhaseMarker as _Marker
from infusion_monitor.store.signoff import SignOff, SignOffStore


class LockState(enum.StrEnum):
    UNSIGNED = "unsigned"
    SIGNED = "signed"
    SIGNED_WITH_UNSIGNED_ADDENDA = "signed_with_unsigned_addenda"


@dataclass(frozen=True, slots=True)
class Addendum:
    """A row entered after the first sign-off; ``signed`` once a later sign-off covers it."""

    kind: str  # "check-in", "phase marker", "minute entry", "note", "CADSS-6 form"
    summary: str
    entered_at: datetime
    entered_by: str
    reason: str | None
    signed: bool


def signed_when(s: SignOff) -> str:
    return s.signed_at.strftime("%Y-%m-%d %H:%M UTC")


def lock_message(s: SignOff) -> str:
    return (f"This session was signed off by {s.printed_name} on {signed_when(s)}: changes are "
            "addenda — amend an entry with a reason")


class SignOffLock:
    """Sign-off state of a chart; needs the chart's store, session and charted rows."""

    store: ChartStore
    session_id: int
    _signoffs: list[SignOff]
    _check_ins: list[CheckIn]
    _markers: list[_Marker]
    _entries: list[MinuteEntry]
    _notes: list[Note]
    _cadss: list[CadssForm]

    def _load_signoffs(self) -> None:
        self._signoffs = SignOffStore(self.store.engine).list(self.session_id)

    def _refuse_if_signed(self) -> None:
        """ChartingError with the lock message if the session is signed off (re-read now)."""
        self._load_signoffs()
        if self._signoffs:
            raise ChartingError(lock_message(self._signoffs[-1]))

    def _require_signed(self) -> SignOff:
        self._load_signoffs()
        if not self._signoffs:
            raise ChartingError("the session is not signed off, so there is nothing to add an "
                                "addendum to; add an ordinary note")
        return self._signoffs[-1]

    def signoffs(self) -> list[SignOff]:
        """The sign-offs as last read (oldest first)."""
        return list(self._signoffs)

    def addenda(self) -> list[Addendum]:
        """Every row entered after the first sign-off, in the order entered."""
        if not self._signoffs:
            return []
        first, last = self._signoffs[0].signed_at, self._signoffs[-1].signed_at
        rows: list[tuple[str, str, CheckIn | _Marker | MinuteEntry | Note | CadssForm]] = []
        rows += [("check-in", f"check-in amended ({c.patient_name})", c) for c in self._check_ins]
        rows += [("phase marker", f"{m.phase.label}{' undone' if m.voided else ''}", m)
                 for m in self._markers]
        rows += [("minute entry", f"minute {e.minute}: dissociation {_s(e.dissociation)}, "
                  f"RASS {_s(e.rass)}, distress {_s(e.distress)}", e) for e in self._entries]
        rows += [("note", n.text, n) for n in self._notes]
        rows += [("CADSS-6 form", f"{f.timepoint}: total {f.total}", f) for f in self._cadss]
        out = [Addendum(kind, summary, r.entered_at, r.entered_by, r.reason,
                        r.entered_at <= last) for kind, summary, r in rows if r.entered_at > first]
        return sorted(out, key=lambda a: a.entered_at)

    def lock_state(self) -> LockState:
        if not self._signoffs:
            return LockState.UNSIGNED
        if any(not a.signed for a in self.addenda()):
            return LockState.SIGNED_WITH_UNSIGNED_ADDENDA
        return LockState.SIGNED


def _s(v: int | None) -> str:
    return "not assessed" if v is None else str(v)
