"""The serial link: opens a port with pyserial, feeds a codec from its own thread, reconnects.

Any URL pyserial's ``serial_for_url`` accepts works: a device path (``/dev/ttyUSB0``, a pty or a
symlink to one), ``socket://host:port`` or ``rfc2217://host:port``.
"""

from __future__ import annotations

import enum
import errno
import logging
import termios
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import serial

from infusion_monitor.clock import Clock, SystemClock, iso_z
from infusion_monitor.devices.base import Codec, DeviceEvent, DeviceEventKind, Event, SerialSettings

log = logging.getLogger(__name__)

#: No valid frame for this long (seconds, on the injected clock) means "no data" (issue 2).
WATCHDOG_S = 10.0
#: Waits between reconnect attempts (real seconds); the last one repeats.
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Largest read in one go; bounds the memory a flood of bytes can take.
READ_CHUNK = 4096

_PORT_ERRORS = (serial.SerialException, OSError, termios.error, ValueError)
#: Another program has the port: TIOCEXCL (EBUSY), or an exclusive lock like ours (EAGAIN).
_BUSY = (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)


def _garbage(count: int) -> str:
    """What bytes without a valid frame among them most likely mean, for a no-data detail."""
    if count <= 0:
        return ""
    return f", though {count} bytes came: wrong baud rate or protocol?"


def cannot_open(url: str, exc: BaseException) -> str:
    """Why ``url`` could not be opened, in words a nurse can act on."""
    if getattr(exc, "errno", None) in _BUSY:
        return f"{url} is busy: another program has it open ({exc})"
    return f"cannot open {url}: {exc}"


