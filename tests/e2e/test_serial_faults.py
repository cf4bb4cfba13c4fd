"""Issue 8, item 3: serial faults per protocol, each alarmed within its delay and recovered from.

For each monitor (S/5, IntelliVue, Masimo, Nonin) the simulator runs as a subprocess on a real
pty and this process records it with ``LiveRecording``, the object behind the GUI and ``record``:
the real ``SerialLink`` on pyserial, the recorder, the store writer into a real SQLite file and
the alarm engine. Its clock is a ``ScaledClock`` at the simulator's speed, as ``demo --speed``
runs it, so the 10-s link-lost delay takes 2.5 real seconds; the link's reconnect backoff stays
in real seconds. The faults:

a. unplug and replug (SIGUSR1 pulls the simulator's cable, a second one plugs it back in);
b. the port vanishes (the simulator is killed and its device node goes, as udev removes a
   pulled USB adapter's; later a new simulator appears on the same path);
c. the port is held by another process (pyserial's exclusive lock plus TIOCEXCL) when recording
   starts, and let go later;
d. a wrong baud rate. A pty has no baud rate, so the simulator (``--wrong-baud N``, SIGUSR2)
   mangles the bytes both ways exactly as a UART set to N baud reads a line running at the
   monitor's rate (``simulators.noise.misread``): the app gets garbage, the monitor cannot read
   the app's requests. SIGUSR2 again sets the line right;
e. the monitor stops answering (SIGSTOP), then carries on (SIGCONT).

Each test checks that the link-lost alarm (technical, high priority) starts exactly
``LINK_TIMEOUT_S`` after the last frame before the fault and is published promptly, that it ends
by itself with the first frame after the repair, that readings resume, and that what was stored
is contained in what the simulator put on the wire (its truth logs, as a multiset): nothing
invented, nothing stored twice. The measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from infusion_monitor.clock import ScaledClock
from infusion_monitor.config import Settings
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event
from infusion_monitor.session.alarm_types import AlarmChange, ChangeKind
from infusion_monitor.session.alarms import LINK_TIMEOUT_S
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.session.thresholds import Priority
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.vitals import Reading

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys and signals"),
]

#: The simulator's speed and the app's clock rate.
SPEED = 4.0
#: Clock seconds an alarm may be published after it is due (the ticker runs every 1/SPEED s,
#: plus scheduling on a loaded 2-core machine): 1.5 real seconds.
PUBLISH_SLACK_S = 6.0
#: Real seconds any wait may take (the reconnect backoff reaches 4 s; the machine is loaded).
WAIT_S = 45.0
#: How often each monitor sends a frame the alarm engine counts (simulated seconds).
FRAME_EVERY_S = {"datex-s5": 5.0, "intellivue": 1.0, "masimo": 1.0, "nonin": 1.0}
#: A plausible wrong setting of the app's port for each monitor.
WRONG_BAUD = {"datex-s5": 9600, "intellivue": 9600, "masimo": 19200, "nonin": 19200}
PROTOCOLS = tuple(FRAME_EVERY_S)
#: Device events the alarm engine counts as a frame from the monitor (session/alarms.py).
FRAME_EVENTS = (DeviceEventKind.PARAMETER_STATUS, DeviceEventKind.PROBE_OFF,
                DeviceEventKind.DATA_RESUMED)
LINK_LOST = "link_lost"

#: Holds a port as another program would: pyserial's exclusive lock, and TIOCEXCL (which keeps
#: out anyone without CAP_SYS_ADMIN), until its stdin closes.
HOLDER = """
import fcntl, sys, termios, serial
port = serial.Serial(sys.argv[1], exclusive=True)
fcntl.ioctl(port.fileno(), termios.TIOCEXCL)
print("held", flush=True)
sys.stdin.read()
port.close()
"""


def carried_values(path: Path) -> Counter[tuple[str, float, datetime | None]]:
    """Every value the frames in a truth log carried, repeats included (no device time)."""
    out: Counter[tuple[str, float, datetime | None]] = Counter()
    for line in path.read_text().splitlines():
        frame = json.loads(line)
        for vital, value in frame.get("carried", {}).items():
            if value is not None:
                out[(vital, float(value), None)] += 1
    return out


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the store engine is not what these faults exercise (the other e2e tests run
    on both), and twenty real-time fault runs are long enough once."""
    return sqlite_url


