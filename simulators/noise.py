"""Lines that carry garbage: random bytes, and a monitor read at the wrong baud rate.

``NoiseStream`` sends seeded random bytes at about the line rate from the moment a reader opens
the port, whatever the reader writes, so auto-detect can be shown to name no protocol for it.
``BaudMismatch`` mangles a real monitor's bytes as a reader's UART set to another rate would.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

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


def misread(data: bytes, sent_baud: int, read_baud: int, parity: str = "N") -> bytes:
    """What a UART at ``read_baud`` reads from ``data`` sent back to back at ``sent_baud``.

    Both ends use the same framing (start bit, 8 data bits LSB first, a parity bit unless
    ``parity`` is "N", one stop bit); the line idles high before and after. The reader waits
    for a falling edge, checks the start bit half a bit later, then samples each bit in the
    middle of its own bit time and looks for the next edge after the stop bit. pyserial clears
    INPCK, so Linux hands on a byte with a framing or parity error as it was sampled (a break
    reads as NUL): that is what this returns. At equal rates it returns ``data`` unchanged.
    """
    if sent_baud <= 0 or read_baud <= 0:
        raise ValueError("baud rates must be positive")
    bits: list[int] = []
    for byte in data:
        word = [(byte >> i) & 1 for i in range(8)]
        parity_bit = [] if parity == "N" else [(sum(word) + (parity == "O")) % 2]
        bits += [0, *word, *parity_bit, 1]
    per_char = 10 if parity == "N" else 11
    ratio = sent_baud / read_baud  # sender bits per reader bit

    def level(t: float) -> int:  # t in sender bit times; idle (1) outside the burst
        i = int(t)
        return bits[i] if 0 <= i < len(bits) else 1

    out = bytearray()
    i = 0  # the sender bit the search for a falling edge starts at
    while i < len(bits):
        if bits[i] != 0 or (i > 0 and bits[i - 1] == 0):
            i += 1
            continue
        start = float(i)  # a falling edge at the start of sender bit i
        samples = [level(start + (k + 0.5) * ratio) for k in range(per_char)]
        if samples[0] != 0:  # a glitch, not a start bit
            i += 1
            continue
        out.append(sum(bit << k for k, bit in enumerate(samples[1:9])))
        i = max(i + 1, int(start + (per_char - 0.5) * ratio) + 1)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class BaudMismatch:
    """A monitor at ``monitor_baud`` wired to a reader wrongly set to ``reader_baud``.

    A pty has no baud rate, so the simulator mangles the bytes both ways as the two UARTs
    would (``misread``): the reader gets garbage and the monitor cannot understand a request.
    """

    monitor_baud: int
    reader_baud: int
    parity: str = "N"

    def to_reader(self, data: bytes) -> bytes:
        return misread(data, self.monitor_baud, self.reader_baud, self.parity)

    def to_monitor(self, data: bytes) -> bytes:
        return misread(data, self.reader_baud, self.monitor_baud, self.parity)
