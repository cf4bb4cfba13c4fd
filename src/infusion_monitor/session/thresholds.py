"""Alarm conditions and their limits: the clinic defaults of clinical.md, per-patient overrides.

A limit is a number a condition compares a value with. The defaults are clinical.md's "Threshold
defaults"; the clinic's settings file may change them (``[thresholds]``), and a clinician may
override one for a patient before the infusion starts. Every change is kept as a ``LimitChange``
(who, when, old -> new, why) for the audit log. Delays and priorities are fixed here: they are
the safety behaviour of IEC 60601-1-8 monitors, not a per-patient choice.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from infusion_monitor.errors import ChartingError
from infusion_monitor.session.phases import Phase
from infusion_monitor.vitals import SPECS, Vital, is_possible


class Priority(enum.StrEnum):
    """How urgent an alarm is (IEC 60601-1-8). Technical alarms have one too."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def marker(self) -> str:
        """Priority shown by symbol as well as colour (clinical.md)."""
        return "*" * _RANK[self]


_RANK = {Priority.HIGH: 3, Priority.MEDIUM: 2, Priority.LOW: 1}


class Kind(enum.StrEnum):
    """How a condition is judged."""

    CONTINUOUS = "continuous"  # a stream (SpO2, HR, RR): the breach must outlast the delay
    DISCRETE = "discrete"  # one measurement or entry (NIBP, RASS): judged at once
    TECHNICAL = "technical"  # about the equipment, not the patient


_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
_SYMBOLS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}

#: Scores charted by the nurse; not vitals, so they have their own labels and ranges.
SCORE_RANGES = {"rass": (-5, 4), "distress": (0, 2)}
_SCORE_LABELS = {"rass": "RASS", "distress": "Distress"}


@dataclass(frozen=True, slots=True)
class AlarmCondition:
    """One alarm condition: ``parameter op limit`` for ``delay_s`` raises ``priority``."""

    name: str
    parameter: str | None  # a Vital value, "rass" or "distress"; None for link/storage
    op: str  # "<", "<=", ">" or ">="; "" for technical conditions
    limit: float | None
    delay_s: float
    priority: Priority
    kind: Kind
    label: str
    notify_attending: bool = False  # medium/high BP breaches put the attending flag up
    before_infusion_only: bool = False  # the pre-start BP check
    supersedes: str | None = None  # the milder condition this one outranks on the display

    @property
    def technical(self) -> bool:
        return self.kind is Kind.TECHNICAL

    @property
    def latching(self) -> bool:
        """High-priority physiological alarms latch until acknowledged (clinical.md)."""
        return self.priority is Priority.HIGH and not self.technical

    def breached(self, value: float) -> bool:
        if self.limit is None:
            return False
        return _OPS[self.op](float(value), float(self.limit))

    def describe(self, value: float) -> str:
        """The value against the limit, as the display shows it: ``SpO2 87 < 88``."""
        return f"{parameter_label(self.parameter)} {number(value)} {_SYMBOLS[self.op]} " \
               f"{number(self.limit or 0)}"