class Bedside:
    """Simulators on one device path, recorded by one in-process ``LiveRecording``."""

    def __init__(self, run, protocol: str) -> None:
        self.run = run
        run.protocol = protocol
        self.protocol = protocol
        self.clock = ScaledClock(SPEED)
        self.database = run.open_database()
        self.truths: list[Path] = []
        self.recording: LiveRecording | None = None
        self._events: list[Event] = []
        self._changes: list[tuple[datetime, AlarmChange]] = []  # (published at, change)
        self._lock = threading.Lock()
        self.sim_started = time.monotonic()
        self.figures: list[str] = []

    # -- processes ------------------------------------------------------------------------------
    def simulator(self, *args: str) -> str:
        """A new simulated monitor with its own truth log; returns the stable device path."""
        self.run.truth = self.run.tmp / f"truth{len(self.truths)}.jsonl"
        self.truths.append(self.run.truth)
        self.sim_started = time.monotonic()
        return self.run.simulator("--speed", f"{SPEED:g}", *args)

    def signal(self, signum: int) -> datetime:
        """Send ``signum`` to the simulator; returns the app's clock time just before."""
        at = self.clock.now()
        self.run.sim.send_signal(signum)
        return at

    def record(self, port: str) -> LiveRecording:
        recording = LiveRecording(
            self.database, protocol=self.protocol, url=port, source="record", clock=self.clock,
            settings=Settings(),
        )
        recording.alarms.add_listener(self._on_alarms)
        recording.recorder.subscribe(self._on_events)
        self.recording = recording.start()
        return recording

    def close(self) -> None:
        if self.recording is not None:
            self.recording.stop()
        self.database.close()

    def _on_alarms(self, changes: Sequence[AlarmChange]) -> None:
        at = self.clock.now()
        with self._lock:
            self._changes += [(at, c) for c in changes]

    def _on_events(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._events += events

    # -- what the app saw -------------------------------------------------------------------------
    def readings(self, after: datetime | None = None) -> list[Reading]:
        with self._lock:
            return [e for e in self._events if isinstance(e, Reading)
                    and (after is None or e.t_received > after)]

    def device_events(self, kind: DeviceEventKind) -> list[DeviceEvent]:
        with self._lock:
            return [e for e in self._events if isinstance(e, DeviceEvent) and e.kind is kind]

    def link_changes(self, kind: ChangeKind) -> list[tuple[datetime, AlarmChange]]:
        with self._lock:
            return [(at, c) for at, c in self._changes
                    if c.condition == LINK_LOST and c.kind is kind]

    def frame_times(self) -> list[datetime]:
        """When each frame the alarm engine counts was received, and when it started watching."""
        assert self.recording is not None
        with self._lock:
            return [self.recording.alarms.engine.origin, *(
                e.t_received for e in self._events if e.t_received is not None and (
                    isinstance(e, Reading)
                    or (isinstance(e, DeviceEvent) and e.kind in FRAME_EVENTS)))]

    def wait_for(self, predicate: Callable[[], object], what: str) -> None:
        self.run.wait_for(lambda: bool(predicate()), WAIT_S, what)

    def wait_readings(self, after: datetime | None, what: str, n: int = 3) -> None:
        self.wait_for(lambda: len(self.readings(after)) >= n, what)

    # -- the checks every fault shares -----------------------------------------------------------
    def expect_link_lost(self, fault: datetime, name: str) -> AlarmChange:
        """The link-lost alarm: due ``LINK_TIMEOUT_S`` after the last frame, published promptly."""
        self.wait_for(lambda: self.raised_after(fault), f"the link-lost alarm ({name})")
        published, raised = self.raised_after(fault)[0]
        last = max(t for t in self.frame_times() if t < raised.time)
        assert abs(raised.time - (last + timedelta(seconds=LINK_TIMEOUT_S))) < timedelta(
            milliseconds=5), "link lost must start exactly its delay after the last frame"
        since_fault = (raised.time - fault).total_seconds()
        lead = FRAME_EVERY_S[self.protocol] + PUBLISH_SLACK_S
        assert LINK_TIMEOUT_S - lead <= since_fault <= LINK_TIMEOUT_S + PUBLISH_SLACK_S, (
            since_fault)
        latency = (published - raised.time).total_seconds()
        assert 0 <= latency <= PUBLISH_SLACK_S, latency
        assert raised.priority == "technical"
        assert self.recording is not None
        shown = [a for a in self.recording.alarms.active() if a.uid == raised.alarm_uid]
        if shown:  # still on the bar (it may already have ended if the fault was short)
            assert shown[0].technical and shown[0].priority is Priority.HIGH
            assert shown[0].text.startswith("Monitor link lost")
        detected = (published - fault).total_seconds()
        self.figures.append(f"{name}: link lost published {detected:.1f} s after the fault "
                            f"(starts {since_fault:.1f} s after it)")
        return raised

    def expect_associations(self, n: int) -> None:
        """IntelliVue: exactly ``n`` associations, the last one delivering readings."""
        assert self.recording is not None
        codec = self.recording.link.codec
        self.wait_for(lambda: codec.associations >= n,  # type: ignore[attr-defined]
                      f"association {n}")
        self.wait_readings(self.clock.now(), f"readings on association {n}")
        assert codec.associations == n  # type: ignore[attr-defined]

    def raised_after(self, fault: datetime) -> list[tuple[datetime, AlarmChange]]:
        return [(at, c) for at, c in self.link_changes(ChangeKind.RAISED) if c.time > fault]

    def expect_recovery(self, raised: AlarmChange, repaired: datetime, name: str) -> None:
        """The alarm ends by itself with the first frame after the repair; readings resume."""
        def ended() -> list[AlarmChange]:
            return [c for _, c in self.link_changes(ChangeKind.ENDED)
                    if c.alarm_uid == raised.alarm_uid]

        self.wait_for(ended, f"the link-lost alarm to end ({name})")
        end = ended()[0].time
        assert end >= repaired, "the alarm ended before the fault was repaired"
        assert end in self.frame_times(), "the alarm ends with a frame from the monitor"
        self.wait_readings(repaired, f"readings after the repair ({name})")
        after = (end - repaired).total_seconds()
        self.figures.append(f"{name}: data back and alarm ended {after:.1f} s after the repair")

    def finish(self, *, thinned: bool = True) -> int:
        """Stop recording; check the database against the truth; print the figures.

        ``thinned=False`` checks a Nonin's readings against every value its packets carried:
        which repeats the truth log keeps counts packets the app could not decode (garbage).
        """
        assert self.recording is not None
        self.recording.stop()
        sid = self.recording.session_id
        readings = self.database.repository.readings(sid)
        sent: Counter[tuple[str, float, datetime | None]] = Counter()
        for path in self.truths:
            self.run.truth = path
            sent += self.run.truth_values() if thinned else carried_values(path)
        stored = Counter((r.vital.value, r.value, r.t_device) for r in readings)
        assert stored, "nothing was recorded"
        assert not stored - sent, f"stored but not sent (or stored twice): {stored - sent}"
        if self.protocol != "nonin":  # a Nonin frame carries no time to tell repeats apart
            assert len(stored) == len(readings)
        logged = [a for a in AlarmLog(self.database.engine).alarms(sid)
                  if a.condition == LINK_LOST]
        seen = self.link_changes(ChangeKind.RAISED)
        assert [(a.uid, a.start) for a in logged] == [(c.alarm_uid, c.time) for _, c in seen]
        assert all(a.end is not None and a.priority == "technical" for a in logged)
        print(f"\n{self.protocol}: " + "; ".join(self.figures))
        return sid


@pytest.fixture
def bedside(run) -> Iterator[Callable[[str], Bedside]]:
    made: list[Bedside] = []

    def make(protocol: str) -> Bedside:
        made.append(Bedside(run, protocol))
        return made[-1]

    try:
        yield make
    finally:
        for b in made:
            for proc in run.procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)  # a stopped simulator cannot die cleanly
            b.close()


