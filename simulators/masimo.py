"""A simulated Masimo Rad-8 (or Radical-7) on serial ASCII 1: one line each simulated second.

Lines are built with the app's own ``infusion_monitor.devices.masimo.build_line``, so both sides
of the wire share one description of it. Like the real oximeter it talks unprompted and ignores
whatever it is sent. What it shows, per simulated second:

- SPO2 and BPM from the patient model (BPM is the model's pulse rate); dashes where the model has
  no value, with EXC "sensor off" and PI (and PVI) dashed as well;
- PI, synthesised: 1.2-4.8 %, slowly varying; 0.2-0.4 % with EXC "low perfusion" during the
  scenario's artifact stretches, so the values sent then are QUESTIONABLE;
- PVI 6-22 % with ``radical7`` (the Radical-7 sends ``PVI=``, the Rad-8 does not);
- EXC "SET mode" (0x800) always, as in the published Rad-8 capture; ALARM bits while SpO2 < 90
  or the pulse rate is outside 50-120 (the simulated unit's alarm limits).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from infusion_monitor.devices.masimo import (
    EXC_LOW_PERFUSION,
    EXC_SENSOR_OFF,
    EXC_SET_MODE,
    build_line,
)
from simulators.output import Frame
from simulators.patient import PatientModel, Sample

#: After a reader appears, nothing is sent for this long (real seconds). pyserial flushes the
#: input when it opens a port; a line written between its open() and that flush would be lost
#: to the reader although the truth log lists it. A real reader misses those lines too.
HOLDOFF_S = 0.1
#: Scenario stretches of these kinds and vitals are shown as poor perfusion by an oximeter.
_ARTIFACT_VITALS = ("hr", "pr", "spo2")


def in_artifact_window(model: PatientModel, t: float) -> bool:
    """True during the scenario's documented artifact stretches of HR, PR or SpO2."""
    return any(
        e.kind == "artifact" and e.vital in _ARTIFACT_VITALS and e.t_start <= t < e.t_end
        for e in model.scenario.timeline
    )


def _rng(model: PatientModel, channel: str, t: int) -> random.Random:
    # Seeding with a string is stable across processes (str hashes are not).
    return random.Random(f"{model.seed}:{model.scenario.name}:{channel}:{t}")


def perfusion_index(model: PatientModel, t: int, low: bool) -> float:
    """A plausible PI in %, in whole hundredths (what the line can carry exactly)."""
    rng = _rng(model, "pi", t)
    if low:
        return rng.randint(20, 40) / 100
    centi = 300 + round(150 * math.sin(2 * math.pi * t / 900)) + rng.randint(-30, 30)
    return centi / 100


def pleth_variability(model: PatientModel, t: int) -> int:
    """A plausible PVI in % for a sedated, normovolaemic patient."""
    return 14 + round(4 * math.sin(2 * math.pi * t / 600)) + _rng(model, "pvi", t).randint(-4, 4)


def alarm_bits(sample: Sample) -> int:
    """The ALARM field a unit with limits SpO2 >= 90 and PR 50-120 would send."""
    bits = 0
    if sample.spo2 is not None and sample.spo2 < 90:
        bits |= 0x02
    if sample.pr is not None and sample.pr > 120:
        bits |= 0x04
    if sample.pr is not None and sample.pr < 50:
        bits |= 0x08
    return bits | 0x10 if bits else 0


class MasimoStream:
    """One simulated ASCII 1 serial port (sans-I/O): a line on every whole simulated second.

    ``r_time`` = ``start_epoch`` + t, the time printed on the line (read as UTC by the app).
    """

    protocol = "masimo"

    def __init__(
        self, model: PatientModel, start_epoch: int, *, radical7: bool = False,
        speed: float = 1.0,
    ) -> None:
        self.model = model
        self.start_epoch = start_epoch
        self.radical7 = radical7
        self._holdoff = HOLDOFF_S * speed  # in simulated seconds
        self._next: int | None = None

    def connection_made(self) -> None:
        """A new reader, or the cable back in: lines resume once it has settled."""
        self._next = None

    def start_unsolicited(self, t: float) -> None:
        self._next = math.ceil(t)

    def receive_data(self, data: bytes, t: float) -> None:
        """ASCII 1 is one-way: the oximeter ignores what it is sent."""

    def next_due(self) -> float | None:
        return None if self._next is None else float(self._next)

    def frames_until(self, t: float) -> list[Frame]:
        """Every line due by ``t``; the first call after a (re)connect starts the schedule."""
        if self._next is None:
            self._next = math.ceil(t + self._holdoff)
        frames: list[Frame] = []
        while self._next <= t:
            frames.append(self.frame_at(self._next))
            self._next += 1
        return frames

    def frame_at(self, t: int) -> Frame:
        """The line for simulated second ``t`` and the values a correct decoder reads from it."""
        sample = self.model.sample(t)
        probe_off = sample.spo2 is None or sample.pr is None
        low = not probe_off and in_artifact_window(self.model, t)
        pi = None if probe_off else perfusion_index(self.model, t, low)
        pvi = None if probe_off or not self.radical7 else pleth_variability(self.model, t)
        exc = (EXC_SET_MODE | (EXC_SENSOR_OFF if probe_off else 0)
               | (EXC_LOW_PERFUSION if low else 0))
        r_time = self.start_epoch + t
        data = build_line(
            datetime.fromtimestamp(r_time, UTC), spo2=sample.spo2, bpm=sample.pr, pi=pi,
            pvi=pvi, with_pvi=self.radical7, alarm=alarm_bits(sample), exc=exc,
        )
        values: dict[str, float | None] = {"spo2": sample.spo2, "pr": sample.pr, "pi": pi}
        if self.radical7:
            values["pvi"] = pvi
        return Frame(t=float(t), r_time=r_time, data=data, sample=sample, values=values)
