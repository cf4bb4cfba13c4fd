"""Waveform blocks on disk: compact sample encoding, and whole traces read back as numpy arrays.

A block's raw integer samples are stored little-endian in the narrowest type that holds that
block (a Nonin pleth in format #2 needs one byte a sample), so an hour of a 75 Hz pleth is a few
hundred kilobytes, not 270,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infusion_monitor.clock import from_us, to_us
from infusion_monitor.devices.base import WaveformBlock
from infusion_monitor.vitals import Quality

#: Encoding name -> little-endian numpy dtype, narrowest first (the first that fits is used).
ENCODINGS: dict[str, str] = {"u8": "<u1", "i16": "<i2", "u16": "<u2", "i32": "<i4"}

#: Blocks form a run on the device's sample clock while each one's recorded time is within
#: these bounds of where the run puts it. Receipt times only ever lag the samples (blocks read
#: from the port together share one receipt time), so a run is placed by its earliest-received
#: block; a block recorded more than ``LATE_LIMIT_US`` after its place starts a new run (a gap:
#: a shorter loss is drawn joined), one more than ``EARLY_LIMIT_US`` before it too (a clock
#: step).
LATE_LIMIT_US = 1_000_000
EARLY_LIMIT_US = 2_000_000

def encode_samples(samples: Sequence[int]) -> tuple[str, bytes]:
    """(encoding, bytes) for raw integer samples; ValueError if one does not fit 32 bits."""
    if not samples:
        return "u8", b""
    try:
        values = np.asarray(samples, dtype=np.int64)
    except (OverflowError, TypeError, ValueError) as exc:
        raise ValueError(f"waveform samples must be integers within 32 bits: {exc}") from exc
    if values.ndim != 1:
        raise ValueError("waveform samples must be a flat sequence of integers")
    lo, hi = int(values.min()), int(values.max())
    for name, dtype in ENCODINGS.items():
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return name, values.astype(dtype).tobytes()
    raise ValueError(f"waveform sample out of the 32-bit range: {lo if lo < 0 else hi}")


def decode_samples(encoding: str, data: bytes, n_samples: int) -> np.ndarray:
    """The stored bytes back as an int32 array of ``n_samples`` values."""
    values = np.frombuffer(data, dtype=ENCODINGS[encoding])
    if values.size != n_samples:
        raise ValueError(f"a waveform block holds {values.size} samples, not {n_samples}")
    return values.astype(np.int32)


def block_time_us(block: WaveformBlock) -> int:
    """The stored time of a block: receipt time, else device time; ValueError if it has none."""
    t = block.t_received or block.t_device
    if t is None:
        raise ValueError(f"WaveformBlock has no time: {block!r}")
    return to_us(t)


def check_block(block: WaveformBlock) -> None:
    """Raise ValueError now, in the caller, for a block the store could not keep."""
    block_time_us(block)
    if not block.rate_hz > 0:
        raise ValueError(f"waveform rate must be positive, not {block.rate_hz}")
    encode_samples(block.samples)


def block_row(session_id: int, block: WaveformBlock) -> dict[str, Any]:
    """Insert parameters of one ``waveform_blocks`` row."""
    encoding, data = encode_samples(block.samples)
    return {
        "session_id": session_id, "wave": block.wave, "rate_hz": float(block.rate_hz),
        "t_start_us": block_time_us(block),
        "t_device_us": None if block.t_device is None else to_us(block.t_device),
        "n_samples": len(block.samples), "encoding": encoding, "samples": data,
        "scale": float(block.scale), "unit": block.unit, "quality": str(block.quality),
    }


def block_of(row: Any) -> WaveformBlock:
    """A stored row back as the block the device sent (times as aware UTC datetimes)."""
    samples = decode_samples(row.encoding, row.samples, row.n_samples)
    return WaveformBlock(
        row.wave, row.rate_hz, tuple(samples.tolist()), unit=row.unit, scale=row.scale,
        quality=Quality(row.quality),
        t_device=None if row.t_device_us is None else from_us(row.t_device_us),
        t_received=from_us(row.t_start_us),
    )


@dataclass(frozen=True, slots=True, eq=False)
class WaveformTrace:
    """One wave of a session as arrays, one element per sample, in time order.

    ``t_us`` places each sample on the device's sample clock, exactly ``1 / rate_hz`` apart
    within a run of blocks, rather than at its block's receipt time, whose jitter would fold
    the trace back on itself (see ``LATE_LIMIT_US``).
    ``breaks`` is True at the first sample of each run (a line must not bridge the gap before
    it). ``marked`` is True for samples of artifact or demo blocks.
    """

    wave: str
    rate_hz: float  # of the first block (0 when empty)
    unit: str
    scale: float
    t_us: np.ndarray  # int64, UTC microseconds
    samples: np.ndarray  # int32, the device's raw units (times ``scale`` gives ``unit``)
    marked: np.ndarray  # bool
    breaks: np.ndarray  # bool
    n_blocks: int

    def __len__(self) -> int:
        return int(self.samples.size)

    @staticmethod
    def empty(wave: str) -> WaveformTrace:
        return WaveformTrace(
            wave, 0.0, "", 1.0, np.empty(0, np.int64), np.empty(0, np.int32),
            np.empty(0, bool), np.empty(0, bool), 0,
        )

    def window(self, t0_us: int, t1_us: int) -> WaveformTrace:
        """The samples with ``t0_us <= t < t1_us``."""
        i, j = np.searchsorted(self.t_us, [t0_us, t1_us], side="left")
        return WaveformTrace(
            self.wave, self.rate_hz, self.unit, self.scale, self.t_us[i:j],
            self.samples[i:j], self.marked[i:j], self.breaks[i:j], self.n_blocks,
        )


def trace_of(wave: str, rows: Iterable[Any]) -> WaveformTrace:
    """Concatenate stored rows (in time order) into a ``WaveformTrace``."""
    rows = list(rows)
    if not rows:
        return WaveformTrace.empty(wave)
    chunks = [decode_samples(r.encoding, r.samples, r.n_samples) for r in rows]
    # Runs of blocks on one sample clock: [first row, samples, earliest implied start (us)].
    runs: list[list[int]] = []
    for i, row in enumerate(rows):
        run = runs[-1] if runs else None
        if run is not None and rows[run[0]].rate_hz == row.rate_hz:
            # Where the run's clock would start if this block's receipt time were exact.
            implied = row.t_start_us - round(run[1] * 1e6 / row.rate_hz)
            if run[2] - EARLY_LIMIT_US <= implied <= run[2] + LATE_LIMIT_US:
                run[1] += row.n_samples
                run[2] = min(run[2], implied)
                continue
        runs.append([i, row.n_samples, row.t_start_us])
    times: list[np.ndarray] = []
    breaks: list[np.ndarray] = []
    for first, n, start in runs:
        step_us = 1e6 / rows[first].rate_hz
        times.append(start + np.rint(np.arange(n) * step_us).astype(np.int64))
        run_breaks = np.zeros(n, bool)
        run_breaks[:1] = True
        breaks.append(run_breaks)
    marks = [np.full(r.n_samples, r.quality != Quality.OK.value) for r in rows]
    head = rows[0]
    t_us = np.concatenate(times)
    order = np.argsort(t_us, kind="stable")  # blocks that overlap (a clock step) stay sorted
    return WaveformTrace(
        wave, float(head.rate_hz), head.unit, float(head.scale), t_us[order],
        np.concatenate(chunks)[order], np.concatenate(marks)[order],
        np.concatenate(breaks)[order], len(rows),
    )
