"""The charted infusion session: phases, minute scores, notes, CADSS-6, discharge, summary.

``SessionChart`` is the Qt-free controller the UI and tests drive. Every action first passes
the permission check (session/auth.py: once the database has accounts, only a logged-in
nurse or attending charts, and the record names them), then validates all of its input
before it writes anything, raises ChartingError (with what to do) on bad input, and
only ever appends rows; corrections are amendments carrying who, when and why.
Charting methods run on one thread (the GUI's); ``observe`` may be called from any thread.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from infusion_monitor.clock import Clock, SystemClock, to_us
from infusion_monitor.errors import ChartingError
from infusion_monitor.session import checks, validate
from infusion_monitor.session.auth import Access, access_for
from infusion_monitor.session.checks import Advisory, Baseline, DischargeCheck, RemsSummary
from infusion_monitor.session.entries import ChartEntries
from infusion_monitor.session.minutes import (
    MinuteAggregator,
    MinuteRow,
    NibpLog,
    join_minutes,
    minute_of,
    unassessed_streak,
)
from infusion_monitor.session.phases import ORDER, Phase
from infusion_monitor.store.charting import (
    ChartStore,
    CheckIn,
    MinuteEntry,
    PhaseMarker,
    chains,
    latest,
)
from infusion_monitor.store.db import Database
from infusion_monitor.vitals import NIBP, Reading

log = logging.getLogger(__name__)

_ACTIONS = {
    Phase.CHECK_IN: "check the patient in", Phase.BASELINE: "start the baseline",
    Phase.INFUSION: "start the infusion", Phase.OBSERVATION: "end the infusion",
    Phase.DISCHARGED: "discharge the patient", Phase.CLOSED: "close the session",
}
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ChartMarker:
    """A phase marker as the trend charts draw it; ``undo`` is the amendment that voided it."""

    phase: Phase
    t: datetime
    marker: PhaseMarker
    undo: PhaseMarker | None = None

    @property
    def voided(self) -> bool:
        return self.undo is not None


class SessionChart(ChartEntries):
    """The chart of one session over a ChartStore, the session's readings and a Clock."""

    def __init__(self, store: ChartStore, session_id: int, clock: Clock | None = None,
                 readings: Iterable[Reading] = (), access: Access | None = None) -> None:
        self.store = store
        self.session_id = session_id
        self.clock = clock or SystemClock()
        #: Who acts (shared with the chair's other objects); without one, nobody is logged
        #: in, which is refused once the database has accounts.
        self.access = access_for(store.engine, access)
        self._lock = threading.Lock()
        self._readings: list[Reading] = []
        self._times: list[int] = []
        self._nibp = NibpLog()
        self._aggregator: MinuteAggregator | None = None
        self._listeners: list[Callable[[object], None]] = []
        self.reload()
        self.observe(readings)

    @classmethod
    def open(cls, database: Database, session_id: int, clock: Clock | None = None,
             access: Access | None = None) -> SessionChart:
        """The chart of a stored session with every stored reading (StoreError if none)."""
        database.repository.get_session(session_id)
        return cls(ChartStore(database.engine), session_id, clock,
                   database.repository.readings(session_id), access)

    def reload(self) -> None:
        """Re-read the charted rows (after another workstation wrote to this session)."""
        sid = self.session_id
        self._check_ins = self.store.check_ins(sid)
        self._markers = self.store.markers(sid)
        self._entries = self.store.minute_entries(sid)
        self._notes = self.store.notes(sid)
        self._cadss = self.store.cadss_forms(sid)
        self._load_signoffs()

    def observe(self, events: Iterable[object]) -> None:
        """Take new readings (a Recorder subscriber); anything that is not a Reading is skipped."""
        with self._lock:
            for r in events:
                if not isinstance(r, Reading) or (r.t_received or r.t_device) is None:
                    continue
                t = to_us(r.time)
                i = bisect.bisect_right(self._times, t)
                self._times.insert(i, t)
                self._readings.insert(i, r)
                if r.vital in NIBP:
                    self._nibp.add(r)
                if self._aggregator is not None:
                    self._aggregator.add([r])

    def subscribe(self, listener: Callable[[object], None]) -> None:
        """Call ``listener(row)`` after each row this chart writes (to feed the alarm engine:
        phase markers, minute entries...). A failing listener is logged, never re-raised."""
        self._listeners.append(listener)

    def _written(self, row: object) -> None:
        for listener in list(self._listeners):
            try:
                listener(row)
            except Exception:  # the row is saved; a broken listener must not undo the action
                log.exception("chart listener %r failed", listener)

    def readings(self) -> list[Reading]:
        """Every reading observed so far, in time order (a copy)."""
        with self._lock:
            return list(self._readings)

    # -- where the session stands ------------------------------------------------------------
    @property
    def state(self) -> Phase | None:
        """The current phase (None before check-in)."""
        effective = self._effective()
        return effective[-1].phase if effective else None

    def markers(self) -> list[ChartMarker]:
        """Every phase marker ever set, voided ones included, for the trend charts."""
        undo = {m.amends_id: m for m in self._markers if m.voided and m.amends_id is not None}
        return [ChartMarker(m.phase, m.t, m, undo.get(m.id)) for m in self._markers if not m.voided]

    def marker(self, phase: Phase) -> PhaseMarker | None:
        """The phase's marker in force (not voided), if set."""
        return next((m for m in reversed(self._effective()) if m.phase is phase), None)

    @property
    def infusion_start(self) -> datetime | None:
        m = self.marker(Phase.INFUSION)
        return None if m is None else m.t

    @property
    def discharged_at(self) -> datetime | None:
        m = self.marker(Phase.DISCHARGED)
        return None if m is None else m.t

    def check_in_details(self) -> CheckIn | None:
        """The newest version of the check-in."""
        return latest(self._check_ins)[-1] if self._check_ins else None

    def check_in_history(self) -> tuple[CheckIn, ...]:
        return chains(self._check_ins)[0] if self._check_ins else ()

    def baseline(self) -> Baseline | None:
        """The baseline stored at infusion start."""
        m = self.marker(Phase.INFUSION)
        return None if m is None else Baseline.from_detail(m.detail["baseline"])

    def assess_baseline(self, now: datetime | None = None) -> Baseline:
        """The baseline as it would be taken now, with what is still missing (for display)."""
        now = now or self.clock.now()
        checked_in = self.marker(Phase.CHECK_IN)
        since = checked_in.t if checked_in else now - timedelta(days=1)
        with self._lock:
            nibp = self._nibp.latest_us(to_us(now) + 1)
        return checks.assess_baseline(self._recent(now), nibp, since, now)

    def discharge_check(self, now: datetime | None = None) -> DischargeCheck:
        """Each discharge criterion, met or not, right now."""
        base = self.baseline()
        if base is None:
            raise ChartingError("no baseline yet: the discharge check needs an infusion start")
        now = now or self.clock.now()
        with self._lock:
            nibp = self._nibp.latest_us(to_us(now) + 1)
        current = latest(self._entries)
        return checks.discharge_check(base, self._recent(now), nibp,
                                      _last_score(current, "rass"),
                                      _last_score(current, "dissociation"), now)

    # -- phases ------------------------------------------------------------------------------
    def check_in(self, *, patient_id: str, patient_name: str, birth_date: date | str,
                 weight_kg: float, dose_mg_per_kg: float, planned_minutes: int, attending: str,
                 nurse: str, by: str) -> CheckIn:
        """Identify the patient and the plan; this starts the session's chart."""
        by = self._who(by, _ACTIONS[Phase.CHECK_IN])
        self._refuse_if_signed()
        if self.state is not None:
            raise ChartingError("the patient is already checked in; amend the check-in "
                                "(with a reason) to correct it")
        now = self.clock.now()
        fields = validate.check_in_fields({
            "patient_id": patient_id, "patient_name": patient_name, "birth_date": birth_date,
            "weight_kg": weight_kg, "dose_mg_per_kg": dose_mg_per_kg,
            "planned_minutes": planned_minutes, "attending": attending, "nurse": nurse,
        }, now.date())
        by = validate.text(by, "who")
        entry, marker = self.store.add_check_in(self.session_id, **fields, entered=now, by=by,
                                                with_marker=True)
        self._check_ins.append(entry)
        self._written(entry)
        if marker is not None:
            self._markers.append(marker)
            self._written(marker)
        return entry

    def amend_check_in(self, *, by: str, reason: str, **changes: object) -> CheckIn:
        """Re-state the check-in with some fields changed; the earlier version stays."""
        by = self._who(by, "amend the check-in")
        current = self.check_in_details()
        if current is None:
            raise ChartingError("there is no check-in to amend; check the patient in first")
        unknown = set(changes) - set(validate.CHECK_IN_FIELDS)
        if unknown:
            raise ChartingError(f"cannot amend {', '.join(sorted(unknown))}; "
                                f"the check-in has {', '.join(validate.CHECK_IN_FIELDS)}")
        now = self.clock.now()
        merged = {f: getattr(current, f) for f in validate.CHECK_IN_FIELDS} | changes
        fields = validate.check_in_fields(merged, now.date())
        by, reason = validate.text(by, "who"), validate.reason(reason)
        entry, _ = self.store.add_check_in(self.session_id, **fields, entered=now, by=by,
                                           amends_id=current.id, reason=reason)
        self._check_ins.append(entry)
        self._written(entry)
        return entry

    def start_baseline(self, by: str) -> PhaseMarker:
        return self._advance(Phase.BASELINE, self._who(by, _ACTIONS[Phase.BASELINE]))

    def start_infusion(self, by: str) -> Advisory | None:
        """Start the infusion (needs a baseline NIBP and stable SpO2/HR); stores the baseline.

        Returns a low-priority advisory when the baseline BP is above 140/90: the attending
        decides; it is not a refusal.
        """
        by = self._who(by, _ACTIONS[Phase.INFUSION])
        self._require(Phase.INFUSION)
        by = validate.text(by, "who")
        now = self.clock.now()
        base = self.assess_baseline(now)
        if not base.ready:
            raise ChartingError("cannot start the infusion: " + "; ".join(base.problems))
        self._advance(Phase.INFUSION, by, {"baseline": base.to_detail()}, now)
        if base.bp_high and base.nibp is not None:
            return Advisory("baseline_bp_high", "low",
                            f"baseline BP {base.nibp.sys:g}/{base.nibp.dia:g} is above 140/90: "
                            "the attending decides whether to proceed", now)
        return None

    def end_infusion(self, by: str) -> PhaseMarker:
        return self._advance(Phase.OBSERVATION, self._who(by, _ACTIONS[Phase.OBSERVATION]))

    def discharge(self, by: str, reason: str | None = None) -> DischargeCheck:
        """Discharge after the check; any unmet criterion needs a reason, stored with it."""
        by = self._who(by, _ACTIONS[Phase.DISCHARGED])
        self._require(Phase.DISCHARGED)
        by = validate.text(by, "who")
        reason = None if reason is None or not reason.strip() else validate.reason(reason)
        now = self.clock.now()
        result = self.discharge_check(now)
        if not result.all_met and reason is None:
            raise ChartingError(
                "discharge criteria not met: " + "; ".join(i.text for i in result.unmet)
                + ". Wait, or enter a reason to discharge anyway")
        self._advance(Phase.DISCHARGED, by, {"check": result.to_detail(), "reason": reason}, now)
        return result

    def close(self, by: str) -> PhaseMarker:
        return self._advance(Phase.CLOSED, self._who(by, _ACTIONS[Phase.CLOSED]))

    def undo_phase(self, marker_id: int, by: str, reason: str) -> PhaseMarker:
        """Undo the latest phase marker by an amendment that voids it (both stay visible)."""
        by = self._who(by, "undo a phase")
        self._refuse_if_signed()
        effective = self._effective()
        if not effective or effective[-1].id != marker_id:
            known = any(m.id == marker_id for m in self._markers)
            raise ChartingError(
                f"only the latest phase marker can be undone (marker {effective[-1].id}, "
                f"{effective[-1].phase.label}); undo that one first" if known and effective
                else f"no phase marker {marker_id} in force in this session")
        target = effective[-1]
        if target.phase is Phase.CHECK_IN:
            raise ChartingError("the check-in cannot be undone; amend the check-in instead")
        if target.phase is Phase.INFUSION and self._entries:
            raise ChartingError("minutes are already charted from this infusion start, so it "
                                "cannot be undone; add a note explaining the error")
        by, reason = validate.text(by, "who"), validate.reason(reason)
        now = self.clock.now()
        row = self.store.add_marker(self.session_id, phase=target.phase, t=target.t,
                                    voided=True, entered=now, by=by, amends_id=target.id,
                                    reason=reason)
        self._markers.append(row)
        self._written(row)
        self._aggregator = None
        return row

    # -- charting ----------------------------------------------------------------------------
    def current_minute(self, now: datetime | None = None) -> int | None:
        """The minute in progress during infusion and observation, else None."""
        start = self.infusion_start
        if start is None or self.state not in (Phase.INFUSION, Phase.OBSERVATION):
            return None
        return minute_of(start, now or self.clock.now())

    # -- views -------------------------------------------------------------------------------
    def minute_rows(self, now: datetime | None = None) -> list[MinuteRow]:
        """The minute log from infusion start to discharge (or now), one row per minute."""
        start = self.infusion_start
        if start is None:
            return []
        end = self._rows_end(now or self.clock.now())
        with self._lock:
            vitals = self._minutes(start).vitals(end)
        return join_minutes(vitals, self._entries, self._notes)

    def unassessed_streak(self, now: datetime | None = None) -> int:
        """Finished minutes in a row without an entry (0 outside infusion and observation)."""
        now = now or self.clock.now()
        minute = self.current_minute(now)
        return 0 if minute is None else unassessed_streak(self.minute_rows(now), minute)

    def rems_summary(self, now: datetime | None = None) -> RemsSummary:
        """The REMS monitoring items (definitions in session/checks.py)."""
        start = self.infusion_start
        end = self._chart_end(now or self.clock.now()) if start else None
        with self._lock:
            measurements = self._nibp.measurements()
            readings = list(self._readings)
        discharged = self.marker(Phase.DISCHARGED)
        return checks.summarise_rems(
            baseline=self.baseline(), start=start, end=end, measurements=measurements,
            entries=latest(self._entries), readings=readings,
            discharge=None if discharged is None else DischargeCheck.from_detail(
                discharged.detail["check"]),
            discharged_at=None if discharged is None else discharged.t,
        )

    # -- internals ---------------------------------------------------------------------------
    def _effective(self) -> list[PhaseMarker]:
        voided = {m.amends_id for m in self._markers if m.voided}
        return [m for m in self._markers if not m.voided and m.id not in voided]

    def _require(self, to: Phase) -> None:
        """Refuse a phase change that is out of order, or on a signed-off session."""
        self._refuse_if_signed()
        state, previous = self.state, ORDER[ORDER.index(to) - 1]
        if state is previous:
            return
        if state is None:
            raise ChartingError(f"cannot {_ACTIONS[to]}: check the patient in first")
        if ORDER.index(state) < ORDER.index(previous):
            nxt = ORDER[ORDER.index(state) + 1]
            raise ChartingError(f"cannot {_ACTIONS[to]} yet: the session is in "
                                f"{state.label}; first {_ACTIONS[nxt]}")
        raise ChartingError(f"cannot {_ACTIONS[to]}: the session is already {state.label}; "
                            "undo that phase (with a reason) if it was a mistake")

    def _advance(self, to: Phase, by: str, detail: dict[str, object] | None = None,
                 now: datetime | None = None) -> PhaseMarker:
        self._require(to)
        by = validate.text(by, "who")
        now = now or self.clock.now()
        marker = self.store.add_marker(self.session_id, phase=to, t=now, detail=detail,
                                       entered=now, by=by)
        self._markers.append(marker)
        self._written(marker)
        return marker

    def _rows_end(self, now: datetime) -> datetime:
        """Where the minute log ends: at discharge, else just after now (so the minute in
        progress has its row even in its first microsecond)."""
        discharged = self.discharged_at
        return min(now, discharged) if discharged is not None else now + _TICK

    def _chart_end(self, now: datetime) -> datetime:
        discharged = self.discharged_at
        return min(now, discharged) if discharged is not None else now

    def _minutes(self, start: datetime) -> MinuteAggregator:
        """The aggregator for this infusion start (rebuilt if the start changed); under lock."""
        if self._aggregator is None or self._aggregator.start != start:
            self._aggregator = MinuteAggregator(start)
            self._aggregator.add(self._readings)
        return self._aggregator

    def _recent(self, now: datetime) -> list[Reading]:
        """Readings of the last STABLE_WINDOW_S seconds up to and including ``now``."""
        with self._lock:
            lo = bisect.bisect_left(self._times, to_us(now) - checks.STABLE_WINDOW_S * 1_000_000)
            hi = bisect.bisect_right(self._times, to_us(now))
            return self._readings[lo:hi]


def _last_score(entries: Sequence[MinuteEntry], name: str) -> tuple[int, int] | None:
    """(minute, score) of the latest-charted minute that has this score."""
    scored = [(e.minute, getattr(e, name)) for e in entries if getattr(e, name) is not None]
    return max(scored, default=None)
