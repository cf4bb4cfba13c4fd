"""Run every benchmark and print one table: ``python -m benchmarks``."""

from __future__ import annotations

import importlib
import platform
import sys
import time

from benchmarks.table import format_table

MODULES = (
    "codec_throughput", "latency_pty", "alarm_latency", "writer_throughput", "review_speed",
    "pleth_cpu",
    "overview_latency",
    "soak",
    "fuzz_codecs",
)


def main() -> int:
    rows = []
    started = time.perf_counter()
    for name in MODULES:
        rows += importlib.import_module(f"benchmarks.{name}").run()
    print(f"# python -m benchmarks  ({platform.python_version()}, {platform.machine()}, "
          f"{time.perf_counter() - started:.0f} s)")
    print(format_table(rows))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