def start(bedside: Callable[[str], Bedside], protocol: str, *sim_args: str) -> Bedside:
    b = bedside(protocol)
    b.record(b.simulator(*sim_args))
    b.wait_readings(None, "the first readings")
    return b


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unplug_then_replug(bedside, protocol: str) -> None:
    b = start(bedside, protocol, "--unplug-seconds", "3600")
    pulled = b.signal(signal.SIGUSR1)
    raised = b.expect_link_lost(pulled, "unplug")
    assert b.device_events(DeviceEventKind.LINK_DOWN), "the pulled cable is a device event"
    replugged = b.signal(signal.SIGUSR1)  # the second one plugs it back in at once
    b.expect_recovery(raised, replugged, "replug")
    if protocol == "intellivue":  # a new association after the return
        b.expect_associations(2)
    b.finish()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_port_vanishes_and_a_new_one_appears(bedside, protocol: str) -> None:
    b = start(bedside, protocol)
    link = Path(b.run.tmp / "ttySIM0")
    gone = b.clock.now()
    b.run.sim.kill()
    b.run.sim.wait(10)
    link.unlink()  # the device node goes with the device, as udev removes it
    raised = b.expect_link_lost(gone, "port vanished")
    down = b.device_events(DeviceEventKind.LINK_DOWN)
    assert down
    assert all(f"{link} disconnected" in e.detail for e in down), [e.detail for e in down]
    # The same patient on a new monitor later on: its clock goes on from where the first left.
    skip = (time.monotonic() - b.sim_started) * SPEED + 60
    appeared = b.clock.now()
    assert b.simulator("--skip", f"{skip:.0f}") == str(link)
    b.expect_recovery(raised, appeared, "new port")
    assert b.recording is not None and b.recording.link.reconnects >= 1
    b.finish()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_port_held_by_another_process(bedside, protocol: str) -> None:
    b = bedside(protocol)
    port = b.simulator()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, port], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b.run.procs.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held", (
        holder.stderr.read() if holder.stderr else "")
    started = b.clock.now()
    b.record(port)
    raised = b.expect_link_lost(started, "port busy")
    (down, *_) = b.device_events(DeviceEventKind.LINK_DOWN)
    assert f"{port} is busy" in down.detail, down.detail
    assert b.recording is not None
    (shown,) = [a for a in b.recording.alarms.active() if a.uid == raised.alarm_uid]
    assert f"{port} is busy" in shown.text, shown.text
    assert b.readings() == []
    released = b.clock.now()
    holder.communicate(timeout=10)  # closes its stdin: it lets go
    assert holder.returncode == 0
    b.expect_recovery(raised, released, "port let go")
    b.finish()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_baud_rate_stores_no_garbage_and_recovers(bedside, protocol: str) -> None:
    b = start(bedside, protocol, "--wrong-baud", str(WRONG_BAUD[protocol]))
    assert b.recording is not None
    stats = b.recording.link.codec.stats
    wrong = b.signal(signal.SIGUSR2)
    raised = b.expect_link_lost(wrong, "wrong baud")
    # Garbage keeps coming, and the app says so: bytes, but no frame in them.
    bytes_before = stats.bytes_in
    b.wait_for(lambda: stats.bytes_in > bytes_before + 100, "garbage to arrive")
    (no_data,) = b.device_events(DeviceEventKind.NO_DATA)
    assert "bytes came: wrong baud rate or protocol?" in no_data.detail, no_data.detail
    (shown,) = b.recording.alarms.active()
    assert shown.uid == raised.alarm_uid and no_data.detail in shown.text, shown.text
    right = b.signal(signal.SIGUSR2)
    b.expect_recovery(raised, right, "baud set right")
    rejected = b.device_events(DeviceEventKind.FRAME_REJECTED)
    assert all(wrong < e.t_received for e in rejected)  # nothing before: the line was right
    b.figures.append(f"{stats.frames_rejected} frames rejected")
    b.finish(thinned=protocol != "nonin")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_monitor_stops_answering(bedside, protocol: str) -> None:
    b = start(bedside, protocol)
    stopped = b.signal(signal.SIGSTOP)
    try:
        raised = b.expect_link_lost(stopped, "monitor silent")
        if protocol == "intellivue":  # the codec tries a new association on a silent line
            assert b.recording is not None
            b.wait_for(lambda: b.recording.link.codec.phase.value != "polling",
                       "the codec to give up the silent association")
    finally:
        resumed = b.signal(signal.SIGCONT)
    b.expect_recovery(raised, resumed, "monitor answers again")
    assert b.recording is not None
    assert os.path.exists(b.recording.url)
    if protocol == "intellivue":
        b.expect_associations(2)
    b.finish()
