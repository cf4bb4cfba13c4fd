"""The recorder: stamps every decoded event, marks artifacts, stores it and fans it out."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from infusion_monitor.clock import Clock, SystemClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event, WaveformBlock
from infusion_monitor.vitals import NIBP, Reading, mark_artifacts

log = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[Event]], None]


class Sink:
    """Where the recorder stores events (a StoreWriter satisfies this)."""

    def submit(self, session_id: int, item: Event) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


def stamp_artifacts(readings: Iterable[Reading]) -> list[Reading]:
    """Apply the artifact rules per measurement: readings sharing a device time form one frame."""
    out = list(readings)
    nibp: dict[datetime | None, list[int]] = {}
    for i, r in enumerate(out):
        if r.vital in NIBP:
            nibp.setdefault(r.t_device, []).append(i)
        else:
            out[i] = mark_artifacts([r])[0]
    for indices in nibp.values():
        for i, judged in zip(indices, mark_artifacts([out[i] for i in indices]), strict=True):
            out[i] = judged
    return out


class Recorder:
    """Receives events from a link (any thread) and passes them to the store and subscribers.

    With ``device_time=True`` (imports) the receipt time is the device's own time, since there
    was no receipt; otherwise it is the injected clock's time. Live, rejected frames within one
    batch are coalesced into one event, so a wrong baud rate cannot flood the event log; in an
    import each keeps its own place in the capture.
    """

    def __init__(
        self,
        session_id: int,
        *,
        sink: Sink | None = None,
        clock: Clock | None = None,
        device_time: bool = False,
    ) -> None:
        self.session_id = session_id
        self.sink = sink
        self.clock = clock or SystemClock()
        self.device_time = device_time
        self.counts: Counter[str] = Counter()
        self.rejected_frames = 0
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._last_time: datetime | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def handle(self, events: Sequence[Event]) -> list[Event]:
        """Stamp, judge, store and publish one batch; returns what was recorded."""
        stamped = self._stamp(events)
        if self.sink is not None:
            for item in stamped:
                self.sink.submit(self.session_id, item)
        for item in stamped:
            if isinstance(item, Reading):
                self.counts[item.vital.value] += 1
            elif isinstance(item, WaveformBlock):
                self.counts["waveform_samples"] += len(item.samples)
            elif item.kind is DeviceEventKind.FRAME_REJECTED:
                self.rejected_frames += item.count
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(stamped)
            except Exception:  # a broken display must never stop the recording
                log.exception("subscriber %r failed", subscriber)
        return stamped

    def note(self, kind: DeviceEventKind, detail: str) -> None:
        """Record an event the app itself produces (recording started/stopped)."""
        self.handle([DeviceEvent(kind, detail)])

    def _stamp(self, events: Sequence[Event]) -> list[Event]:
        judged = iter(stamp_artifacts(e for e in events if isinstance(e, Reading)))
        out: list[Event] = []
        rejected = 0
        now = self.clock.now()
        for e in events:
            if isinstance(e, WaveformBlock):
                t = (e.t_device or self._last_time or now) if self.device_time else now
                out.append(replace(e, t_received=t))
            elif isinstance(e, Reading):
                r = next(judged)
                t = (r.t_device or self._last_time or now) if self.device_time else now
                self._last_time = r.t_device or self._last_time
                out.append(replace(r, t_received=t))
            elif e.kind is DeviceEventKind.FRAME_REJECTED and not self.device_time:
                rejected += e.count  # coalesced below: garbage must not flood the event log
            else:
                t = (e.t_device or self._last_time or now) if self.device_time else now
                out.append(replace(e, t_received=t))
        if rejected:
            t = (self._last_time or now) if self.device_time else now
            details = [e.detail for e in events if isinstance(e, DeviceEvent)
                       and e.kind is DeviceEventKind.FRAME_REJECTED]
            detail = details[0] if rejected == 1 else f"{rejected} frames rejected: {details[0]}"
            out.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, detail, count=rejected,
                                   t_received=t))
        return out

