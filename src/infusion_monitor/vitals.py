"""The vocabulary of vital signs, the values the devices send, and how they are judged."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime


class Vital(enum.StrEnum):
    """A measured parameter. The value is the name used in the DB, CSV, code and UI."""

    HR = "hr"
    PR = "pr"
    SPO2 = "spo2"
    NIBP_SYS = "nibp_sys"
    NIBP_DIA = "nibp_dia"
    NIBP_MEAN = "nibp_mean"
    RR = "rr"
    PI = "pi"  # perfusion index (Masimo, Nonin)
    PVI = "pvi"  # pleth variability index (Masimo Radical-7)


@dataclass(frozen=True, slots=True)
class VitalSpec:
    """Display and export facts for one parameter (codes from clinical.md)."""

    vital: Vital
    label: str
    unit: str  # as shown and stored
    ucum: str  # UCUM unit for FHIR
    loinc: str
    mdc_code: int
    mdc_name: str


SPECS: dict[Vital, VitalSpec] = {
    s.vital: s
    for s in (
        VitalSpec(Vital.HR, "HR", "/min", "/min", "8867-4", 147842, "MDC_ECG_HEART_RATE"),
        VitalSpec(Vital.PR, "PR", "/min", "/min", "8867-4", 149530, "MDC_PULS_OXIM_PULS_RATE"),
        VitalSpec(Vital.SPO2, "SpO2", "%", "%", "2708-6", 150456, "MDC_PULS_OXIM_SAT_O2"),
        VitalSpec(
            Vital.NIBP_SYS, "NIBP sys", "mmHg", "mm[Hg]", "8480-6", 150021,
            "MDC_PRESS_BLD_NONINV_SYS",
        ),
        VitalSpec(
            Vital.NIBP_DIA, "NIBP dia", "mmHg", "mm[Hg]", "8462-4", 150022,
            "MDC_PRESS_BLD_NONINV_DIA",
        ),
        VitalSpec(
            Vital.NIBP_MEAN, "NIBP mean", "mmHg", "mm[Hg]", "8478-0", 150023,
            "MDC_PRESS_BLD_NONINV_MEAN",
        ),
        VitalSpec(Vital.RR, "RR", "/min", "/min", "9279-1", 151562, "MDC_RESP_RATE"),
        VitalSpec(Vital.PI, "PI", "%", "%", "61006-3", 150448, "MDC_PULS_OXIM_PERF_REL"),
        # PVI is Masimo's own index: no LOINC or MDC code; exports use the local code system.
        VitalSpec(Vital.PVI, "PVI", "%", "%", "", 0, ""),
    )
}

NIBP = (Vital.NIBP_SYS, Vital.NIBP_DIA, Vital.NIBP_MEAN)


def unit_of(vital: Vital) -> str:
    return SPECS[vital].unit


class Quality(enum.StrEnum):
    """How far a stored value can be trusted. Stored as text in the DB and CSV."""

    OK = "ok"
    ARTIFACT = "artifact"  # outside the physiologically possible range (clinical.md)
    QUESTIONABLE = "questionable"  # the device itself marked it doubtful
    DEMO = "demo"  # the device is in demo/test mode: never a patient's data


@dataclass(frozen=True, slots=True)
class Reading:
    """One value a device sent.

    ``t_device`` is the monitor's own timestamp when the protocol carries one. ``t_received`` is
    stamped by the recorder from the injected clock (for an import it is the device time).
    """

    vital: Vital
    value: float
    quality: Quality = Quality.OK
    t_device: datetime | None = None
    t_received: datetime | None = None

    @property
    def unit(self) -> str:
        return unit_of(self.vital)

    @property
    def time(self) -> datetime:
        """The best time for this value: the receipt time, else the device time."""
        t = self.t_received or self.t_device
        if t is None:
            raise ValueError("reading has no time yet")
        return t


# Physiologically possible ranges; outside them a value is an artifact (clinical.md).
_POSSIBLE: dict[Vital, tuple[float, float]] = {
    Vital.HR: (15, 300),
    Vital.PR: (15, 300),
    Vital.SPO2: (0, 100),
    Vital.NIBP_SYS: (10, 350),
    Vital.NIBP_DIA: (5, 300),
    Vital.NIBP_MEAN: (5, 320),
    Vital.RR: (0, 150),
    Vital.PI: (0, 20),
    Vital.PVI: (0, 100),
}


def is_possible(vital: Vital, value: float) -> bool:
    lo, hi = _POSSIBLE[vital]
    return math.isfinite(value) and lo <= value <= hi


def mark_artifacts(readings: Iterable[Reading]) -> list[Reading]:
    """Mark values that cannot be physiological as artifacts; a pure function over one frame.

    A value outside its possible range is an artifact. An NIBP measurement (sys, dia, mean sent
    together) with sys <= dia, or a mean outside dia..sys, is an artifact as a whole.
    """
    out = [
        r if r.quality is not Quality.OK or is_possible(r.vital, r.value)
        else replace(r, quality=Quality.ARTIFACT)
        for r in readings
    ]
    nibp = {r.vital: r for r in out if r.vital in NIBP}
    sys_, dia, mean = (nibp.get(v) for v in NIBP)
    bad = False
    if sys_ is not None and dia is not None and sys_.value <= dia.value:
        bad = True
    if (
        mean is not None and sys_ is not None and dia is not None
        and not (dia.value <= mean.value <= sys_.value)
    ):
        bad = True
    if bad:
        out = [
            replace(r, quality=Quality.ARTIFACT)
            if r.vital in NIBP and r.quality is Quality.OK else r
            for r in out
        ]
    return out
