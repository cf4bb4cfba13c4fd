"""Charting entries of a session: minute scores, notes and CADSS-6, each with amendments.

``ChartEntries`` is mixed into ``SessionChart`` (session/lifecycle.py), which supplies the
phase state, the stores and the clock declared below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from infusion_monitor.clock import Clock, iso_z
from infusion_monitor.errors import ChartingError
from infusion_monitor.session import validate
from infusion_monitor.session.auth import Access, Action
from infusion_monitor.session.locking import SignOffLock
from infusion_monitor.session.minutes import minute_count, minute_of
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.scales import validate_cadss, validate_scores
from infusion_monitor.store.charting import (
    CadssForm,
    ChartStore,
    MinuteEntry,
    Note,
    chains,
    versions,
)

_CHARTING = (Phase.INFUSION, Phase.OBSERVATION, Phase.DISCHARGED)


class ChartEntries(SignOffLock):
    """Minute entries, notes and CADSS-6 forms: validated in full, then appended.

    After a sign-off only amendments and ``add_addendum_note`` are accepted (session/locking.py).
    """

    store: ChartStore
    session_id: int
    clock: Clock
    access: Access
    _entries: list[MinuteEntry]
    _notes: list[Note]
    _cadss: list[CadssForm]

    @property
    def state(self) -> Phase | None:
        raise NotImplementedError

    @property
    def infusion_start(self) -> datetime | None:
        raise NotImplementedError

    @property
    def discharged_at(self) -> datetime | None:
        raise NotImplementedError

    def _rows_end(self, now: datetime) -> datetime:
        raise NotImplementedError

    def _written(self, row: object) -> None:
        raise NotImplementedError

    def _who(self, by: str, what: str) -> str:
        """Who the record names for a charting act, after the permission check (before any
        other check, so a refusal is recorded whatever was typed)."""
        return self.access.require(Action.CHART, by, session_id=self.session_id, what=what)

    def chart_minute(self, minute: int, dissociation: int | None, rass: int | None,
                     distress: int | None, by: str) -> MinuteEntry:
        """Chart one minute's three scores as one entry; late entries are stamped as made."""
        by = self._who(by, "chart a minute")
        self._refuse_if_signed()
        start = self._require_charting("chart a minute")
        now = self.clock.now()
        last = minute_count(start, self._rows_end(now)) - 1
        if isinstance(minute, bool) or not isinstance(minute, int) or not 0 <= minute <= last:
            raise ChartingError(
                f"minute {minute!r} is outside the chart: chart minutes 0–{last} "
                f"(from infusion start {iso_z(start)}"
                + (" to discharge)" if self.discharged_at else " to now)"))
        validate_scores(dissociation, rass, distress)
        done = next((c for c in chains(self._entries) if c[0].minute == minute), None)
        if done is not None:
            raise ChartingError(
                f"minute {minute} is already charted (by {done[-1].entered_by} at "
                f"{iso_z(done[-1].entered_at)}); amend that entry (with a reason) to change it")
        entry = self.store.add_minute_entry(
            self.session_id, minute=minute, dissociation=dissociation, rass=rass,
            distress=distress, entered=now, by=validate.text(by, "who"))
        self._entries.append(entry)
        self._written(entry)
        return entry

    def amend_minute(self, entry_id: int, dissociation: int | None, rass: int | None,
                     distress: int | None, by: str, reason: str) -> MinuteEntry:
        """Correct a minute's scores with a new entry that references the old one."""
        by = self._who(by, "amend a minute")
        old = _newest(self._entries, entry_id, "minute entry")
        validate_scores(dissociation, rass, distress)
        if (old.dissociation, old.rass, old.distress) == (dissociation, rass, distress):
            raise ChartingError(f"entry {entry_id} already has these scores; nothing to amend")
        by, reason = validate.text(by, "who"), validate.reason(reason)
        entry = self.store.add_minute_entry(
            self.session_id, minute=old.minute, dissociation=dissociation, rass=rass,
            distress=distress, entered=self.clock.now(), by=by, amends_id=old.id, reason=reason)
        self._entries.append(entry)
        self._written(entry)
        return entry

    def add_note(self, text: str, by: str, at: datetime | None = None,
                 phrase: str | None = None) -> Note:
        """A timestamped note (``at`` defaults to now), pinned to the minute it falls in."""
        by = self._who(by, "add a note")
        self._refuse_if_signed()
        if self.state is Phase.CLOSED:
            raise ChartingError("the session is closed, so no new notes: amend an existing note "
                                "(with a reason), or undo the close to reopen the session")
        now = self.clock.now()
        at = now if at is None else validate.aware(at, "note time")
        if at > now:
            raise ChartingError(f"a note cannot be dated in the future ({iso_z(at)}); "
                                "leave the time empty for now")
        body = text.strip() if isinstance(text, str) else text
        if phrase is not None:
            phrase = validate.text(phrase, "quick phrase", max_len=200)
            body = f"{phrase}: {body}" if body else phrase
        body = validate.text(body, "note", max_len=validate.MAX_TEXT, multiline=True)
        start = self.infusion_start
        note = self.store.add_note(self.session_id, t=at,
                                   minute=None if start is None else minute_of(start, at),
                                   text=body, entered=now, by=validate.text(by, "who"))
        self._notes.append(note)
        self._written(note)
        return note

    def add_addendum_note(self, text: str, by: str, reason: str) -> Note:
        """A free-text addendum to a signed-off session, stamped now, with why it was added."""
        by = self._who(by, "add an addendum")
        self._require_signed()
        body = validate.text(text, "addendum", max_len=validate.MAX_TEXT, multiline=True)
        by, reason = validate.text(by, "who"), validate.reason(reason)
        now = self.clock.now()
        note = self.store.add_note(self.session_id, t=now, minute=None, text=body, entered=now,
                                   by=by, reason=reason)
        self._notes.append(note)
        self._written(note)
        return note

    def amend_note(self, note_id: int, text: str, by: str, reason: str) -> Note:
        """Correct a note with a new one that references it; both stay visible."""
        by = self._who(by, "amend a note")
        old = _newest(self._notes, note_id, "note")
        body = validate.text(text, "note", max_len=validate.MAX_TEXT, multiline=True)
        by, reason = validate.text(by, "who"), validate.reason(reason)
        note = self.store.add_note(self.session_id, t=old.t, minute=old.minute, text=body,
                                   entered=self.clock.now(), by=by, amends_id=old.id,
                                   reason=reason)
        self._notes.append(note)
        self._written(note)
        return note

    def notes(self) -> list[tuple[Note, ...]]:
        """Every note as its version chain (oldest -> newest), in time order."""
        return sorted(chains(self._notes), key=lambda c: (c[0].t, c[0].id))

    def record_cadss(self, timepoint: str, items: Mapping[int, int], by: str) -> CadssForm:
        """A CADSS-6 form at baseline, about 40 min or before discharge (optional)."""
        by = self._who(by, "record a CADSS-6")
        self._refuse_if_signed()
        if self.state in (None, Phase.CLOSED):
            raise ChartingError("a CADSS-6 is recorded between check-in and closing the session")
        validate_cadss(timepoint, items)
        now = self.clock.now()
        form = self.store.add_cadss(self.session_id, timepoint=timepoint, items=dict(items),
                                    t=now, entered=now, by=validate.text(by, "who"))
        self._cadss.append(form)
        self._written(form)
        return form

    def amend_cadss(self, form_id: int, items: Mapping[int, int], by: str,
                    reason: str) -> CadssForm:
        by = self._who(by, "amend a CADSS-6")
        old = _newest(self._cadss, form_id, "CADSS-6 form")
        validate_cadss(old.timepoint, items)
        by, reason = validate.text(by, "who"), validate.reason(reason)
        form = self.store.add_cadss(self.session_id, timepoint=old.timepoint, items=dict(items),
                                    t=old.t, entered=self.clock.now(), by=by, amends_id=old.id,
                                    reason=reason)
        self._cadss.append(form)
        self._written(form)
        return form

    def cadss_forms(self) -> list[tuple[CadssForm, ...]]:
        return chains(self._cadss)

    def _require_charting(self, action: str) -> datetime:
        state, start = self.state, self.infusion_start
        if state is Phase.CLOSED:
            raise ChartingError(f"the session is closed: cannot {action}; amend an existing "
                                "entry (with a reason), or undo the close to reopen it")
        if state not in _CHARTING or start is None:
            raise ChartingError(f"cannot {action}: the infusion has not started; minutes are "
                                "charted from infusion start")
        return start


T = TypeVar("T", MinuteEntry, Note, CadssForm)


def _newest(items: Sequence[T], item_id: int, what: str) -> T:
    """The row to amend: it must exist here and be the newest version of its chain."""
    chain = versions(items, item_id)
    if not chain:
        raise ChartingError(f"no {what} {item_id} in this session")
    if chain[-1].id != item_id:
        raise ChartingError(f"{what} {item_id} was already amended (now {what} {chain[-1].id}); "
                            "amend the newest version")
    return chain[-1]