def number(value: float) -> str:
    """78 not 78.0; 97.5 stays 97.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def parameter_label(parameter: str | None) -> str:
    if parameter is None:
        return ""
    if parameter in _SCORE_LABELS:
        return _SCORE_LABELS[parameter]
    return SPECS[Vital(parameter)].label


def _c(name: str, parameter: str, op: str, limit: float, delay: float, priority: Priority,
       kind: Kind, label: str, *, notify_attending: bool = False,
       before_infusion_only: bool = False, supersedes: str | None = None) -> AlarmCondition:
    return AlarmCondition(name, parameter, op, limit, delay, priority, kind, label,
                          notify_attending, before_infusion_only, supersedes)


H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW
C, D, T = Kind.CONTINUOUS, Kind.DISCRETE, Kind.TECHNICAL

#: clinical.md "Threshold defaults", in display order.
DEFAULT_CONDITIONS: tuple[AlarmCondition, ...] = (
    _c("spo2_low", "spo2", "<", 92, 15, M, C, "SpO2 low"),
    _c("spo2_low_severe", "spo2", "<", 88, 10, H, C, "SpO2 low, severe", supersedes="spo2_low"),
    _c("hr_low", "hr", "<", 50, 15, M, C, "HR low"),
    _c("hr_high", "hr", ">", 110, 15, M, C, "HR high"),
    _c("hr_low_severe", "hr", "<", 40, 10, H, C, "HR low, severe", supersedes="hr_low"),
    _c("hr_high_severe", "hr", ">", 130, 10, H, C, "HR high, severe", supersedes="hr_high"),
    _c("sbp_high", "nibp_sys", ">=", 180, 0, M, D, "SBP high", notify_attending=True),
    _c("dbp_high", "nibp_dia", ">=", 110, 0, M, D, "DBP high", notify_attending=True),
    _c("sbp_high_severe", "nibp_sys", ">=", 200, 0, H, D, "SBP high, severe",
       notify_attending=True, supersedes="sbp_high"),
    _c("dbp_high_severe", "nibp_dia", ">=", 120, 0, H, D, "DBP high, severe",
       notify_attending=True, supersedes="dbp_high"),
    _c("sbp_low", "nibp_sys", "<", 90, 0, M, D, "SBP low", notify_attending=True),
    _c("prestart_sbp_high", "nibp_sys", ">", 140, 0, L, D, "Pre-start SBP high",
       before_infusion_only=True),
    _c("prestart_dbp_high", "nibp_dia", ">", 90, 0, L, D, "Pre-start DBP high",
       before_infusion_only=True),
    _c("rr_low", "rr", "<", 10, 30, M, C, "RR low"),
    _c("rr_high", "rr", ">", 30, 30, M, C, "RR high"),
    _c("rass_deep", "rass", "<=", -3, 0, H, D, "Deep sedation (RASS)"),
    _c("agitation", "rass", ">=", 2, 0, M, D, "Agitation (RASS)"),
    _c("distress", "distress", ">=", 2, 0, M, D, "Marked distress"),
)

#: Conditions that are not limits a clinic sets, so not in a profile's overridable set.
TECHNICAL_CONDITIONS: dict[str, AlarmCondition] = {
    c.name: c for c in (
        AlarmCondition("link_lost", None, "", None, 10, H, T, "Monitor link lost"),
        AlarmCondition("signal_lost", None, "", None, 15, M, T, "No valid value (probe off?)"),
        AlarmCondition("nibp_overdue", "nibp_sys", "", None, 120, L, T, "NIBP overdue"),
        # A reminder about the chart, not the equipment: exported as "low" (clinical.md).
        AlarmCondition("charting_overdue", None, "", None, 0, L, D, "Minutes not charted"),
        AlarmCondition("storage_failing", None, "", None, 0, H, T, "Saving fails"),
        AlarmCondition("storage_overflow", None, "", None, 0, H, T, "Readings lost: not saved"),
    )
}
#: signal_lost becomes high priority once the value has been missing this long.
SIGNAL_LOST_HIGH_AFTER_S = 60.0
#: The attending flag is kept in the alarm log under this condition name.
NOTIFY_ATTENDING = "notify_attending"

CONDITION_NAMES = tuple(c.name for c in DEFAULT_CONDITIONS)

# limit(a) < limit(b) must hold, or the conditions make no sense together.
_ORDER = (
    ("spo2_low_severe", "spo2_low"), ("hr_low_severe", "hr_low"), ("hr_low", "hr_high"),
    ("hr_high", "hr_high_severe"), ("rr_low", "rr_high"), ("sbp_low", "sbp_high"),
    ("sbp_high", "sbp_high_severe"), ("dbp_high", "dbp_high_severe"), ("rass_deep", "agitation"),
)

#: Once the infusion has started, limits are fixed (issue 4).
_STARTED = (Phase.INFUSION, Phase.OBSERVATION, Phase.DISCHARGED, Phase.CLOSED)


def limit_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the limit of condition ``name``; None if it can."""
    if name not in CONDITION_NAMES:
        return f"unknown alarm condition {name!r} (known: {', '.join(CONDITION_NAMES)})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {value!r}"
    cond = _DEFAULTS[name]
    assert cond.parameter is not None
    if cond.parameter in SCORE_RANGES:
        lo, hi = SCORE_RANGES[cond.parameter]
        if not (math.isfinite(value) and lo <= value <= hi):
            return f"{name} must be between {lo} and {hi}, not {value!r}"
    elif not is_possible(Vital(cond.parameter), float(value)):
        return f"{name} = {value!r} is not a possible {parameter_label(cond.parameter)} value"
    return None


