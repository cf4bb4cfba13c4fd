"""Waveform blocks: stored a block per row, compactly, exactly, and read back in order."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alembic import command
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import OperationalError

from infusion_monitor.devices.base import DeviceEvent, WaveformBlock
from infusion_monitor.store import Database, Repository, StoreWriter, open_database
from infusion_monitor.store import db as db_module
from infusion_monitor.store.models import WaveformBlockRow
from infusion_monitor.store.waveforms import decode_samples, encode_samples
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
RATE = 75.0
N = 25  # samples per block: a Nonin packet
BLOCK_S = N / RATE


def pleth(i: int) -> tuple[int, ...]:
    """Block ``i`` of a plausible 0-255 pleth (about 72 beats a minute)."""
    k = np.arange(i * N, (i + 1) * N)
    beat = (k % 62) / 62
    wave = 128 + 90 * np.sin(2 * math.pi * beat) * np.exp(-2 * beat)
    return tuple(int(v) for v in np.clip(np.rint(wave), 0, 255))


def block(i: int, samples: tuple[int, ...] | None = None, *,
          jitter_ms: float = 0.0, quality: Quality = Quality.OK) -> WaveformBlock:
    t = T0 + timedelta(seconds=i * BLOCK_S, milliseconds=jitter_ms)
    return WaveformBlock("pleth", RATE, pleth(i) if samples is None else samples, unit="",
                         scale=1.0, quality=quality, t_received=t)


@pytest.fixture
def sid(db: Database) -> int:
    return db.repository.create_session(source="record", protocol="nonin", started=T0)


# -- encoding ------------------------------------------------------------------------------
@pytest.mark.parametrize(("samples", "encoding", "width"), [
    ((0, 17, 255), "u8", 1),
    ((-1, 0, 32767), "i16", 2),
    ((-32768, 5), "i16", 2),
    ((0, 256, 65535), "u16", 2),
    ((-1, 65535), "i32", 4),
    ((-(2**31), 2**31 - 1), "i32", 4),
    ((), "u8", 0),
])
def test_each_block_uses_the_narrowest_encoding(
    samples: tuple[int, ...], encoding: str, width: int
) -> None:
    name, data = encode_samples(samples)
    assert (name, len(data)) == (encoding, width * len(samples))
    assert decode_samples(name, data, len(samples)).tolist() == list(samples)


@pytest.mark.parametrize("samples", [(2**31,), (-(2**31) - 1,), (2**70,)])
def test_samples_beyond_32_bits_are_refused(samples: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="32"):
        encode_samples(samples)


# -- the writer and the repository ---------------------------------------------------------
def test_blocks_round_trip_exactly_with_readings(db: Database, sid: int) -> None:
    sent = [
        block(0),
        block(1, (0, 255, 256, 65535, 1, 2)),  # 16-bit format #7 range
        block(2, (-5, 4000, -32768)),
        block(3, (-(2**31), 2**31 - 1)),
        block(4, quality=Quality.ARTIFACT),
        replace(block(5), t_device=T0 + timedelta(seconds=1), unit="%", scale=0.01),
    ]
    writer = StoreWriter(db.repository)
    try:
        writer.submit(sid, Reading(Vital.SPO2, 97, t_received=T0))
        for b in sent:
            writer.submit(sid, b)
        assert writer.flush(timeout=10)
    finally:
        writer.close()
    assert writer.written_waveform_blocks == len(sent) and writer.written_readings == 1
    assert db.repository.waveform_blocks(sid) == sent
    assert db.repository.waveform_blocks(sid, "resp") == []
    trace = db.repository.waveforms(sid)
    assert trace.samples.tolist() == [s for b in sent for s in b.samples]
    assert trace.marked.tolist() == [b.quality is Quality.ARTIFACT for b in sent
                                     for _ in b.samples]
    assert trace.n_blocks == len(sent) and trace.rate_hz == RATE
    assert trace.samples.dtype == np.int32 and trace.t_us.dtype == np.int64


def test_trace_times_follow_the_sample_clock_not_receipt_jitter(db: Database, sid: int) -> None:
    jitter = [0, 40, -30, 10, 0, 55]  # ms: a serial reader's receipt times wobble
    blocks = [block(i, jitter_ms=j) for i, j in enumerate(jitter)]
    # Three blocks read from the port at once share one receipt time (after the third).
    read_at = block(8, jitter_ms=20).t_received
    blocks += [replace(block(i), t_received=read_at) for i in (6, 7, 8)]
    late = block(20)  # a real gap: 11 blocks (3.7 s) missing
    db.repository.insert_waveforms(sid, [*blocks, late])
    trace = db.repository.waveforms(sid)
    run = len(blocks) * N
    steps = np.diff(trace.t_us[:run])
    assert steps.min() >= 13_333 and steps.max() <= 13_334  # 1/75 s, to the microsecond
    # The run is placed by its earliest-received block (receipt only ever lags the samples).
    assert trace.t_us[0] == int(T0.timestamp() * 1e6) - 30_000
    assert trace.breaks.nonzero()[0].tolist() == [0, run]  # the start, and after the gap
    assert trace.t_us[run] == int(late.t_received.timestamp() * 1e6)
    assert trace.samples.tolist() == [s for b in (*blocks, late) for s in b.samples]


def test_time_window_reads_only_the_blocks_asked_for(db: Database, sid: int) -> None:
    other = db.repository.create_session(source="record", protocol="nonin", started=T0)
    db.repository.insert_waveforms(sid, [block(i) for i in range(30)])
    db.repository.insert_waveforms(other, [block(i, (1, 2, 3)) for i in range(5)])
    t0, t1 = T0 + timedelta(seconds=2), T0 + timedelta(seconds=4)
    got = db.repository.waveform_blocks(sid, t0=t0, t1=t1)
    assert [b.t_received for b in got] == [block(i).t_received for i in range(6, 12)]
    trace = db.repository.waveforms(sid, t0=t0, t1=t1)
    assert len(trace) == 2 * 75
    t0_us = int(t0.timestamp() * 1e6)
    assert trace.t_us[0] >= t0_us and trace.t_us[-1] < t0_us + 2_000_000
    expected = np.concatenate([pleth(i) for i in range(30)])[150:300]
    assert trace.samples.tolist() == expected.tolist()


class FlakyRepository:
    """Fails the first ``failures`` writes like a locked database, then delegates."""

    def __init__(self, inner: Repository, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def insert_batch(self, readings: list[tuple[int, Reading]],
                     events: list[tuple[int, DeviceEvent]], alarm_rows: object = (),
                     waveforms: list[tuple[int, WaveformBlock]] = ()) -> None:  # type: ignore[assignment]
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("INSERT INTO waveform_blocks", {}, Exception("locked"))
        self.inner.insert_batch(readings, events, waveforms=waveforms)


def test_failed_writes_keep_every_block_and_retry(db: Database, sid: int) -> None:
    errors: list[Exception] = []
    recovered = threading.Event()
    flaky = FlakyRepository(db.repository, failures=3)
    writer = StoreWriter(flaky, flush_interval=0.05, on_error=errors.append,
                         on_recovered=recovered.set)
    sent = [block(i) for i in range(120)]
    try:
        for b in sent[:60]:
            writer.submit(sid, b)
        time.sleep(0.1)
        for b in sent[60:]:  # keeps accepting while failing
            writer.submit(sid, b)
        assert recovered.wait(10), "on_recovered never fired"
        assert writer.flush(timeout=10)
    finally:
        writer.close()
    assert len(errors) == 1 and flaky.calls > 3
    assert db.repository.waveform_blocks(sid) == sent


def test_unstorable_blocks_fail_in_the_caller(db: Database, sid: int) -> None:
    writer = StoreWriter(db.repository)
    try:
        with pytest.raises(ValueError, match="no time"):
            writer.submit(sid, WaveformBlock("pleth", RATE, (1, 2)))
        with pytest.raises(ValueError, match="32"):
            writer.submit(sid, replace(block(0), samples=(2**40,)))
        with pytest.raises(ValueError, match="rate"):
            writer.submit(sid, replace(block(0), rate_hz=0))
        assert writer.pending == 0
    finally:
        writer.close()


def test_migration_0005_goes_down_and_up(db_url: str) -> None:
    with open_database(db_url) as database:
        sid = database.repository.create_session(source="record", protocol="p", started=T0)
        database.repository.insert_waveforms(sid, [block(0)])
        cfg = db_module._alembic_config()
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        assert "waveform_blocks" not in inspect(database.engine).get_table_names()
    with open_database(db_url) as database:  # opening migrates to head again
        indexes = {ix["name"] for ix in inspect(database.engine).get_indexes("waveform_blocks")}
        assert indexes == {"ix_waveform_blocks_session_id_t_start_us"}
        assert database.repository.waveform_blocks(sid) == []


# -- size ----------------------------------------------------------------------------------
def _bytes_on_disk(database: Database, table: str) -> int:
    """The pages a table and its indexes take (SQLite: the whole file, after a checkpoint)."""
    with database.engine.connect() as conn:
        if database.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        return int(conn.execute(
            text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar_one())


def test_an_hour_of_75_hz_pleth_is_compact(db: Database, sid: int) -> None:
    blocks = [block(i) for i in range(10_800)]  # 60 min x 3 blocks/s
    before = _bytes_on_disk(db, "waveform_blocks")
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine, "commit", count)
    writer = StoreWriter(db.repository)
    started = time.perf_counter()
    try:
        for b in blocks:
            writer.submit(sid, b)
        assert writer.flush(timeout=60)
        elapsed = time.perf_counter() - started
        per_sample = (_bytes_on_disk(db, "waveform_blocks") - before) / (len(blocks) * N)
        # The alternative we did not take, in the same database: a ``readings`` row per sample.
        before = _bytes_on_disk(db, "readings")
        for i in range(27_000):
            writer.submit(sid, Reading(Vital.PI, i % 256, t_received=T0 + timedelta(
                microseconds=i * 13_333)))
        assert writer.flush(timeout=60)
        per_row = (_bytes_on_disk(db, "readings") - before) / 27_000
    finally:
        writer.close()
        event.remove(db.engine, "commit", count)
    print(f"\n{db.engine.dialect.name}: 10,800 blocks (270,000 samples) written in "
          f"{elapsed:.2f} s; {per_sample:.2f} bytes/sample on disk "
          f"(a row per sample: {per_row:.1f} bytes)")
    with db.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(WaveformBlockRow)).scalar_one()
    assert rows == 10_800
    assert commits <= 150
    assert per_sample <= 10.0
    assert per_sample * 4 < per_row
    trace = db.repository.waveforms(sid)
    assert len(trace) == 270_000
    assert trace.samples[-N:].tolist() == list(blocks[-1].samples)
