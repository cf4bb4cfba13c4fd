"""How fast the store writer drains, and what one live batch costs, on SQLite (and PostgreSQL).

Two figures per engine:

* burst: 20,000 readings, 4,000 pleth blocks (25 samples each) and 200 device events submitted
  at once to one ``StoreWriter``; items per second until ``flush()`` returns. This is the
  headroom the writer has over a live monitor (a few readings and blocks per second).
* live batch: the median time of one ``insert_batch`` holding what 0.2 s of a live session
  brings (2 readings, 15 pleth blocks, 1 device event): the writer's per-commit cost.

``python -m benchmarks.writer_throughput``; set ``INFUSION_MONITOR_TEST_PG`` to a server URL to
measure PostgreSQL too (a scratch database is created and dropped).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.table import Row, format_table
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.store import StoreWriter, open_database
from infusion_monitor.vitals import Reading, Vital
from tests.pgdb import scratch_database

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
N_READINGS = 20_000
N_BLOCKS = 4_000
N_EVENTS = 200
LIVE_BATCHES = 300
PG_ENV = "INFUSION_MONITOR_TEST_PG"


def _items(n_readings: int, n_blocks: int, n_events: int, offset: int = 0) -> list[object]:
    out: list[object] = []
    for i in range(n_readings):
        out.append(Reading(Vital.HR, 60.0 + i % 40,
                           t_received=T0 + timedelta(milliseconds=offset + i)))
    for i in range(n_blocks):
        out.append(WaveformBlock("pleth", 75.0, tuple((i + k) % 256 for k in range(25)),
                                 t_received=T0 + timedelta(milliseconds=offset + 333 * i)))
    for i in range(n_events):
        out.append(DeviceEvent(DeviceEventKind.LINK_UP, "bench",
                               t_received=T0 + timedelta(milliseconds=offset + i)))
    return out


@contextmanager
def _scratch_url(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    with scratch_database(os.environ[PG_ENV], "im_bench") as url:
        yield url


def measure(engine: str) -> tuple[float, float]:
    """(burst items per second, median ms per live-sized batch) on one engine."""
    with _scratch_url(engine) as url:
        database = open_database(url)
        try:
            repo = database.repository
            sid = repo.create_session(source="record", protocol="bench", started=T0)
            items = _items(N_READINGS, N_BLOCKS, N_EVENTS)
            writer = StoreWriter(repo)
            started = time.perf_counter()
            for item in items:
                writer.submit(sid, item)  # type: ignore[arg-type]
            assert writer.flush(timeout=600), "the writer did not drain"
            burst_s = time.perf_counter() - started
            writer.close()

            times = []
            for b in range(LIVE_BATCHES):
                batch = _items(2, 15, 1, offset=10_000_000 + 1000 * b)
                readings = [(sid, i) for i in batch if isinstance(i, Reading)]
                events = [(sid, i) for i in batch if isinstance(i, DeviceEvent)]
                blocks = [(sid, i) for i in batch if isinstance(i, WaveformBlock)]
                t = time.perf_counter()
                repo.insert_batch(readings, events, waveforms=blocks)
                times.append(time.perf_counter() - t)
        finally:
            database.close()
    return len(items) / burst_s, statistics.median(times) * 1000


def run() -> list[Row]:
    engines = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])
    rows = []
    for engine in engines:
        rate, batch_ms = measure(engine)
        rows.append(Row(f"writer burst drain ({engine})", rate, "items/s", ">= 2000"))
        rows.append(Row(f"writer live batch, median ({engine})", batch_ms, "ms", "<= 100"))
    return rows


if __name__ == "__main__":
    print(format_table(run()))