class LinkState(enum.StrEnum):
    """What the nurse sees in the device status indicator."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    NO_DATA = "no data"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


EventSink = Callable[[Sequence[Event]], None]
StateSink = Callable[[LinkState, str], None]


class SerialLink:
    """Reads one monitor on one thread; hands decoded events and state changes to callbacks.

    Callbacks run on the link's thread: they must hand data on (a queue, a Qt queued signal)
    and never touch widgets.
    """

    def __init__(
        self,
        url: str,
        codec: Codec,
        *,
        on_events: EventSink,
        on_state: StateSink | None = None,
        clock: Clock | None = None,
        settings: SerialSettings | None = None,
        baudrate: int | None = None,
        watchdog_s: float = WATCHDOG_S,
        backoff_s: Sequence[float] = BACKOFF_S,
    ) -> None:
        self.url = url
        self.codec = codec
        self.clock = clock or SystemClock()
        self.settings = settings or codec.serial
        self.baudrate = baudrate or self.settings.baudrate
        self.watchdog_s = watchdog_s
        self.backoff_s = tuple(backoff_s)
        self._on_events = on_events
        self._on_state = on_state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.SerialBase | None = None
        self.state = LinkState.STOPPED
        self.state_detail = ""
        self.reconnects = 0
        self._gap_since: datetime | None = None
        self._last_frame_at: datetime | None = None  # wall time of the last valid frame

    # -- public API -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("link already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"link:{self.url}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading and close the port; joins the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - would be a bug in the read loop
                log.error("link thread for %s did not stop within %.1f s", self.url, timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        self._set_state(LinkState.CONNECTING, f"opening {self.url}")
        while not self._stop.is_set():
            try:
                port = self._open()
            except _PORT_ERRORS as exc:
                why = cannot_open(self.url, exc)
                if attempt == 0 or self.state not in (
                    LinkState.DISCONNECTED, LinkState.RECONNECTING
                ):
                    self._emit_down(why)
                self._set_state(LinkState.RECONNECTING, f"retrying: {why}")
                self._stop.wait(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
                attempt += 1
                continue
            if attempt:
                self.reconnects += 1
            attempt = 0
            try:
                self._serve(port)
            except _PORT_ERRORS as exc:  # a pulled USB adapter, a closed pty, a dropped socket
                self._emit_down(f"{self.url} disconnected: {exc}")
                self._set_state(LinkState.RECONNECTING, f"{self.url} disconnected: {exc}")
            finally:
                self._close(port)
                self.codec.connection_lost()
            if not self._stop.is_set():
                self._stop.wait(self.backoff_s[0])
                attempt = 1
        self._set_state(LinkState.STOPPED, "")

    def _open(self) -> serial.SerialBase:
        s = self.settings
        port = serial.serial_for_url(
            self.url,
            baudrate=self.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            rtscts=s.rtscts,
            timeout=0.05,
            write_timeout=2.0,
            # Two readers of one port would each get half the bytes: refuse to share it.
            exclusive=True,
        )
        self._port = port
        return port

    def _close(self, port: serial.SerialBase) -> None:
        self._port = None
        try:
            port.close()
        except _PORT_ERRORS as exc:  # closing a vanished device can fail; it is gone anyway
            log.debug("closing %s: %s", self.url, exc)

    def _serve(self, port: serial.SerialBase) -> None:
        codec = self.codec
        codec.connection_made()
        self._write(port)
        self._on_events([DeviceEvent(DeviceEventKind.LINK_UP, f"opened {self.url}")])
        self._set_state(LinkState.CONNECTED, f"{self.url}: waiting for data")
        last_frame = self.clock.monotonic()
        last_tick = last_frame
        have_data = False
        bytes_at_frame = codec.stats.bytes_in
        while not self._stop.is_set():
            data = port.read(min(max(port.in_waiting, 1), READ_CHUNK))
            now = self.clock.monotonic()
            if data:
                frames_before = codec.stats.frames_ok
                events = codec.receive_data(data)
                if codec.stats.frames_ok > frames_before:
                    last_frame = now
                    bytes_at_frame = codec.stats.bytes_in
                    self._last_frame_at = self.clock.now()
                    if not have_data:
                        have_data = True
                        events = [*self._resumed(), *events]
                if events:
                    self._on_events(events)
            if now - last_tick >= 1.0:
                codec.tick(now)
                last_tick = now
            self._write(port)
            if have_data and now - last_frame > self.watchdog_s:
                have_data = False
                self._gap_since = self._last_frame_at or self.clock.now()
                detail = f"no valid frame for {self.watchdog_s:g} s" + _garbage(
                    codec.stats.bytes_in - bytes_at_frame)
                self._on_events([DeviceEvent(DeviceEventKind.NO_DATA, detail)])
                self._set_state(LinkState.NO_DATA, detail)
            elif not have_data and self.state is LinkState.CONNECTED and (
                now - last_frame > self.watchdog_s
            ):
                self._set_state(LinkState.NO_DATA, "port open, but no valid frame yet" + _garbage(
                    codec.stats.bytes_in - bytes_at_frame))
        codec.closing()  # stopped: let the codec say goodbye (IntelliVue: Release Request)
        self._write(port)

    def _resumed(self) -> list[DeviceEvent]:
        """Valid data again: the state goes back to connected and any gap is recorded.

        The gap runs from the last valid frame before the outage to the first one after it.
        """
        self._set_state(LinkState.CONNECTED, f"receiving from {self.url}")
        since, self._gap_since = self._gap_since, None
        if since is None:
            return []
        now = self.clock.now()
        seconds = (now - since).total_seconds()
        return [
            DeviceEvent(DeviceEventKind.DATA_RESUMED, f"data again after {seconds:.1f} s"),
            DeviceEvent(
                DeviceEventKind.GAP,
                f"no data from {iso_z(since)} to {iso_z(now)} ({seconds:.1f} s)",
                t_device=None,
            ),
        ]

    def _write(self, port: serial.SerialBase) -> None:
        out = self.codec.data_to_send()
        if out:
            port.write(out)

    def _emit_down(self, detail: str) -> None:
        if self._gap_since is None:
            self._gap_since = self._last_frame_at or self.clock.now()
        self._on_events([DeviceEvent(DeviceEventKind.LINK_DOWN, detail)])
        self._set_state(LinkState.DISCONNECTED, detail)

    def _set_state(self, state: LinkState, detail: str) -> None:
        if state is self.state and detail == self.state_detail:
            return
        self.state, self.state_detail = state, detail
        if self._on_state is not None:
            self._on_state(state, detail)
