"""How fast each protocol's codec decodes, compared with what its serial line can deliver.

The byte streams are the bundled simulators' file output (``python -m simulators --out``) for a
60-minute ``typical`` session: the same frames a monitor sends, decoded by a fresh codec fed in
read-sized chunks. The line rate is the protocol's default speed and framing (start, data,
parity and stop bits per byte).

Run ``python benchmarks/codec_throughput.py``; ``run()`` returns the rows for a benchmark suite.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.table import Row, format_table
from infusion_monitor.devices.registry import PROTOCOLS

REPEATS = 3
CHUNK = 64  # a serial read rarely returns more than this at these speeds
DURATION_S = 3600
GOAL_RATIO = 1000


def line_bytes_per_s(protocol: str) -> float:
    s = PROTOCOLS[protocol].serial
    bits = 1 + s.bytesize + (0 if s.parity == "N" else 1) + s.stopbits
    return s.baudrate / bits


def build_stream(protocol: str, duration_s: int = DURATION_S, seed: int = 1) -> bytes:
    """A whole simulated session as the monitor would send it."""
    from simulators.__main__ import main as simulate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "capture.bin"
        code = simulate(["--protocol", protocol, "--scenario", "typical", "--seed", str(seed),
                         "--duration", str(duration_s), "--out", str(out),
                         "--start", "2026-05-04T09:00:00Z"])
        if code != 0:
            raise RuntimeError(f"simulator failed for {protocol} (exit {code})")
        return out.read_bytes()


def _decode_seconds(protocol: str, stream: bytes) -> tuple[float, int, int]:
    codec = PROTOCOLS[protocol].create()
    start = time.perf_counter()
    for i in range(0, len(stream), CHUNK):
        codec.receive_data(stream[i : i + CHUNK])
    elapsed = time.perf_counter() - start
    if codec.stats.frames_ok == 0 or codec.stats.frames_rejected:
        raise RuntimeError(f"{protocol}: {codec.stats.frames_ok} frames decoded, "
                           f"{codec.stats.frames_rejected} rejected")
    return elapsed, codec.stats.frames_ok, codec.stats.readings


def run() -> list[Row]:
    """Best of ``REPEATS`` decodes of each protocol's stream, against its line rate."""
    rows = []
    for protocol in PROTOCOLS:
        stream = build_stream(protocol)
        runs = [_decode_seconds(protocol, stream) for _ in range(REPEATS)]
        best, frames, _ = min(runs)
        bytes_per_s = len(stream) / best
        line = line_bytes_per_s(protocol)
        s = PROTOCOLS[protocol].serial
        framing = f"{s.baudrate} {s.bytesize}{s.parity}{s.stopbits:g}"
        rows += [
            Row(f"{protocol} codec: frames decoded", frames / best, "frames/s"),
            Row(f"{protocol} codec: ratio to {framing} line rate", bytes_per_s / line, "x",
                f">= {GOAL_RATIO:g}", f"line {line:.0f} B/s"),
        ]
    return rows


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
