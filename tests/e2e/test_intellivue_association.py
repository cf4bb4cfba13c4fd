"""Done when: the app keeps the IntelliVue association alive for 10 simulated minutes,
re-associates after the monitor drops off the line and returns, and a refused association is
reported as a clear device error.

Real serial path: ``python -m simulators --protocol intellivue --pty`` as a subprocess and a
``SerialLink`` in this process on a ``ScaledClock`` at the simulator's speed, so the codec's
keep-alives, retries and silence checks run in simulated seconds (10 simulated minutes take
about 30 s). The simulated monitor stops sending after 120 simulated seconds without a message
from the client; the negative control shows that it really does.
"""

from __future__ import annotations

import itertools
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from infusion_monitor.clock import ScaledClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event
from infusion_monitor.devices.intellivue import IntelliVueCodec
from infusion_monitor.devices.link import SerialLink
from infusion_monitor.vitals import Reading, Vital

pytestmark = pytest.mark.timeout(240)

SPEED = 20
START = "2026-05-04T09:00:00Z"
T0 = datetime.fromisoformat(START)
REPO = Path(__file__).resolve().parents[2]


class Simulator:
    """The simulated IntelliVue on a pty; its device path; stopped and reaped at teardown."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--protocol", "intellivue", "--pty",
             "--link", str(tmp / "ttySIM0"), "--speed", str(SPEED), "--start", START, *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        assert ready, "the simulator printed no device path"
        self.path = self.proc.stdout.readline().strip()
        assert self.path, self.proc.stderr.read() if self.proc.stderr else "no path"

    def finish(self, timeout: float) -> None:
        """Wait for the simulated session to end by itself."""
        assert self.proc.wait(timeout) == 0, self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.communicate(timeout=10)


class Recording:
    """A SerialLink on the simulator's pty, collecting what the codec emits."""

    def __init__(self, path: str, codec: IntelliVueCodec) -> None:
        self.codec = codec
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self.link = SerialLink(path, codec, on_events=self._on_events, clock=ScaledClock(SPEED),
                               backoff_s=(0.05, 0.1, 0.2))
        self.link.start()

    def _on_events(self, events) -> None:
        with self._lock:
            self.events.extend(events)

    def hr_times(self) -> list[datetime]:
        with self._lock:
            return sorted(e.t_device for e in self.events
                          if isinstance(e, Reading) and e.vital is Vital.HR and e.t_device)

    def readings(self) -> list[Reading]:
        with self._lock:
            return [e for e in self.events if isinstance(e, Reading)]

    def of_kind(self, kind: DeviceEventKind) -> list[DeviceEvent]:
        with self._lock:
            return [e for e in self.events if isinstance(e, DeviceEvent) and e.kind is kind]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Callable[..., tuple[Simulator, Recording]]]:
    started: list[tuple[Simulator, Recording]] = []

    def start(*sim_args: str, codec: IntelliVueCodec | None = None) -> tuple[Simulator, Recording]:
        sim = Simulator(tmp_path, *sim_args)
        rec = Recording(sim.path, codec or IntelliVueCodec())
        started.append((sim, rec))
        return sim, rec

    try:
        yield start
    finally:
        for sim, rec in started:
            rec.link.stop()
            sim.stop()


def seconds(t: datetime) -> float:
    """Simulated seconds since the monitor's t=0."""
    return (t - T0).total_seconds()


def largest_gap(times: list[datetime]) -> float:
    return max((b - a).total_seconds() for a, b in itertools.pairwise(times))


def test_association_is_kept_alive_for_10_simulated_minutes(session) -> None:
    sim, rec = session("--duration", "605")
    sim.finish(timeout=120)
    rec.link.stop()
    hr = rec.hr_times()
    assert seconds(hr[-1]) >= 597, "readings did not arrive until the end"
    assert seconds(hr[0]) <= 30
    # Five times the monitor's 120-s keep-alive timeout, on one association, with no hole.
    assert rec.codec.associations == 1
    assert largest_gap(hr) <= 5
    assert len(hr) >= 0.95 * (seconds(hr[-1]) - seconds(hr[0]))
    assert rec.of_kind(DeviceEventKind.DEVICE_ERROR) == []
    assert rec.codec.stats.frames_rejected == 0


def test_without_keep_alives_the_monitor_stops_after_about_120_s(session) -> None:
    """Negative control: the same simulator, a client that sends nothing once polling."""

    class NoKeepAlive(IntelliVueCodec):
        def tick(self, monotonic: float) -> None:
            pass  # no keep-alive, no retry, no poll renewal

    sim, rec = session("--duration", "240", codec=NoKeepAlive())
    sim.finish(timeout=60)
    hr = rec.hr_times()
    assert hr, "no data at all: the association never started"
    span = seconds(hr[-1]) - seconds(hr[0])
    assert 115 <= span <= 122, span  # the last client message came just before the first data
    assert seconds(hr[-1]) < 180  # ... and nothing for the last minute of the session


def test_reassociates_after_the_monitor_drops_off_the_line_and_returns(session) -> None:
    sim, rec = session("--duration", "300", "--unplug-seconds", "30")
    rec.wait_for(lambda: rec.hr_times() and seconds(rec.hr_times()[-1]) >= 100, 30,
                 "100 simulated seconds of data")
    sim.proc.send_signal(signal.SIGUSR1)  # pull the cable for 30 simulated seconds
    sim.finish(timeout=60)
    hr = rec.hr_times()
    before = [t for t in hr if seconds(t) < 100]
    after = [t for t in hr if seconds(t) > 140]
    assert before and after
    assert seconds(hr[-1]) >= 290  # data again, up to the end
    assert largest_gap(hr) >= 30  # the unplug
    # A new association after the return. At 20x the codec's 12 s silence check is 0.6 real
    # seconds, so a stalled test machine may legitimately re-associate once more.
    assert rec.codec.associations >= 2
    assert len(rec.of_kind(DeviceEventKind.LINK_DOWN)) >= 1
    assert len(rec.of_kind(DeviceEventKind.LINK_UP)) >= 2


def test_refused_association_is_a_clear_device_error(session) -> None:
    sim, rec = session("--duration", "200", "--refuse-association")
    rec.wait_for(lambda: rec.codec.refusals >= 3, 30, "three refused association requests")
    rec.link.stop()
    assert not rec.link.running
    (error,) = rec.of_kind(DeviceEventKind.DEVICE_ERROR)
    assert error.detail.startswith("IntelliVue refused the association")
    assert "check the monitor's Data Export settings" in error.detail
    assert rec.readings() == []
    assert rec.codec.stats.frames_rejected == 0
    assert sim.proc.poll() is None  # the monitor is still there; it just says no
