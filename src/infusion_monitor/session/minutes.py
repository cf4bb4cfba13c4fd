"""The per-minute chart: each minute's vitals summary joined with the nurse's entry and notes.

Minute ``k`` covers ``[start + 60k, start + 60(k+1))`` where ``start`` is the infusion start.
Only ``Quality.OK`` values count toward a summary; every other value in the minute is counted in
``n_artifacts`` so a reviewer sees why a summary is thin. Times are receipt times.
"""

from __future__ import annotations

import bisect
import math
import statistics
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from infusion_monitor.clock import to_us
from infusion_monitor.session.scales import NOT_ASSESSED, score_text
from infusion_monitor.store.charting import MinuteEntry, Note, chains
from infusion_monitor.vitals import NIBP, Quality, Reading, Vital

MINUTE_US = 60_000_000

#: Charting minute k during minute k+1 is the normal rhythm; only later counts as a late entry.
LATE_AFTER_S = 60


@dataclass(frozen=True, slots=True)
class NibpMeasurement:
    """One valid NIBP measurement (sys, dia and mean share one time)."""

    t: datetime
    sys: float
    dia: float
    mean: float | None


@dataclass(frozen=True, slots=True)
class MinuteVitals:
    """The automatic part of one minute's row."""

    minute: int
    start: datetime
    end: datetime
    hr_median: float | None
    hr_source: Vital | None  # HR (ECG), else PR (oximeter) when the minute has no valid HR
    spo2_min: float | None
    spo2_median: float | None
    nibp: NibpMeasurement | None  # the latest valid one at the minute's end, however old
    nibp_age_s: float | None  # at the minute's end (or at ``as_of`` for the current minute)
    rr_median: float | None
    n_artifacts: int  # values in this minute that are not Quality.OK
    complete: bool  # False for the minute still in progress


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One row of the minute log: vitals, the current entry, its earlier versions, the notes."""

    vitals: MinuteVitals
    entry: MinuteEntry | None = None  # the newest version
    history: tuple[MinuteEntry, ...] = ()  # earlier versions, oldest first
    notes: tuple[tuple[Note, ...], ...] = ()  # note chains, each oldest -> newest

    @property
    def minute(self) -> int:
        return self.vitals.minute

    @property
    def assessed(self) -> bool:
        return self.entry is not None

    @property
    def status(self) -> str:
        """"assessed" or "not assessed" (never blank)."""
        return "assessed" if self.assessed else NOT_ASSESSED

    @property
    def dissociation_text(self) -> str:
        return score_text(None if self.entry is None else self.entry.dissociation)

    @property
    def rass_text(self) -> str:
        return score_text(None if self.entry is None else self.entry.rass)

    @property
    def distress_text(self) -> str:
        return score_text(None if self.entry is None else self.entry.distress)

    @property
    def first_entry(self) -> MinuteEntry | None:
        """The original entry (when the minute was first charted)."""
        return self.history[0] if self.history else self.entry

    @property
    def late(self) -> bool:
        """The minute was first charted more than LATE_AFTER_S after it ended."""
        first = self.first_entry
        return first is not None and (
            first.entered_at > self.vitals.end + timedelta(seconds=LATE_AFTER_S)
        )


def minute_of(start: datetime, t: datetime) -> int | None:
    """The minute index of ``t`` after ``start``; None before the start."""
    delta = to_us(t) - to_us(start)
    return None if delta < 0 else delta // MINUTE_US


def minute_count(start: datetime, end: datetime) -> int:
    """How many minute rows ``[start, end)`` has: every begun minute counts."""
    return max(0, math.ceil((to_us(end) - to_us(start)) / MINUTE_US))


class NibpLog:
    """Every NIBP measurement seen, by time: the latest valid one before any moment."""

    def __init__(self) -> None:
        self._times: list[int] = []  # sorted
        self._parts: dict[int, dict[Vital, Reading]] = {}

    def add(self, r: Reading) -> None:
        """Add one NIBP reading; sys, dia and mean sharing a time form one measurement."""
        t = to_us(r.time)
        parts = self._parts.get(t)
        if parts is None:
            parts = self._parts[t] = {}
            bisect.insort(self._times, t)
        parts[r.vital] = r

    def latest(self, before: datetime) -> NibpMeasurement | None:
        """The newest valid measurement taken strictly before ``before``."""
        return self.latest_us(to_us(before))

    def latest_us(self, before_us: int) -> NibpMeasurement | None:
        i = bisect.bisect_left(self._times, before_us)
        while i > 0:
            i -= 1
            found = _nibp_of(self._parts[self._times[i]])
            if found is not None:
                return found
        return None

    def measurements(self) -> list[NibpMeasurement]:
        """Every valid measurement, oldest first."""
        out = (_nibp_of(self._parts[t]) for t in self._times)
        return [m for m in out if m is not None]


class MinuteAggregator:
    """Incremental per-minute summaries: ``add`` readings as they come, ``vitals`` any time.

    Work per refresh is proportional to the minutes changed since the last one; finished
    minutes are cached. Thread-safe, so ``add`` can be a recorder subscriber.
    """

    def __init__(self, start: datetime) -> None:
        self.start = start
        self._start_us = to_us(start)
        self._buckets: dict[int, list[Reading]] = {}
        self._nibp = NibpLog()
        self._cache: dict[int, MinuteVitals] = {}
        self._lock = threading.Lock()

    def add(self, readings: Iterable[Reading]) -> None:
        with self._lock:
            for r in readings:
                t = to_us(r.time)
                if r.vital in NIBP:
                    self._nibp.add(r)
                    # A new NIBP changes the "latest NIBP" of every later minute.
                    stale = [k for k in self._cache if self._start_us + (k + 1) * MINUTE_US > t]
                    for k in stale:
                        del self._cache[k]
                if t < self._start_us:
                    continue
                k = (t - self._start_us) // MINUTE_US
                self._buckets.setdefault(k, []).append(r)
                self._cache.pop(k, None)

    def vitals(self, end: datetime) -> list[MinuteVitals]:
        """One summary per minute from the start to ``end`` (exclusive), the last maybe partial."""
        end_us = to_us(end)
        out = []
        with self._lock:
            for k in range(minute_count(self.start, end)):
                m_end = self._start_us + (k + 1) * MINUTE_US
                if m_end <= end_us and k in self._cache:
                    out.append(self._cache[k])
                    continue
                summary = self._summarise(k, min(m_end, end_us))
                if summary.complete:
                    self._cache[k] = summary
                out.append(summary)
        return out

    def _summarise(self, k: int, as_of_us: int) -> MinuteVitals:
        m_start = self._start_us + k * MINUTE_US
        m_end = m_start + MINUTE_US
        values: dict[Vital, list[float]] = {}
        artifacts = 0
        for r in self._buckets.get(k, ()):
            if to_us(r.time) >= as_of_us:
                continue
            if r.quality is not Quality.OK:
                artifacts += 1
            else:
                values.setdefault(r.vital, []).append(r.value)
        hr_source = Vital.HR if Vital.HR in values else (Vital.PR if Vital.PR in values else None)
        spo2 = values.get(Vital.SPO2)
        nibp = self._nibp.latest_us(as_of_us)
        start = self.start + timedelta(minutes=k)
        return MinuteVitals(
            minute=k, start=start, end=start + timedelta(minutes=1),
            hr_median=_median(values.get(hr_source)) if hr_source else None, hr_source=hr_source,
            spo2_min=min(spo2) if spo2 else None, spo2_median=_median(spo2),
            nibp=nibp,
            nibp_age_s=None if nibp is None else (as_of_us - to_us(nibp.t)) / 1e6,
            rr_median=_median(values.get(Vital.RR)), n_artifacts=artifacts,
            complete=as_of_us >= m_end,
        )


def _median(values: Sequence[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _nibp_of(parts: dict[Vital, Reading]) -> NibpMeasurement | None:
    sys_, dia, mean = (parts.get(v) for v in NIBP)
    if sys_ is None or dia is None:
        return None
    if sys_.quality is not Quality.OK or dia.quality is not Quality.OK:
        return None
    ok_mean = mean.value if mean is not None and mean.quality is Quality.OK else None
    return NibpMeasurement(sys_.time, sys_.value, dia.value, ok_mean)


def minute_vitals(
    readings: Iterable[Reading], start: datetime, end: datetime
) -> list[MinuteVitals]:
    """The pure form: one summary per minute of ``[start, end)`` from these readings."""
    agg = MinuteAggregator(start)
    agg.add(readings)
    return agg.vitals(end)


def join_minutes(
    vitals: Sequence[MinuteVitals], entries: Iterable[MinuteEntry], notes: Iterable[Note],
) -> list[MinuteRow]:
    """Attach to each minute its newest entry, that entry's earlier versions and its notes."""
    by_minute: dict[int, tuple[MinuteEntry, ...]] = {}
    for chain in chains(entries):
        # One chain per minute (the controller refuses a second first entry); if a store ever
        # holds two, the later-started chain wins and the other is still shown as history.
        k = chain[0].minute
        by_minute[k] = by_minute.get(k, ()) + chain
    notes_by_minute: dict[int, list[tuple[Note, ...]]] = {}
    start = vitals[0].start if vitals else None
    for chain in chains(notes):
        k = minute_of(start, chain[0].t) if start is not None else None
        if k is not None:
            notes_by_minute.setdefault(k, []).append(chain)
    rows = []
    for v in vitals:
        versions = by_minute.get(v.minute, ())
        rows.append(MinuteRow(
            vitals=v, entry=versions[-1] if versions else None, history=versions[:-1],
            notes=tuple(sorted(notes_by_minute.get(v.minute, ()), key=lambda c: c[0].t)),
        ))
    return rows


def unassessed_streak(rows: Sequence[MinuteRow], now_minute: int) -> int:
    """How many finished minutes in a row, up to ``now_minute``, have no entry.

    The minute in progress does not count against the nurse, but charting it ends the streak.
    """
    return streak_of({r.minute for r in rows if r.assessed}, now_minute,
                     known={r.minute for r in rows})


def streak_of(assessed: Collection[int], now_minute: int,
              known: Collection[int] | None = None) -> int:
    """``unassessed_streak`` from the set of charted minutes (e.g. straight from SQL).

    ``known`` limits the count to minutes that have a row (all from 0 when None).
    """
    if now_minute in assessed:
        return 0
    n = 0
    k = now_minute - 1
    while k >= 0 and (known is None or k in known) and k not in assessed:
        n += 1
        k -= 1
    return n