def order_problem(limits: Mapping[str, float]) -> str | None:
    """A severe limit that is milder than its non-severe one, or a low limit above a high one."""
    for a, b in _ORDER:
        if not limits[a] < limits[b]:
            return f"{a} ({number(limits[a])}) must stay below {b} ({number(limits[b])})"
    return None


_DEFAULTS = {c.name: c for c in DEFAULT_CONDITIONS}


@dataclass(frozen=True, slots=True)
class LimitChange:
    """One change of a limit, for the audit log (``limit_changes``)."""

    condition: str
    old_value: float | None
    new_value: float | None
    by: str
    reason: str
    time: datetime | None = None  # None: a clinic setting, stamped when a session starts


class ThresholdProfile:
    """The limits in force for one patient: defaults, then the clinic file, then overrides."""

    def __init__(self) -> None:
        self._limits: dict[str, float] = {c.name: float(c.limit or 0) for c in DEFAULT_CONDITIONS}
        self.changes: list[LimitChange] = []

    @classmethod
    def defaults(cls) -> ThresholdProfile:
        """clinical.md's defaults, unchanged."""
        return cls()

    @classmethod
    def from_settings(cls, thresholds: Mapping[str, float], source: str,
                      sources: Mapping[str, str] | None = None) -> ThresholdProfile:
        """Defaults changed by a clinic's ``[thresholds]`` (already type-checked by config).

        Each difference from the default is kept as a change by "clinic settings", its reason
        the settings file ``source`` or, per limit, ``sources`` (a clinic default: who set it).
        """
        profile = cls()
        for name, value in thresholds.items():
            problem = limit_problem(name, value)
            if problem is not None:
                raise ChartingError(f"{problem} ({source})")
            old = profile._limits[name]
            if float(value) != old:
                profile._limits[name] = float(value)
                why = (sources or {}).get(name, f"settings file {source}")
                profile.changes.append(LimitChange(name, old, float(value), "clinic settings",
                                                   why))
        problem = order_problem(profile._limits)
        if problem is not None:
            raise ChartingError(f"{problem} ({source})")
        return profile

    def limit(self, name: str) -> float:
        return self._limits[name]

    def limits(self) -> dict[str, float]:
        return dict(self._limits)

    def condition(self, name: str) -> AlarmCondition:
        """The condition with the limit in force; technical ones as defined."""
        if name in TECHNICAL_CONDITIONS:
            return TECHNICAL_CONDITIONS[name]
        return replace(_DEFAULTS[name], limit=self._limits[name])

    def conditions(self) -> tuple[AlarmCondition, ...]:
        return tuple(self.condition(c.name) for c in DEFAULT_CONDITIONS)

    def override(
        self, condition: str, new_limit: float, *, by: str, reason: str, phase: Phase | None,
        now: datetime,
    ) -> LimitChange:
        """Change one limit for this patient; refused once the infusion has started."""
        change = self.check_override(condition, new_limit, by=by, reason=reason, phase=phase,
                                     now=now)
        self.apply(change)
        return change

    def check_override(
        self, condition: str, new_limit: float, *, by: str, reason: str, phase: Phase | None,
        now: datetime,
    ) -> LimitChange:
        """The change an override would make, or ChartingError saying why it is refused."""
        if phase in _STARTED:
            raise ChartingError(
                f"alarm limits cannot be changed after infusion start (phase: {phase.label}); "
                "the limits in force stay as they were"
            )
        if not by.strip():
            raise ChartingError("say who changes the limit")
        if not reason.strip():
            raise ChartingError(f"give a reason for changing {condition}")
        problem = limit_problem(condition, new_limit)
        if problem is not None:
            raise ChartingError(problem)
        problem = order_problem({**self._limits, condition: float(new_limit)})
        if problem is not None:
            raise ChartingError(problem)
        return LimitChange(condition, self._limits[condition], float(new_limit), by.strip(),
                           reason.strip(), now)

    def apply(self, change: LimitChange) -> None:
        """Put a checked change in force and keep it."""
        self._limits[change.condition] = float(change.new_value)  # type: ignore[arg-type]
        self.changes.append(change)
