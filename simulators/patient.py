"""A simulated ketamine-infusion patient and the named scenarios the tests and demos replay.

Pure: no I/O and no wall time. ``PatientModel(scenario, seed).sample(t)`` is a function of
(scenario, seed, whole seconds of ``t``) only, so any frame can be rebuilt in any order.

Session timeline, the same for every scenario (t = simulated seconds from session start):

====================  ==============  ==========================================================
phase                 t (s)           what happens
====================  ==============  ==========================================================
baseline              0 – 300         HR ~72, SpO2 97–99, BP ~122/78
infusion              300 – 2700      40 min; BP rises to +16/+11 mmHg at 35 min (t = 2400)
observation           2700 – 4500     BP and HR return to baseline by t = 4200
====================  ==============  ==========================================================

NIBP: a measurement starts at t = 60 and every 300 s after (60, 360, ..., 4260). It takes 30 s,
during which the monitor's "measuring" flag is set and it keeps showing the previous result. The
new result is shown from ``start + 30`` (e.g. the 31-min measurement starting at 2160 is displayed
from 2190) until the next result replaces it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

BASELINE_END = 300
INFUSION_END = 2700
DEFAULT_DURATION = 4500

NIBP_FIRST = 60
NIBP_EVERY = 300
NIBP_TAKES = 30

BASE_HR = 72
BASE_SPO2 = 98
BASE_SYS = 122
BASE_DIA = 78
PEAK_AT = 2400  # 35 min after infusion start (clinical.md: BP peaks at 30–40 min)
RECOVERED_AT = 4200
PEAK_SYS = 16
PEAK_DIA = 11
PEAK_HR = 4


@dataclass(frozen=True, slots=True)
class NibpResult:
    """One finished NIBP measurement; ``started`` identifies it (its cuff inflation time)."""

    started: int
    sys: int
    dia: int
    mean: int


@dataclass(frozen=True, slots=True)
class Sample:
    """What the monitor displays at one simulated second. ``None`` = no valid value (probe off)."""

    t: int
    hr: int | None
    pr: int | None
    spo2: int | None
    nibp: NibpResult | None  # the last finished measurement, repeated as the S/5 does
    nibp_measuring: bool


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """A documented scenario event over [t_start, t_end) simulated seconds.

    ``kind`` says what an alarm engine should make of it: ``medium`` / ``high`` (a physiological
    breach of that priority), ``below-delay`` (a breach shorter than its condition delay: no
    alarm), ``artifact`` (no physiological alarm), ``probe-off`` (technical only), ``unplug``.
    """

    t_start: int
    t_end: int
    kind: str
    vital: str | None
    description: str


@dataclass(frozen=True, slots=True)
class Override:
    """Replace one continuous vital over [t_start, t_end): ``value`` ± ``jitter``, or invalid."""

    t_start: int
    t_end: int
    vital: str  # "hr", "pr" or "spo2"
    value: int | None
    jitter: int = 0


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named session: the typical physiology plus overrides, documented by ``timeline``."""

    name: str
    summary: str
    timeline: tuple[TimelineEvent, ...] = ()
    overrides: tuple[Override, ...] = ()
    # measurement start time -> (sys, dia); the mean is computed as the monitor would
    nibp_results: Mapping[int, tuple[int, int]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    unplugged: tuple[tuple[int, int], ...] = ()  # [start, end) with the cable pulled


def mean_pressure(sys: int, dia: int) -> int:
    """MAP = dia + (sys − dia)/3, rounded half up."""
    return math.floor(dia + (sys - dia) / 3 + 0.5)


def nibp_starts(duration: float) -> list[int]:
    """Start times of every NIBP measurement before ``duration``."""
    return list(range(NIBP_FIRST, math.ceil(duration), NIBP_EVERY))


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def ketamine_effect(t: float) -> float:
    """0 before the infusion, rising smoothly to 1 at PEAK_AT, back to 0 by RECOVERED_AT."""
    if t <= PEAK_AT:
        return _smoothstep((t - BASELINE_END) / (PEAK_AT - BASELINE_END))
    return 1.0 - _smoothstep((t - PEAK_AT) / (RECOVERED_AT - PEAK_AT))


class PatientModel:
    """The vitals one scenario produces; deterministic per (scenario, seed)."""

    def __init__(self, scenario: Scenario | str = "typical", seed: int = 0) -> None:
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.seed = seed

    def _noise(self, channel: str, t: int, spread: int) -> int:
        # Seeding with a string is stable across processes (str hashes are not).
        if spread == 0:
            return 0
        rng = random.Random(f"{self.seed}:{self.scenario.name}:{channel}:{t}")
        return rng.randint(-spread, spread)

    def nibp_result(self, started: int) -> NibpResult:
        """The result of the measurement started at ``started`` (scenario value or typical)."""
        fixed = self.scenario.nibp_results.get(started)
        if fixed is not None:
            sys, dia = fixed
        else:
            effect = ketamine_effect(started + NIBP_TAKES)
            sys = round(BASE_SYS + PEAK_SYS * effect) + self._noise("sys", started, 2)
            dia = round(BASE_DIA + PEAK_DIA * effect) + self._noise("dia", started, 2)
        return NibpResult(started, sys, dia, mean_pressure(sys, dia))

    def sample(self, t: float) -> Sample:
        """What the monitor shows at simulated time ``t`` (whole seconds are used)."""
        ts = math.floor(t)
        effect = ketamine_effect(ts)
        hr = round(BASE_HR + PEAK_HR * effect) + self._noise("hr", ts, 2)
        values: dict[str, int | None] = {
            "hr": hr,
            "pr": hr + self._noise("pr", ts, 1),
            "spo2": min(100, BASE_SPO2 + self._noise("spo2", ts, 1)),
        }
        for o in self.scenario.overrides:
            if o.t_start <= ts < o.t_end:
                values[o.vital] = (
                    None if o.value is None
                    else o.value + self._noise(f"{o.vital}-override", ts, o.jitter)
                )
        nibp: NibpResult | None = None
        measuring = False
        if ts >= NIBP_FIRST:
            current = NIBP_FIRST + (ts - NIBP_FIRST) // NIBP_EVERY * NIBP_EVERY
            measuring = ts < current + NIBP_TAKES
            shown = current - NIBP_EVERY if measuring else current
            nibp = self.nibp_result(shown) if shown >= NIBP_FIRST else None
        return Sample(ts, values["hr"], values["pr"], values["spo2"], nibp, measuring)

    def is_unplugged(self, t: float) -> bool:
        """True while the scenario has the cable pulled."""
        return any(a <= t < b for a, b in self.scenario.unplugged)


TYPICAL = Scenario(
    "typical",
    "An uneventful session: BP +16/+11 at 35 min, HR +4, SpO2 97–99; no threshold breach.",
)

HYPERTENSIVE = Scenario(
    "hypertensive",
    "Hypertension at the 31- and 36-min NIBP (medium, then severe), below limits again after.",
    timeline=(
        TimelineEvent(
            2190, 2490, "medium", "nibp_sys",
            "NIBP 184/112 (started 2160, shown 2190): SBP >= 180 and DBP >= 110",
        ),
        TimelineEvent(
            2490, 2790, "high", "nibp_sys",
            "NIBP 202/121 (started 2460, shown 2490): SBP >= 200 and DBP >= 120",
        ),
    ),
    # 1860, 2760 and 3060 are raised but under the limits.
    nibp_results=MappingProxyType(
        {1860: (166, 101), 2160: (184, 112), 2460: (202, 121), 2760: (174, 106),
         3060: (154, 95)}
    ),
)

DESATURATION = Scenario(
    "desaturation",
    "SpO2 < 92 for 40 s (medium), < 88 for 30 s (high), and an 8-s dip below 92 (no alarm).",
    timeline=(
        TimelineEvent(1200, 1240, "medium", "spo2", "SpO2 89–91 for 40 s (> 15 s delay)"),
        TimelineEvent(1800, 1830, "high", "spo2", "SpO2 84–86 for 30 s (> 10 s delay)"),
        TimelineEvent(2100, 2108, "below-delay", "spo2", "SpO2 90 for 8 s (< 15 s delay)"),
    ),
    overrides=(
        Override(1200, 1240, "spo2", 90, jitter=1),
        Override(1800, 1830, "spo2", 85, jitter=1),
        Override(2100, 2108, "spo2", 90),
    ),
)

ARTIFACT = Scenario(
    "artifact",
    "Impossible values and probe-off stretches; must raise no physiological alarm.",
    timeline=(
        TimelineEvent(900, 920, "artifact", "hr", "HR 320 for 20 s (> 300: impossible)"),
        TimelineEvent(1200, 1220, "probe-off", "spo2", "SpO2 and PR invalid for 20 s"),
        TimelineEvent(1500, 1520, "artifact", "hr", "HR 10 for 20 s (< 15: impossible)"),
        TimelineEvent(
            1590, 1890, "artifact", "nibp_sys",
            "NIBP 96/98 (started 1560, shown 1590): sys <= dia",
        ),
        TimelineEvent(2000, 2020, "probe-off", "spo2", "SpO2 and PR invalid for 20 s"),
    ),
    overrides=(
        Override(900, 920, "hr", 320),
        Override(1200, 1220, "spo2", None),
        Override(1200, 1220, "pr", None),
        Override(1500, 1520, "hr", 10),
        Override(2000, 2020, "spo2", None),
        Override(2000, 2020, "pr", None),
    ),
    nibp_results=MappingProxyType({1560: (96, 98)}),
)

UNPLUG = Scenario(
    "unplug",
    "Typical physiology; the cable is pulled at t = 900 for 60 s, then plugged back in.",
    timeline=(TimelineEvent(900, 960, "unplug", None, "cable pulled: no bytes, port gone"),),
    unplugged=((900, 960),),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (TYPICAL, HYPERTENSIVE, DESATURATION, ARTIFACT, UNPLUG)
}


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; ``KeyError`` lists the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
