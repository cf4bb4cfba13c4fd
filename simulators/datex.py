"""A simulated GE Datex-Ohmeda S/5: answers start requests with displayed-values records.

Frames are encoded by the app's own ``infusion_monitor.devices.datex_s5`` encoders, so both
sides of the wire share one description of it. Like a real monitor, it sends nothing until a
client asks (displayed values, an interval, its DRI level) and stops on an interval-0 request.
"""

from __future__ import annotations

import math

from infusion_monitor.devices.datex_s5 import (
    BasicValues,
    RequestDecoder,
    build_displayed_values,
)
from simulators.output import Frame
from simulators.patient import PatientModel, Sample

#: The S/5 sends displayed values at most every 5 s; a shorter requested interval gets 5 s.
MIN_INTERVAL_S = 5
#: DRI level 9 = "2005" software; newer monitors answer only requests for their own level.
DEFAULT_DRI_LEVEL = 9


def basic_values(sample: Sample) -> BasicValues:
    """The basic-class values the S/5 displays for one sample (None is sent as INVALID)."""
    nibp = sample.nibp
    return BasicValues(
        hr=sample.hr,
        pr=sample.pr,
        spo2=sample.spo2,
        nibp_sys=None if nibp is None else nibp.sys,
        nibp_dia=None if nibp is None else nibp.dia,
        nibp_mean=None if nibp is None else nibp.mean,
        nibp_measuring=sample.nibp_measuring,
    )


class DatexS5Stream:
    """One simulated S/5 serial port: request handling and the frame schedule (sans-I/O).

    Frames fall on whole multiples of the interval in simulated time (0, 5, 10, ...), so every
    connection sees the same sample times; ``r_time`` = ``start_epoch`` + t.
    """

    protocol = "datex-s5"

    def __init__(
        self, model: PatientModel, start_epoch: int, dri_level: int = DEFAULT_DRI_LEVEL
    ) -> None:
        self.model = model
        self.start_epoch = start_epoch
        self.dri_level = dri_level
        self.interval_s = MIN_INTERVAL_S
        self._decoder = RequestDecoder()
        self._next: float | None = None
        self._r_nbr = 0
        self.requests: list[tuple[float, int, int]] = []  # (t, interval, level) as received

    def connection_made(self) -> None:
        """A new reader, or the cable back in: silent until the next start request."""
        self._decoder = RequestDecoder()
        self._next = None

    def start_unsolicited(self, t: float) -> None:
        """Send from ``t`` at the minimum interval without a request (file output)."""
        self.interval_s = MIN_INTERVAL_S
        self._next = self._first_slot(t)

    def _first_slot(self, t: float) -> float:
        return math.ceil(t / self.interval_s) * self.interval_s

    def receive_data(self, data: bytes, t: float) -> None:
        """Act on every complete request in ``data`` received at simulated time ``t``."""
        for interval, level in self._decoder.feed(data):
            self.requests.append((t, interval, level))
            if level != self.dri_level:
                continue  # another DRI level: a real monitor ignores it
            if interval == 0:
                self._next = None
                continue
            was_sending = self._next is not None
            self.interval_s = max(MIN_INTERVAL_S, interval)
            if not was_sending:
                self._next = self._first_slot(t)

    def next_due(self) -> float | None:
        return self._next

    def frames_until(self, t: float) -> list[Frame]:
        frames: list[Frame] = []
        while self._next is not None and self._next <= t:
            frames.append(self.frame_at(int(self._next)))
            self._next += self.interval_s
        return frames

    def frame_at(self, t: int) -> Frame:
        """The displayed-values frame for simulated second ``t``."""
        sample = self.model.sample(t)
        r_time = self.start_epoch + t
        data = build_displayed_values(
            r_time, basic_values(sample), dri_level=self.dri_level, r_nbr=self._r_nbr
        )
        self._r_nbr = (self._r_nbr + 1) & 0xFF
        return Frame(t=t, r_time=r_time, data=data, sample=sample)
