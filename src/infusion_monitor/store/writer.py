"""The one thread that writes readings and events: batched, never blocking callers or dropping."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from infusion_monitor.clock import to_us
from infusion_monitor.devices.base import DeviceEvent, WaveformBlock
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


class BatchSink(Protocol):
    """What the writer needs of a Repository (tests substitute a failing one)."""

    def insert_batch(
        self, readings: list[tuple[int, Reading]], events: list[tuple[int, DeviceEvent]],
        alarm_rows: Sequence[Mapping[str, Any]] = (),
        waveforms: Sequence[tuple[int, WaveformBlock]] = (),
    ) -> None: ...


class StoreWriter:
    """Queue items from any thread; one thread commits them at least every ``flush_interval`` s.

    When a write fails (disk full, database locked) the batch stays in memory and is retried with
    backoff; ``on_error`` is called once per failure episode and ``on_recovered`` when a write
    succeeds again. Callbacks run on the writer thread.
    """

    def __init__(
        self,
        repository: BatchSink,
        *,
        flush_interval: float = 0.2,
        max_batch: int = 1000,
        on_error: Callable[[Exception], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self._repository = repository
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, Item]] = deque()
        self._in_flight = 0
        self._submitted = 0
        self._committed = 0
        self._flush_waiters = 0
        self._closing = False
        self._give_up = False
        self.written_readings = 0
        self.written_events = 0
        self.written_alarm_events = 0
        self.written_waveform_blocks = 0
        self.failing = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=False)
        self._thread.start()

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
            self._queue.append((session_id, item))
            self._submitted += 1
            if len(self._queue) == 1 or len(self._queue) >= self._max_batch:
                self._cond.notify_all()

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
        return self.pending == 0

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not self._write(batch):
                return

    def _next_batch(self) -> list[tuple[int, Item]] | None:
        """Block until there is work, gather for up to flush_interval, then take a batch."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closing)
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
            try:
                self._repository.insert_batch(readings, events, **extra)
                break
            # Any failure, even a bug, must keep the data and be reported, never kill the thread.
            except Exception as exc:
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
        with self._cond:
            self._in_flight = 0
            self._committed += len(batch)
            self.written_readings += len(readings)
            self.written_events += len(events)
            self.written_alarm_events += len(alarm_rows)
            self.written_waveform_blocks += len(blocks)
            self._cond.notify_all()
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
