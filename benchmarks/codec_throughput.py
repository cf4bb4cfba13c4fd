"""How fast the GE S/5 codec decodes, compared with what a 19200-baud line can deliver.

Run ``python benchmarks/codec_throughput.py``; ``run()`` returns the rows for a benchmark suite.
"""

from __future__ import annotations

import random
import time
from typing import Any

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


def run() -> list[dict[str, Any]]:
    """Best of ``REPEATS`` decodes, as rows {figure, value, unit, goal, baseline, ratio}."""
    stream = build_stream()
    best = min(_decode_seconds(stream)[0] for _ in range(REPEATS))
    bytes_per_s = len(stream) / best
    ratio = bytes_per_s / LINE_BYTES_PER_S
    return [
        {"figure": "datex-s5 frames decoded", "value": FRAMES / best, "unit": "frames/s",
         "goal": None, "baseline": None, "ratio": None},
        {"figure": "datex-s5 decode throughput", "value": bytes_per_s / 1e6, "unit": "MB/s",
         "goal": None, "baseline": LINE_BYTES_PER_S / 1e6, "ratio": ratio},
        {"figure": "datex-s5 vs 19200 8E1 line rate", "value": ratio, "unit": "x",
         "goal": GOAL_RATIO, "baseline": 1, "ratio": ratio / GOAL_RATIO},
    ]


def main() -> None:
    rows = run()
    print(f"{'figure':34} {'value':>12} {'unit':9} {'goal':>9}")
    for row in rows:
        goal = f">= {row['goal']}" if row["goal"] else ""
        print(f"{row['figure']:34} {row['value']:12.1f} {row['unit']:9} {goal:>9}")
    ratio = rows[-1]["value"]
    print("goal met" if ratio >= GOAL_RATIO else "GOAL MISSED")


if __name__ == "__main__":
    main()
