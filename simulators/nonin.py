"""A simulated Nonin OEM III oximeter: 75 frames a second in 25-frame packets, format #2 or #7.

Frames are built with the app's own ``infusion_monitor.devices.nonin`` encoders. Like a real unit
it talks unprompted, and it starts in format #2. A real unit starts in whatever format it last
stored (OEM modules are commonly set to #2; OpenICE resets an Onyx 9560 to #13, "the default"),
which is why the app always asks. A select for #2 or #7 is answered with ACK (0x06) and the new
format is used from the next packet on; any other format gets NAK (0x15) and changes nothing.

What it shows, per packet (1/3 simulated second):

- HR (the model's pulse rate) and SpO2; the missing codes 511 and 127, with the status bit
  "sensor disconnected" and a flat pleth, where the model has no value;
- during the scenario's artifact stretches the "artifact" bit and red (low) perfusion, and a
  noisy pleth; otherwise green perfusion;
- a synthetic pulse wave at the pulse rate (8-bit in #2, 16-bit in #7).

A Frame is one packet, or one ACK/NAK byte. Its ``values`` are what the app's codec records from
it: the same ``RepeatThinner`` decides which repeats are kept.
"""

from __future__ import annotations

import math
import random

from infusion_monitor.devices.nonin import (
    ACK,
    ARTIFACT,
    FORMATS,
    GREEN_PERFUSION,
    MISSING_HR,
    MISSING_SPO2,
    NAK,
    PACKET_FRAMES,
    RED_PERFUSION,
    SAMPLE_RATE_HZ,
    SENSOR_DISCONNECTED,
    RepeatThinner,
    SelectDecoder,
    build_packet,
)
from infusion_monitor.vitals import Vital
from simulators.masimo import HOLDOFF_S, in_artifact_window
from simulators.output import Frame
from simulators.patient import PatientModel

PACKETS_PER_S = 3
DEFAULT_FORMAT = 2
#: Pleth (baseline, span) in raw units per format.
_PLETH_RANGE = {2: (30, 190), 7: (6000, 48000)}


def pulse_shape(phase: float) -> float:
    """A finger pleth over one beat (0..1): a systolic peak and a dicrotic wave; 0..1."""
    systolic = math.exp(-(((phase - 0.15) / 0.07) ** 2))
    dicrotic = 0.35 * math.exp(-(((phase - 0.45) / 0.08) ** 2))
    return min(1.0, systolic + dicrotic)


class NoninStream:
    """One simulated Nonin serial port (sans-I/O): the packet schedule and format selects.

    Packet ``k`` is sent at simulated time ``k / 3``; frames carry no time (``r_time`` None).
    """

    protocol = "nonin"

    def __init__(
        self, model: PatientModel, *, speed: float = 1.0, data_format: int = DEFAULT_FORMAT
    ) -> None:
        self.model = model
        self.initial_format = data_format
        self.data_format = data_format
        self._holdoff = HOLDOFF_S * speed  # in simulated seconds (see simulators.masimo)
        self._decoder = SelectDecoder()
        self._answers: list[tuple[float, int, int]] = []  # (t, ACK or NAK, format asked)
        self._next: int | None = None  # index of the next packet
        self._thinner = RepeatThinner()
        self._phase = 0.0
        self.selects: list[tuple[float, int]] = []  # (t, format) as received

    def connection_made(self) -> None:
        """A new reader, or the cable back in: the unit restarts in its first format."""
        self._decoder = SelectDecoder()
        self._answers.clear()
        self._next = None
        self.data_format = self.initial_format
        self._thinner.reset()  # the app's codec forgets its repeats on a reconnect too

    def start_unsolicited(self, t: float) -> None:
        self._next = math.ceil(round(t * PACKETS_PER_S, 9))

    def receive_data(self, data: bytes, t: float) -> None:
        """Answer every complete format select in ``data`` (received at simulated time ``t``)."""
        for data_format in self._decoder.feed(data):
            self.selects.append((t, data_format))
            self._answers.append((t, ACK if data_format in FORMATS else NAK, data_format))

    def next_due(self) -> float | None:
        due = [] if self._next is None else [self._next / PACKETS_PER_S]
        if self._answers:
            due.append(self._answers[0][0])
        return min(due) if due else None

    def frames_until(self, t: float) -> list[Frame]:
        """Answers and packets due by ``t``, in time order; the first call starts the schedule."""
        if self._next is None:
            self.start_unsolicited(t + self._holdoff)
        assert self._next is not None
        frames: list[Frame] = []
        while True:
            due = self._next / PACKETS_PER_S
            if self._answers and self._answers[0][0] <= min(t, due):
                frames.append(self._answer(*self._answers.pop(0)))
            elif due <= t:
                frames.append(self.packet_at(self._next))
                self._next += 1
            else:
                return frames

    def _answer(self, t: float, byte: int, data_format: int) -> Frame:
        if byte == ACK:
            self.data_format = data_format
        return Frame(t=t, r_time=None, data=bytes([byte]), sample=self.model.sample(t),
                     values={})

    def packet_at(self, k: int) -> Frame:
        """Packet ``k`` in the current format and the readings a correct decoder takes from it."""
        t = k / PACKETS_PER_S
        sample = self.model.sample(t)
        pr, spo2 = sample.pr, sample.spo2
        probe_off = pr is None or spo2 is None
        artifact = not probe_off and in_artifact_window(self.model, t)
        if probe_off:
            status = SENSOR_DISCONNECTED
        else:
            status = ARTIFACT | RED_PERFUSION if artifact else GREEN_PERFUSION
        data = build_packet(
            self.data_format,
            hr=MISSING_HR if pr is None else pr,
            spo2=MISSING_SPO2 if spo2 is None else spo2,
            pleth=self._pleth(k, None if probe_off else pr, artifact),
            status=status,
        )
        values: dict[str, float | None] = {}
        for vital, value in ((Vital.PR, pr), (Vital.SPO2, spo2)):
            if self._thinner.keep(vital, value):
                values[vital.value] = value
        return Frame(t=t, r_time=None, data=data, sample=sample, values=values,
                     carried={Vital.PR.value: pr, Vital.SPO2.value: spo2})

    def _pleth(self, k: int, rate: int | None, artifact: bool) -> list[int]:
        """25 samples of a pulse wave at ``rate``/min; flat without a rate, noisy in artifact."""
        base, span = _PLETH_RANGE[self.data_format]
        if rate is None:
            return [base] * PACKET_FRAMES
        noise = random.Random(f"{self.model.seed}:{self.model.scenario.name}:pleth:{k}")
        out = []
        for _ in range(PACKET_FRAMES):
            self._phase = (self._phase + rate / 60 / SAMPLE_RATE_HZ) % 1.0
            w = pulse_shape(self._phase)
            if artifact:
                w = min(1.0, max(0.0, w + noise.uniform(-0.3, 0.3)))
            out.append(base + round(span * w))
        return out
