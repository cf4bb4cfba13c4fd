"""The one thread that writes readings and events: batched, never blocking callers or dropping."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from infusion_monitor.clock import iso_z, to_us
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.errors import StoreError
from infusion_monitor.store.alarm_log import AlarmEventRecord, event_row
from infusion_monitor.store.repository import time_us
from infusion_monitor.store.waveforms import check_block
from infusion_monitor.vitals import Reading

#: What the writer stores: readings, device events, waveform blocks, and alarm-log rows (so
#: alarm events reach the disk within the same second, from the same thread).
Item = Reading | DeviceEvent | WaveformBlock | AlarmEventRecord

_log = logging.getLogger(__name__)

_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 2.0

#: A write still waiting after this long is a storage fault although nothing has failed: a
#: PostgreSQL table lock, or a server that stopped answering, blocks without an error. SQLite
#: gives up by itself after its busy timeout (5 s, store/db.py), so a shorter lock is no fault.
STALL_S = 10.0

#: Readings and waveform blocks kept in memory while the database cannot take them. Measured
#: (tracemalloc, CPython 3.11): 256 bytes a queued reading, 448 a Nonin pleth block (25
#: samples), so at most ~180 MB; the busiest monitor (Nonin, ~5 items/s) fills it in 22 h, the
#: others later. Beyond it readings and blocks are counted, not kept (see StoreWriter); device
#: events and alarm events are always kept: they are few.
MAX_PENDING = 400_000


class BatchSink(Protocol):
    """What the writer needs of a Repository (tests substitute a failing one)."""

    def insert_batch(
        self, readings: list[tuple[int, Reading]], events: list[tuple[int, DeviceEvent]],
        alarm_rows: Sequence[Mapping[str, Any]] = (),
        waveforms: Sequence[tuple[int, WaveformBlock]] = (),
    ) -> None: ...


class _Dropped:
    """What one session lost to a full memory buffer: how many, from when to when."""

    __slots__ = ("count", "first", "last")

    def __init__(self, t: datetime | None) -> None:
        self.count = 0
        self.first = self.last = t

    def gap_event(self) -> DeviceEvent:
        span = (f" from {iso_z(self.first)} to {iso_z(self.last)}"
                if self.first is not None and self.last is not None else "")
        return DeviceEvent(
            DeviceEventKind.GAP,
            f"not saved: {self.count} readings and waveform blocks{span}; the database was"
            " unavailable for longer than the memory buffer holds",
            count=self.count, t_received=self.last)


class StoreWriter:
    """Queue items from any thread; one thread commits them at least every ``flush_interval`` s.

    When a write fails (disk full, database locked) the batch stays in memory and is retried with
    backoff; ``on_error`` is called once per failure episode (also when a write has waited
    ``stall_s`` without an answer) and ``on_recovered`` when a write succeeds again. With
    ``max_pending`` items in memory, further readings and waveform blocks are counted instead of
    kept: ``on_overflow(count)`` is called at the first of an episode, and once storage works
    again a GAP device event per session records how many were lost and over which span.
    Callbacks run on the writer thread or its stall watchdog, never two at once.
    """

    def __init__(
        self,
        repository: BatchSink,
        *,
        flush_interval: float = 0.2,
        max_batch: int = 1000,
        on_error: Callable[[Exception], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
        on_overflow: Callable[[int], None] | None = None,
        stall_s: float = STALL_S,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._repository = repository
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._on_overflow = on_overflow
        self._stall_s = stall_s
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._episode = threading.Lock()  # failing <-> recovered, and its callback, one at a time
        self._queue: deque[tuple[int, Item]] = deque()
        self._in_flight = 0
        self._submitted = 0
        self._committed = 0
        self._flush_waiters = 0
        self._closing = False
        self._give_up = False
        self._attempt_since: float | None = None  # monotonic start of the write under way
        self._dropped: dict[int, _Dropped] = {}  # not yet noted as a GAP event
        self.written_readings = 0
        self.written_events = 0
        self.written_alarm_events = 0
        self.written_waveform_blocks = 0
        self.dropped = 0  # readings and blocks not kept, in all (stays 0 unless memory filled)
        self.failing = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=False)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, name="store-watchdog",
                                          daemon=False)
        self._watchdog.start()

    @property
    def pending(self) -> int:
        """Items submitted but not yet committed (queued or in a batch being retried)."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def submit(self, session_id: int, item: Item) -> None:
        """Queue a reading, event, waveform block or alarm event; checks it can be stored, never
        waits for disk."""
        if isinstance(item, AlarmEventRecord):
            to_us(item.time)  # a naive time fails here, in the caller, not later
        elif isinstance(item, WaveformBlock):
            check_block(item)  # no time, or a sample beyond 32 bits: fails here, not later
        elif isinstance(item, Reading | DeviceEvent):
            time_us(item)  # a timeless or naive-time item fails here, in the caller, not later
        else:
            raise TypeError(f"cannot store {type(item).__name__}")
        with self._cond:
            if self._closing:
                raise RuntimeError("the store writer is closed")
            full = len(self._queue) + self._in_flight >= self._max_pending
            if full and isinstance(item, Reading | WaveformBlock):
                first = not self._dropped
                self.dropped += 1
                lost = self._dropped.setdefault(session_id, _Dropped(item.t_received))
                lost.count += 1
                lost.last = item.t_received
                total = self.dropped
            else:
                first = False
                self._queue.append((session_id, item))
                self._submitted += 1
                if len(self._queue) == 1 or len(self._queue) >= self._max_batch:
                    self._cond.notify_all()
        if first:
            _log.error("memory for unsaved data is full (%d items): readings are being lost",
                       self._max_pending)
            if self._on_overflow is not None:
                with self._episode:
                    self._notify(self._on_overflow, total)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is committed; False on timeout."""
        with self._cond:
            target = self._submitted
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._committed >= target, timeout)
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Write everything, then stop the thread; False (data still in memory) if timed out."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Give up so the process can exit; ``pending`` tells the caller what was not saved.
            with self._cond:
                self._give_up = True
                self._cond.notify_all()
            self._thread.join()
        self._watchdog.join()
        return self.pending == 0

    def _run(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if not self._write(batch):
                    return
        finally:
            with self._cond:
                self._give_up = True  # stops the watchdog
                self._cond.notify_all()

    def _watch(self) -> None:
        """Raise the fault for a write that neither succeeds nor fails (a lock, a dead server)."""
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._give_up, min(1.0, self._stall_s / 4)):
                    return
                since = self._attempt_since
            waited = 0.0 if since is None else time.monotonic() - since
            if waited < self._stall_s:
                continue
            with self._episode:
                if self.failing or self._attempt_since != since:
                    continue
                self.failing = True
                exc = StoreError(f"saving has waited {waited:.0f} s for the database "
                                 "(locked by another program, or not answering)")
                _log.warning("%s", exc)
                if self._on_error is not None:
                    self._notify(self._on_error, exc)

    def _next_batch(self) -> list[tuple[int, Item]] | None:
        """Block until there is work, gather for up to flush_interval, then take a batch."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closing)
            if self._dropped and not self.failing:
                # Storage works again: what the full buffer lost is noted, once per session.
                self._queue.extend((sid, lost.gap_event()) for sid, lost in self._dropped.items())
                self._submitted += len(self._dropped)
                self._dropped.clear()
            if not self._queue:
                return None
            deadline = time.monotonic() + self._flush_interval
            while (
                len(self._queue) < self._max_batch
                and not self._flush_waiters
                and not self._closing
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(remaining)
            n = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _write(self, batch: list[tuple[int, Item]]) -> bool:
        """Commit one batch, retrying until it succeeds; False only if close() gave up."""
        readings = [(sid, i) for sid, i in batch if isinstance(i, Reading)]
        events = [(sid, i) for sid, i in batch if isinstance(i, DeviceEvent)]
        alarm_rows = [event_row(sid, i) for sid, i in batch if isinstance(i, AlarmEventRecord)]
        blocks = [(sid, i) for sid, i in batch if isinstance(i, WaveformBlock)]
        extra: dict[str, Any] = {}  # without extras: the two-argument call any BatchSink supports
        if alarm_rows:
            extra["alarm_rows"] = alarm_rows
        if blocks:
            extra["waveforms"] = blocks
        backoff = _BACKOFF_FIRST
        while True:
            self._attempt_since = time.monotonic()
            try:
                self._repository.insert_batch(readings, events, **extra)
                break
            # Any failure, even a bug, must keep the data and be reported, never kill the thread.
            except Exception as exc:
                self._attempt_since = None
                with self._episode:
                    if not self.failing:
                        self.failing = True
                        _log.warning("saving to the database failed; retrying: %s", exc)
                        if self._on_error is not None:
                            self._notify(self._on_error, exc)
                with self._cond:
                    if self._cond.wait_for(lambda: self._give_up, backoff):
                        self._queue.extendleft(reversed(batch))
                        self._in_flight = 0
                        return False
                backoff = min(backoff * 2, _BACKOFF_MAX)
        self._attempt_since = None
        with self._cond:
            self._in_flight = 0
            self._committed += len(batch)
            self.written_readings += len(readings)
            self.written_events += len(events)
            self.written_alarm_events += len(alarm_rows)
            self.written_waveform_blocks += len(blocks)
            self._cond.notify_all()
        with self._episode:
            if self.failing:
                self.failing = False
                _log.warning("saving to the database works again")
                if self._on_recovered is not None:
                    self._notify(self._on_recovered)
        return True

    @staticmethod
    def _notify(callback: Callable[..., None], *args: object) -> None:
        """Run a listener; a broken listener is logged, and must not stop the writing."""
        try:
            callback(*args)
        except Exception:
            _log.exception("store writer listener %r failed", callback)
