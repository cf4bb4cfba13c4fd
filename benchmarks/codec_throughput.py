"""How fast the GE S/5 codec decodes, compared with what a 19200-baud line can deliver.

Run ``python benchmarks/codec_throughput.py``; ``run()`` returns the rows for a benchmark suite.
"""

from __future__ import annotations

import random
import time

from benchmarks.table import Row, format_table
from infusion_monitor.devices.datex_s5 import BasicValues, DatexS5Codec, build_displayed_values

FRAMES = 2000
REPEATS = 5
CHUNK = 64  # a serial read rarely returns more than this at 19200 baud
LINE_BYTES_PER_S = 19200 / 11  # 8E1: start + 8 data + parity + stop = 11 bits per byte
GOAL_RATIO = 1000


def build_stream(frames: int = FRAMES, seed: int = 1) -> bytes:
    """Displayed-values frames 5 s apart with drifting vitals and an NIBP every 60 frames."""
    rng = random.Random(seed)
    out = []
    for i in range(frames):
        values = BasicValues(
            hr=rng.randint(55, 110),
            pr=rng.randint(55, 110),
            spo2=rng.randint(9000, 10000) / 100,
            nibp_sys=118 + i // 60,
            nibp_dia=76 + i // 60 % 7,
            nibp_mean=90 + i // 60 % 5,
            nibp_measuring=i % 60 == 59,
        )
        out.append(build_displayed_values(1_700_000_000 + 5 * i, values, r_nbr=i))
    return b"".join(out)


def _decode_seconds(stream: bytes) -> tuple[float, int]:
    codec = DatexS5Codec()
    start = time.perf_counter()
    for i in range(0, len(stream), CHUNK):
        codec.receive_data(stream[i : i + CHUNK])
    elapsed = time.perf_counter() - start
    if codec.stats.frames_ok != FRAMES:
        raise RuntimeError(f"decoded {codec.stats.frames_ok} of {FRAMES} frames")
    return elapsed, codec.stats.readings


def run() -> list[Row]:
    """Best of ``REPEATS`` decodes of a realistic stream, against the line rate."""
    stream = build_stream()
    best = min(_decode_seconds(stream)[0] for _ in range(REPEATS))
    bytes_per_s = len(stream) / best
    return [
        Row("datex-s5 codec: frames decoded", FRAMES / best, "frames/s"),
        Row("datex-s5 codec: throughput", bytes_per_s / 1e6, "MB/s"),
        Row("datex-s5 codec: ratio to 19200 8E1 line rate", bytes_per_s / LINE_BYTES_PER_S, "x",
            f">= {GOAL_RATIO:g}", f"line {LINE_BYTES_PER_S:.0f} B/s"),
    ]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
