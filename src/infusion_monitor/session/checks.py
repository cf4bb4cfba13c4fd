"""Pure clinical checks: a stable baseline, the discharge criteria and the REMS summary.

Definitions (clinical.md gives the criteria; the numbers below are our reading of them):

- **Stable SpO2/HR**: in the last ``STABLE_WINDOW_S`` seconds at least ``STABLE_MIN_COUNT``
  valid SpO2 and HR values (PR when there is no ECG HR), every SpO2 within ±3 %-points and every
  HR within ±10 /min of that window's median. The baseline values are those medians.
- **Baseline NIBP**: the latest valid NIBP, measured since check-in and not older than 30 min.
- **Discharge**: BP (latest NIBP, at most 15 min old) within ±20 mmHg of baseline for both sys
  and dia; HR (median of the last 60 s) within ±20 % of baseline; SpO2 (median of the last
  60 s) > 92 %; the last charted RASS is 0 and the last charted dissociation is 0.
- **REMS sedation**: any charted RASS ≤ −2 (light sedation or deeper, roughly MOAA/S ≤ 3 as
  used in the esketamine trials); drowsy (−1) alone is not called sedation.
- **REMS dissociation**: any charted dissociation ≥ 1.
- **REMS respiratory depression**: valid SpO2 < 92 % lasting ≥ 15 s (until the next valid value
  ≥ 92) or any valid RR < 10 /min, between infusion start and the end of monitoring.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infusion_monitor.clock import from_us, iso_z, to_us
from infusion_monitor.session.minutes import NibpMeasurement, minute_count
from infusion_monitor.store.charting import MinuteEntry
from infusion_monitor.vitals import Quality, Reading, Vital

STABLE_WINDOW_S = 60
STABLE_MIN_COUNT = 3
STABLE_SPO2_BAND = 3.0
STABLE_HR_BAND = 10.0
BASELINE_NIBP_MAX_AGE_S = 30 * 60
BASELINE_BP_LIMIT = (140, 90)  # Spravato label: consider delaying above this
DISCHARGE_NIBP_MAX_AGE_S = 15 * 60
DISCHARGE_BP_MMHG = 20
DISCHARGE_HR_FRACTION = 0.20
DISCHARGE_SPO2_ABOVE = 92
SEDATION_RASS_AT_MOST = -2
RESP_SPO2_BELOW = 92
RESP_SPO2_MIN_S = 15
RESP_RR_BELOW = 10
REMS_40_MIN = timedelta(minutes=40)
REMS_40_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Advisory:
    """A low-priority, non-modal message for the nurse (baseline BP high, minutes not charted)."""

    code: str  # baseline_bp_high | charting_overdue
    priority: str  # low
    message: str
    t: datetime
    uid: str = ""  # the alarm-log uid when it is recorded there


@dataclass(frozen=True, slots=True)
class Baseline:
    """Baseline vitals as assessed at ``t``; ``problems`` says why they cannot be used yet."""

    t: datetime
    nibp: NibpMeasurement | None
    spo2: float | None
    hr: float | None
    hr_source: Vital | None
    n_spo2: int
    n_hr: int
    problems: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def bp_high(self) -> bool:
        """Above 140/90: a low-priority warning, the attending decides."""
        lim_sys, lim_dia = BASELINE_BP_LIMIT
        return self.nibp is not None and (self.nibp.sys > lim_sys or self.nibp.dia > lim_dia)

    def to_detail(self) -> dict[str, Any]:
        return {
            "t_us": to_us(self.t), "nibp": _nibp_json(self.nibp), "spo2": self.spo2, "hr": self.hr,
            "hr_source": None if self.hr_source is None else str(self.hr_source),
            "n_spo2": self.n_spo2, "n_hr": self.n_hr, "bp_high": self.bp_high,
        }

    @classmethod
    def from_detail(cls, d: dict[str, Any]) -> Baseline:
        return cls(
            t=from_us(d["t_us"]), nibp=_nibp_from_json(d.get("nibp")), spo2=d.get("spo2"),
            hr=d.get("hr"), hr_source=None if d.get("hr_source") is None else Vital(d["hr_source"]),
            n_spo2=int(d.get("n_spo2", 0)), n_hr=int(d.get("n_hr", 0)),
        )


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One discharge criterion: met or not, with the value and the target shown."""

    name: str  # bp | hr | spo2 | rass | dissociation
    label: str
    met: bool
    value: str
    target: str

    @property
    def text(self) -> str:
        return f"{self.label}: {'met' if self.met else 'NOT met'} ({self.value}; {self.target})"


