"""Where the simulated monitor's bytes go: a pty, a pyserial URL or a file; plus the truth log.

A protocol stream (``MonitorStream``) turns patient samples into frames and answers requests; the
code here moves bytes and simulated time and knows nothing of any protocol.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import tempfile
import termios
import time
import tty
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import serial

from simulators.patient import PatientModel, Sample

#: Longest real-time wait in the live loop, so signals and unplug times are acted on promptly.
MAX_WAIT_S = 0.05
#: Before a pull or an exit the pty is left open this long (real seconds) with nothing more
#: written: closing the master discards whatever the reader has not yet read, and the truth log
#: must list exactly the frames a reader could receive.
DRAIN_S = 0.3


@dataclass(frozen=True, slots=True)
class Frame:
    """One record as sent: the bytes, the simulated time and the sample it encodes.

    ``r_time`` is the device timestamp the frame carries (epoch seconds), ``None`` when the
    protocol has none. ``values`` is what a correct decoder yields from this frame; when it is
    ``None`` the truth log derives it from ``sample`` the S/5 way (see ``TruthLog.values``).
    ``carried``, when set, is every value the frame carries, repeats included (a Nonin's
    repeats are thinned in ``values`` by packet count, which garbage between packets upsets).
    """

    t: float
    r_time: float | None
    data: bytes
    sample: Sample
    values: dict[str, float | None] | None = None
    carried: dict[str, float | None] | None = None


class MonitorStream(Protocol):
    """One protocol's side of the conversation (see ``simulators.datex.DatexS5Stream``)."""

    def connection_made(self) -> None:
        """A new reader (or a replugged cable): send nothing until it asks again."""

    def start_unsolicited(self, t: float) -> None:
        """Send from ``t`` without being asked (file output has no reader)."""

    def receive_data(self, data: bytes, t: float) -> None:
        """Bytes from the reader at simulated time ``t`` (requests to start or stop)."""

    def next_due(self) -> float | None:
        """Simulated time of the next frame, or ``None`` while not sending."""

    def frames_until(self, t: float) -> list[Frame]:
        """Every frame due at or before ``t``, in order; advances the schedule."""


class LineMismatch(Protocol):
    """A line fault that mangles bytes both ways (see ``simulators.noise.BaudMismatch``)."""

    def to_reader(self, data: bytes) -> bytes: ...

    def to_monitor(self, data: bytes) -> bytes: ...


