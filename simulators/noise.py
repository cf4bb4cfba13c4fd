"""A line that carries only random bytes: a miswired cable, a wrong baud rate, another device.

It sends seeded random bytes at about the line rate from the moment a reader opens the port,
whatever the reader writes, so auto-detect can be shown to name no protocol for it.
"""

from __future__ import annotations

import math
import random

from simulators.output import Frame
from simulators.patient import PatientModel

#: Simulated seconds per chunk of bytes.
CHUNK_S = 0.1
#: Bits per byte on an 8N1 line (start bit, 8 data bits, stop bit).
BITS_PER_BYTE = 10


class NoiseStream:
    """Random bytes at ``baudrate / 10`` bytes per simulated second; ignores requests."""

    protocol = "noise"

    def __init__(self, model: PatientModel, seed: int = 0, baudrate: int = 19200) -> None:
        self.model = model
        self.seed = seed
        self.chunk_bytes = max(1, round(baudrate / BITS_PER_BYTE * CHUNK_S))
        self._next: float | None = None

    def connection_made(self) -> None:
        """A new reader: carry on from now (nothing to ask for)."""
        self._next = None

    def start_unsolicited(self, t: float) -> None:
        self._next = math.ceil(t / CHUNK_S) * CHUNK_S

    def receive_data(self, data: bytes, t: float) -> None:
        """Whatever the reader sends changes nothing."""

    def next_due(self) -> float | None:
        return self._next

    def frames_until(self, t: float) -> list[Frame]:
        """Every chunk due by ``t``; the first call after a (re)connect starts the schedule."""
        if self._next is None:
            self.start_unsolicited(t)  # unprompted: a reader gets bytes without asking
        assert self._next is not None
        frames: list[Frame] = []
        while self._next <= t:
            frames.append(self.chunk_at(self._next))
            self._next += CHUNK_S
        return frames

    def chunk_at(self, t: float) -> Frame:
        """The bytes sent at simulated time ``t``: the same for the same (seed, t)."""
        index = round(t / CHUNK_S)
        data = random.Random(f"{self.seed}:noise:{index}").randbytes(self.chunk_bytes)
        return Frame(t=t, r_time=None, data=data, sample=self.model.sample(t), values={})