@dataclass(frozen=True, slots=True)
class DischargeCheck:
    """The discharge criteria evaluated at ``t``."""

    t: datetime
    items: tuple[CheckItem, ...]

    @property
    def all_met(self) -> bool:
        return all(i.met for i in self.items)

    @property
    def unmet(self) -> tuple[CheckItem, ...]:
        return tuple(i for i in self.items if not i.met)

    def to_detail(self) -> dict[str, Any]:
        return {"t_us": to_us(self.t), "items": [
            {"name": i.name, "label": i.label, "met": i.met, "value": i.value, "target": i.target}
            for i in self.items
        ]}

    @classmethod
    def from_detail(cls, d: dict[str, Any]) -> DischargeCheck:
        return cls(from_us(d["t_us"]), tuple(CheckItem(**i) for i in d["items"]))


@dataclass(frozen=True, slots=True)
class RemsSummary:
    """What the Spravato REMS Patient Monitoring Form asks, filled from the chart."""

    bp_before_dosing: NibpMeasurement | None
    bp_about_40_min: NibpMeasurement | None
    bp_at_end: NibpMeasurement | None
    vitals_acceptable_before_dosing: bool | None  # baseline BP ≤ 140/90
    vitals_acceptable_before_completion: bool | None  # every discharge criterion met
    sedation: bool
    lowest_rass: int | None
    dissociation: bool
    highest_dissociation: int | None
    respiratory_depression: bool
    respiratory_detail: str
    first_dose: datetime | None
    end_of_monitoring: datetime | None
    ready_to_leave: datetime | None  # the discharge time
    monitored_minutes: int | None  # whole minutes begun, first dose -> end of monitoring


def window(
    readings: Sequence[Reading], vital: Vital, start: datetime, end: datetime
) -> list[float]:
    """Valid values of one vital with ``start <= time < end``."""
    return [r.value for r in readings
            if r.vital is vital and r.quality is Quality.OK and start <= r.time < end]


def assess_baseline(
    recent: Sequence[Reading], nibp: NibpMeasurement | None, since: datetime, now: datetime,
) -> Baseline:
    """Judge whether the baseline is complete from the last minute's readings and the NIBP."""
    start = now - timedelta(seconds=STABLE_WINDOW_S)
    spo2 = window(recent, Vital.SPO2, start, now)
    hr_source = Vital.HR
    hr = window(recent, Vital.HR, start, now)
    if len(hr) < STABLE_MIN_COUNT and (pr := window(recent, Vital.PR, start, now)):
        hr_source, hr = Vital.PR, pr
    problems: list[str] = []
    oldest = max(since, now - timedelta(seconds=BASELINE_NIBP_MAX_AGE_S))
    if nibp is None or nibp.t < oldest:
        problems.append("no baseline NIBP: take a blood pressure (at least one valid NIBP since"
                        f" check-in and within {BASELINE_NIBP_MAX_AGE_S // 60} min)")
        nibp = None
    spo2_med, hr_med = _stable(spo2, STABLE_SPO2_BAND), _stable(hr, STABLE_HR_BAND)
    if spo2_med is None or hr_med is None:
        problems.append(
            f"SpO2/HR not stable yet: need ≥ {STABLE_MIN_COUNT} valid SpO2 and HR values in the"
            f" last {STABLE_WINDOW_S} s within ±{STABLE_SPO2_BAND:g} % and"
            f" ±{STABLE_HR_BAND:g} /min (have {len(spo2)} SpO2, {len(hr)} HR);"
            " check the probe and wait"
        )
    return Baseline(now, nibp, spo2_med, hr_med, hr_source if hr else None, len(spo2), len(hr),
                    tuple(problems))