class TruthLog:
    """JSON lines of what a correct decoder must yield from the frames actually written.

    NIBP is logged only in the frame where a new measurement first appears, mirroring the app's
    codec: it reports NIBP when the values change or the measuring flag goes from set to clear.
    Each line is flushed at once, so the file is complete even if the simulator is killed.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._file: IO[str] | None = open(path, "w", encoding="utf-8") if path else None
        self._last_nibp: tuple[int, int, int] | None = None
        self._was_measuring = False

    def values(self, sample: Sample) -> dict[str, int | None]:
        """The values this frame yields; updates the NIBP memory exactly as the codec does."""
        out: dict[str, int | None] = {"hr": sample.hr, "pr": sample.pr, "spo2": sample.spo2}
        nibp = sample.nibp
        finished = self._was_measuring and not sample.nibp_measuring
        if nibp is not None:
            key = (nibp.sys, nibp.dia, nibp.mean)
            if key != self._last_nibp or finished:
                out.update(nibp_sys=nibp.sys, nibp_dia=nibp.dia, nibp_mean=nibp.mean)
                self._last_nibp = key
                self._was_measuring = False
        if sample.nibp_measuring:
            self._was_measuring = True
        return out

    def record(self, frame: Frame) -> None:
        """Log one frame that was written to the wire."""
        values = frame.values if frame.values is not None else self.values(frame.sample)
        if self._file is not None:
            # ``sent``: wall-clock epoch seconds it went on the wire, so a test can tell what a
            # reader could have had before a given moment (a crash, in the recovery tests).
            line = {"r_time": frame.r_time, "t": frame.t, "values": values, "sent": time.time()}
            if frame.carried is not None:
                line["carried"] = frame.carried
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Transport(ABC):
    """A byte pipe to the reader that can be unplugged and plugged back in."""

    plugged: bool = True

    @abstractmethod
    def read(self, timeout: float) -> bytes | None:
        """Wait up to ``timeout`` real seconds for bytes; ``None`` if the reader went away."""

    @abstractmethod
    def write(self, data: bytes) -> bool:
        """Write one whole frame; ``False`` if it could not be written."""

    @abstractmethod
    def unplug(self) -> None:
        """Vanish as a pulled USB cable does."""

    @abstractmethod
    def replug(self) -> None:
        """Come back as a fresh device."""

    @abstractmethod
    def close(self) -> None:
        """Release everything (idempotent)."""


class PtyTransport(Transport):
    """A pseudo-terminal whose slave is reached through a stable symlink.

    The slave fd is closed after setup so that reading the master raises EIO while no reader has
    it open; that is how the simulator notices a reader going away.
    """

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self._own_dir: Path | None = None
        if link is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="infusion-sim-"))
            link = self._own_dir / "ttySIM0"
        self.link = Path(link)
        self._master: int | None = None
        self.slave_name = ""
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_name = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        tmp = self.link.with_name(self.link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self.slave_name, tmp)
        os.replace(tmp, self.link)  # atomic: a reader never sees a half-made link
        self.plugged = True

    def read(self, timeout: float) -> bytes | None:
        if self._master is None:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # No reader has the slave open: the master stays readable (EIO) until one does.
            self._forget_line_settings()
            time.sleep(timeout)
            return None

    def _forget_line_settings(self) -> None:
        """Let the next reader set up the line as on a fresh port: a pty keeps the last
        reader's CRTSCTS, which it cannot honour, and then refuses (EINVAL) a reader that asks
        for it again, e.g. ``record --resume`` after a crash (real UARTs have no such quirk)."""
        assert self._master is not None
        attrs = termios.tcgetattr(self._master)
        if attrs[2] & termios.CRTSCTS:
            attrs[2] &= ~termios.CRTSCTS
            termios.tcsetattr(self._master, termios.TCSANOW, attrs)

    def write(self, data: bytes) -> bool:
        if self._master is None:
            return False
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                return False
            view = view[n:]
            if view:
                left = deadline - time.monotonic()
                # A reader that stopped reading fills the pty buffer: give up on this frame.
                if left <= 0 or not select.select([], [self._master], [], left)[1]:
                    return False
        return True

    def _close_master(self) -> None:
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def unplug(self) -> None:
        if self._master is not None:
            time.sleep(DRAIN_S)
        self._close_master()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.plugged = False

    def replug(self) -> None:
        self._open()

    def close(self) -> None:
        self.unplug()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None


class PortTransport(Transport):
    """Any pyserial URL: a real port, ``socket://host:port``, ``rfc2217://host:port``."""

    def __init__(self, url: str, baudrate: int = 19200, retry_s: float = 1.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.retry_s = retry_s
        self._port: serial.SerialBase | None = None
        self._next_try = 0.0
        self._port = self._connect()

    def _connect(self) -> serial.SerialBase:
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0)

    def _drop(self) -> None:
        if self._port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
            self._port = None
        self._next_try = time.monotonic() + self.retry_s

    def read(self, timeout: float) -> bytes | None:
        if not self.plugged:
            time.sleep(timeout)
            return None
        if self._port is None:
            time.sleep(timeout)
            if time.monotonic() < self._next_try:
                return None
            try:
                self._port = self._connect()
            except (serial.SerialException, OSError, ValueError):
                self._next_try = time.monotonic() + self.retry_s
                return None
        try:
            self._port.timeout = timeout
            return bytes(self._port.read(4096))
        except (serial.SerialException, OSError):
            self._drop()
            return None

    def write(self, data: bytes) -> bool:
        if self._port is None:
            return False
        try:
            self._port.write(data)
        except (serial.SerialException, OSError):
            self._drop()
            return False
        return True

    def unplug(self) -> None:
        self._drop()
        self.plugged = False

    def replug(self) -> None:
        self.plugged = True
        self._next_try = 0.0

    def close(self) -> None:
        self._drop()