def _stable(values: list[float], band: float) -> float | None:
    if len(values) < STABLE_MIN_COUNT:
        return None
    med = statistics.median(values)
    return med if all(abs(v - med) <= band for v in values) else None


def discharge_check(
    baseline: Baseline, recent: Sequence[Reading], nibp: NibpMeasurement | None,
    last_rass: tuple[int, int] | None, last_dissociation: tuple[int, int] | None, now: datetime,
) -> DischargeCheck:
    """Evaluate each discharge criterion; ``last_*`` are (minute, score) of the last charted."""
    start = now - timedelta(seconds=STABLE_WINDOW_S)
    items = [_bp_item(baseline.nibp, nibp, now)]
    hr_vital = baseline.hr_source or Vital.HR
    hr = window(recent, hr_vital, start, now)
    if baseline.hr is None or not hr:
        items.append(CheckItem("hr", "HR within ±20 % of baseline", False,
                               "no valid HR in the last 60 s" if not hr else "no baseline HR",
                               "check the probe"))
    else:
        now_hr, lo, hi = statistics.median(hr), baseline.hr * 0.8, baseline.hr * 1.2
        items.append(CheckItem("hr", "HR within ±20 % of baseline", lo <= now_hr <= hi,
                               f"HR {now_hr:g}", f"baseline {baseline.hr:g}: {lo:.0f}–{hi:.0f}"))
    spo2 = window(recent, Vital.SPO2, start, now)
    if spo2:
        med = statistics.median(spo2)
        items.append(CheckItem("spo2", "SpO2 > 92 %", med > DISCHARGE_SPO2_ABOVE,
                               f"SpO2 {med:g}", "above 92 %"))
    else:
        items.append(CheckItem("spo2", "SpO2 > 92 %", False, "no valid SpO2 in the last 60 s",
                               "above 92 %"))
    items.append(_score_item("rass", "RASS 0", last_rass))
    items.append(_score_item("dissociation", "Dissociation 0", last_dissociation))
    return DischargeCheck(now, tuple(items))


def _bp_item(base: NibpMeasurement | None, nibp: NibpMeasurement | None,
             now: datetime) -> CheckItem:
    label = "BP within ±20 mmHg of baseline"
    if base is None:
        return CheckItem("bp", label, False, "no baseline NIBP", "")
    target = f"baseline {base.sys:g}/{base.dia:g} ± {DISCHARGE_BP_MMHG}"
    if nibp is None or (now - nibp.t).total_seconds() > DISCHARGE_NIBP_MAX_AGE_S:
        return CheckItem("bp", label, False,
                         f"no NIBP in the last {DISCHARGE_NIBP_MAX_AGE_S // 60} min", target)
    met = (abs(nibp.sys - base.sys) <= DISCHARGE_BP_MMHG
           and abs(nibp.dia - base.dia) <= DISCHARGE_BP_MMHG)
    age = int((now - nibp.t).total_seconds() // 60)
    return CheckItem("bp", label, met, f"{nibp.sys:g}/{nibp.dia:g} ({age} min ago)", target)


def _score_item(name: str, label: str, last: tuple[int, int] | None) -> CheckItem:
    if last is None:
        return CheckItem(name, label, False, f"{name} never charted", "0 at the last charting")
    minute, score = last
    return CheckItem(name, label, score == 0, f"{score} at minute {minute}",
                     "0 at the last charting")


def nibp_near(measurements: Sequence[NibpMeasurement], target: datetime,
              tolerance: timedelta) -> NibpMeasurement | None:
    """The measurement closest to ``target`` within ``tolerance`` (the earlier one on a tie)."""
    near = [m for m in measurements if abs(m.t - target) <= tolerance]
    return min(near, key=lambda m: (abs(m.t - target), m.t), default=None)


def respiratory_depression(readings: Sequence[Reading], start: datetime,
                           end: datetime) -> tuple[bool, str]:
    """Whether SpO2 stayed < 92 % for ≥ 15 s or RR fell < 10, and a line saying when."""
    found: list[str] = []
    low: list[Reading] = []  # the current run of valid SpO2 < 92

    def close_run(until: datetime) -> None:
        if low and (until - low[0].time).total_seconds() >= RESP_SPO2_MIN_S:
            found.append(_spo2_episode(low[0].time, min(r.value for r in low)))
        low.clear()

    rr_low = None
    for r in readings:
        if r.quality is not Quality.OK or not start <= r.time < end:
            continue
        if r.vital is Vital.RR and r.value < RESP_RR_BELOW and rr_low is None:
            rr_low = r
        elif r.vital is Vital.SPO2 and r.value < RESP_SPO2_BELOW:
            low.append(r)
        elif r.vital is Vital.SPO2:
            close_run(r.time)
    if low:
        close_run(low[-1].time)
    if rr_low is not None:
        found.append(f"RR {rr_low.value:g} < {RESP_RR_BELOW} at {iso_z(rr_low.time)}")
    return bool(found), "; ".join(found) if found else "none"


def summarise_rems(
    *, baseline: Baseline | None, start: datetime | None, end: datetime | None,
    measurements: Sequence[NibpMeasurement], entries: Sequence[MinuteEntry],
    readings: Sequence[Reading], discharge: DischargeCheck | None,
    discharged_at: datetime | None,
) -> RemsSummary:
    """Fill the REMS items from the chart; ``entries`` are the newest versions only."""
    rass = [e.rass for e in entries if e.rass is not None]
    dissociation = [e.dissociation for e in entries if e.dissociation is not None]
    if start is not None and end is not None:
        resp, resp_detail = respiratory_depression(readings, start, end)
    else:
        resp, resp_detail = False, "infusion not started"
    return RemsSummary(
        bp_before_dosing=None if baseline is None else baseline.nibp,
        bp_about_40_min=None if start is None else nibp_near(
            measurements, start + REMS_40_MIN, REMS_40_TOLERANCE),
        bp_at_end=None if end is None else next(
            (m for m in reversed(measurements) if m.t <= end), None),
        vitals_acceptable_before_dosing=None if baseline is None else not baseline.bp_high,
        vitals_acceptable_before_completion=None if discharge is None else discharge.all_met,
        sedation=any(r <= SEDATION_RASS_AT_MOST for r in rass),
        lowest_rass=min(rass, default=None),
        dissociation=any(d >= 1 for d in dissociation),
        highest_dissociation=max(dissociation, default=None),
        respiratory_depression=resp, respiratory_detail=resp_detail,
        first_dose=start, end_of_monitoring=end, ready_to_leave=discharged_at,
        monitored_minutes=None if start is None or end is None else minute_count(start, end),
    )


def _spo2_episode(since: datetime, worst: float) -> str:
    return (f"SpO2 < {RESP_SPO2_BELOW} for ≥ {RESP_SPO2_MIN_S} s from {iso_z(since)}"
            f" (lowest {worst:g})")


def _nibp_json(m: NibpMeasurement | None) -> dict[str, Any] | None:
    return None if m is None else {"t_us": to_us(m.t), "sys": m.sys, "dia": m.dia, "mean": m.mean}


def _nibp_from_json(d: dict[str, Any] | None) -> NibpMeasurement | None:
    return None if d is None else NibpMeasurement(from_us(d["t_us"]), d["sys"], d["dia"],
                                                  d.get("mean"))