def write_file(
    stream: MonitorStream,
    model: PatientModel,
    path: str | os.PathLike[str],
    duration: float,
    truth: TruthLog,
) -> int:
    """Write the whole session's frames at once (no reader, no waiting); returns the count.

    Frames that fall while the scenario has the cable pulled are left out, as a capture would be.
    """
    stream.start_unsolicited(0)
    count = 0
    with open(path, "wb") as out:
        for frame in stream.frames_until(duration - 1e-9):
            if model.is_unplugged(frame.t):
                continue
            out.write(frame.data)
            truth.record(frame)
            count += 1
    return count


@dataclass(slots=True)
class Controls:
    """Flags the signal handlers set and the live loop acts on."""

    stop: bool = False
    toggle_unplug: bool = False
    toggle_wrong_baud: bool = False


def run_live(
    stream: MonitorStream,
    model: PatientModel,
    transport: Transport,
    truth: TruthLog,
    *,
    duration: float,
    speed: float = 1.0,
    unplug_s: float = 60.0,
    controls: Controls | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    skip: float = 0.0,
    mismatch: LineMismatch | None = None,
    wait_for_reader: bool = False,
) -> None:
    """Play the session in (scaled) real time until ``duration`` or ``controls.stop``.

    With ``wait_for_reader`` the session clock starts when a reader first opens the port (a
    test's recorder may take seconds to start on a loaded machine); otherwise at once, as a
    monitor that is already running.

    ``skip`` starts the session at simulated second ``skip`` instead of 0 (to reach a late
    scenario event quickly); ``duration`` is still the simulated second it ends at.

    A manual unplug (``controls.toggle_unplug``, set on SIGUSR1) lasts ``unplug_s`` simulated
    seconds; a second toggle during it plugs back in at once.

    ``controls.toggle_wrong_baud`` (SIGUSR2) switches ``mismatch`` on and off: while it is on,
    every byte both ways is mangled by it, and frames sent mangled are left out of the truth
    log (a correct decoder yields nothing from them).
    """
    controls = controls or Controls()
    first = b""
    if wait_for_reader:
        found = None
        while found is None and not controls.stop:
            found = transport.read(MAX_WAIT_S)
        first = found or b""
    t0 = monotonic()

    def now() -> float:
        return skip + (monotonic() - t0) * speed

    manual_until: float | None = None
    garbled: LineMismatch | None = None
    stream.connection_made()
    if first:
        stream.receive_data(first, skip)
    while not controls.stop:
        t = now()
        if t >= duration:
            break
        if controls.toggle_wrong_baud:
            controls.toggle_wrong_baud = False
            garbled = mismatch if garbled is None else None
        if controls.toggle_unplug:
            controls.toggle_unplug = False
            manual_until = t + unplug_s if transport.plugged else None
        if manual_until is not None and t >= manual_until:
            manual_until = None
        want_unplugged = model.is_unplugged(t) or manual_until is not None
        if want_unplugged and transport.plugged:
            transport.unplug()
            stream.connection_made()
        elif not want_unplugged and not transport.plugged:
            transport.replug()
            stream.connection_made()
        due = stream.next_due()
        wait = MAX_WAIT_S if due is None else min(MAX_WAIT_S, max(0.0, (due - t) / speed))
        data = transport.read(wait)
        if data is None:
            stream.connection_made()  # the reader went away: the next one must ask again
            continue
        if data and garbled is not None:
            data = garbled.to_monitor(data)
        if data:
            stream.receive_data(data, now())
        for frame in stream.frames_until(min(now(), duration - 1e-9)):
            wire = frame.data if garbled is None else garbled.to_reader(frame.data)
            if model.is_unplugged(frame.t) or not transport.write(wire):
                break  # the cable goes at the top of the loop; the reader must ask again
            if garbled is None:
                truth.record(frame)
