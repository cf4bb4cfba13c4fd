"""Auto-detect: which known monitor protocol, if any, is talking on a serial port.

Each protocol is tried in turn with its own line settings: open the port, start the codec as the
link would (``connection_made``, the bytes it queues, ``tick`` about once a second), feed it what
arrives, and close the port again. A protocol is found when its codec counts at least two valid
frames and more valid than rejected ones. The devices that talk unprompted (Nonin, Masimo) are
tried first and given up on quickly when the line is silent; the S/5 comes last because it sends
its first record up to 5 s after the request and then only every 5 s.
"""

from __future__ import annotations

import enum
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import serial

from infusion_monitor.devices.base import Codec, DeviceEvent, DeviceEventKind, SerialSettings
from infusion_monitor.devices.registry import PROTOCOLS, ProtocolInfo, get_protocol

log = logging.getLogger(__name__)

#: Valid frames needed (and more valid than rejected) to name a protocol.
MIN_FRAMES = 2
#: Port read timeout (s): how quickly a cancel or a deadline is noticed.
READ_TIMEOUT_S = 0.05
#: A write that cannot finish in this long (RTS/CTS never asserted) ends that protocol's try.
WRITE_TIMEOUT_S = 1.0
#: Pause between tries (s): the device (or a simulator) notices the port was closed, and a USB
#: adapter settles before it is opened with other settings.
BETWEEN_TRIES_S = 0.25
READ_CHUNK = 4096
#: Bytes of what was sent kept for the echo check (far more than any protocol's requests).
ECHO_WINDOW = 65536

_PORT_ERRORS = (serial.SerialException, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """How long to listen for one protocol.

    ``listen_s`` is the longest try. A monitor of this protocol that is there has sent a valid
    frame by ``first_frame_s``: a try with none by then ends (silence, or only garbage).
    """

    listen_s: float
    first_frame_s: float


#: Listening times per protocol (protocols.md): Nonin sends 75 frames/s and Masimo one line a
#: second unprompted; the IntelliVue answers the association request at once; the S/5 sends its
#: first record up to 5 s after the request, the next one 5 s later.
PLANS: dict[str, ProbePlan] = {
    "nonin": ProbePlan(listen_s=3.0, first_frame_s=1.5),
    "masimo": ProbePlan(listen_s=4.0, first_frame_s=2.5),
    "intellivue": ProbePlan(listen_s=6.0, first_frame_s=3.0),
    "datex-s5": ProbePlan(listen_s=12.0, first_frame_s=7.0),
}
DEFAULT_PLAN = ProbePlan(listen_s=6.0, first_frame_s=6.0)

#: Short names for messages ("none of them a valid frame of GE S/5, Nonin").
SHORT_NAMES = {
    "datex-s5": "GE S/5",
    "intellivue": "Philips IntelliVue",
    "masimo": "Masimo",
    "nonin": "Nonin",
}


def short_name(info: ProtocolInfo) -> str:
    return SHORT_NAMES.get(info.name) or info.title.split(" (")[0]


def line_settings(s: SerialSettings) -> str:
    """The usual shorthand: ``19200 8E1 RTS/CTS``."""
    stop = f"{s.stopbits:g}"
    return f"{s.baudrate} {s.bytesize}{s.parity}{stop}" + (" RTS/CTS" if s.rtscts else "")


class Outcome(enum.StrEnum):
    """How one protocol's try ended."""

    FOUND = "found"
    SILENT = "silent"  # not a byte arrived
    NOT_THIS = "not this protocol"  # bytes, but not enough valid frames
    ECHO = "echo"  # every byte received was a byte sent: a loopback plug or an echoing line
    CANCELLED = "cancelled"
    FAILED = "failed"  # this protocol could not be tried (no codec, write timed out)
    PORT_ERROR = "port error"  # the port could not be opened or went away: detection stops


@dataclass(frozen=True, slots=True)
class ProtocolEvidence:
    """What one protocol's try saw on the wire."""

    protocol: str
    name: str
    settings: SerialSettings
    outcome: Outcome
    bytes_read: int = 0
    frames_ok: int = 0
    frames_rejected: int = 0
    seconds: float = 0.0
    error: str = ""
    #: The codec's own diagnosis (its first DEVICE_ERROR event, e.g. a Masimo in ASCII 2 mode).
    #: Only in the details: random bytes can look like a refusal (a Nonin NAK is one byte).
    device_says: str = ""

    def describe(self) -> str:
        """One line for a report: ``Masimo at 9600 8N1: 3,840 bytes in 4.0 s, 0 valid / 9 …``."""
        head = f"{self.name} at {line_settings(self.settings)}: "
        if self.outcome in (Outcome.PORT_ERROR, Outcome.FAILED):
            return head + self.error
        if self.outcome is Outcome.ECHO:
            return head + f"the port sent back the {self.bytes_read:,} bytes written to it"
        text = (f"{self.bytes_read:,} bytes in {self.seconds:.1f} s, "
                f"{self.frames_ok} valid / {self.frames_rejected} rejected frames")
        text += "" if self.outcome is Outcome.NOT_THIS else f" ({self.outcome})"
        return head + text + (f"; {self.device_says}" if self.device_says else "")


@dataclass(frozen=True, slots=True)
class Attempt:
    """Progress: protocol ``step`` of ``total`` is being tried now."""

    step: int
    total: int
    protocol: str
    name: str


@dataclass(frozen=True, slots=True)
class DetectResult:
    """The protocol found on ``url`` (or None) and the evidence for every protocol tried."""

    url: str
    protocol: str | None
    evidence: tuple[ProtocolEvidence, ...]
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def info(self) -> ProtocolInfo | None:
        return get_protocol(self.protocol) if self.protocol else None

    @property
    def port_error(self) -> str:
        """Why the port could not be used at all, or ""."""
        return next((e.error for e in self.evidence if e.outcome is Outcome.PORT_ERROR), "")

    def details(self) -> list[str]:
        return [e.describe() for e in self.evidence]

    def summary(self) -> str:
        """One paragraph for a nurse or a technician: what was found, or what to check."""
        if self.info is not None:
            hit = next(e for e in self.evidence if e.protocol == self.protocol)
            return (f"Found {self.info.title} on {self.url} "
                    f"({hit.frames_ok} valid frames in {hit.seconds:.1f} s)")
        if self.port_error:
            return f"Could not use {self.url}: {self.port_error}"
        order = list(PROTOCOLS)  # name them in the registry's order, not the order tried
        tried = sorted((e for e in self.evidence if e.outcome is not Outcome.FAILED),
                       key=lambda e: order.index(e.protocol) if e.protocol in order else 0)
        names = ", ".join(e.name for e in tried)
        if self.cancelled:
            return f"Auto-detect on {self.url} cancelled" + (
                f" after trying {names}." if names else ".")
        failed = "; ".join(f"{e.name}: {e.error}" for e in self.evidence
                           if e.outcome is Outcome.FAILED)
        failed = f" (not tried: {failed})" if failed else ""
        if not tried:
            return f"No protocol could be tried on {self.url}{failed}."
        received = sum(e.bytes_read for e in tried)
        if tried and all(e.outcome in (Outcome.ECHO, Outcome.SILENT) for e in tried) and any(
            e.outcome is Outcome.ECHO for e in tried
        ):
            return (f"No known monitor on {self.url}: the port only sent back what was written "
                    f"to it{failed}. Remove a loopback plug, or check the cable and the "
                    "monitor's serial output mode.")
        if received == 0:
            return (f"No known monitor on {self.url}: nothing received while trying {names}"
                    f"{failed}. Check that the monitor is on, the cable is plugged in and the "
                    "monitor's serial output is enabled.")
        some = [e for e in tried if e.frames_ok]
        none = [e.name for e in tried if not e.frames_ok]
        parts = []
        if none:
            parts.append("none of them a valid frame of " + ", ".join(none))
        parts += [f"{e.frames_ok} valid and {e.frames_rejected} rejected {e.name} frames"
                  " (too few to be sure)" for e in some]
        return (f"No known monitor on {self.url}: {received:,} bytes received, "
                f"{'; '.join(parts)}{failed}. Check the cable, the baud rate and the monitor's "
                "serial output mode.")


def _port_error_text(exc: BaseException) -> str:
    """A clear reason for a port that cannot be opened, with what to do about it."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return ("no such port. Check the device path and that the USB-serial adapter is "
                "plugged in.")
    if code == errno.EBUSY or "exclusively lock" in text:
        return "port busy: another program (or a recording) has it open. Stop that first."
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied. Add the user to the 'dialout' group, then log in again."
    return text or type(exc).__name__


def _matched(codec: Codec) -> bool:
    s = codec.stats
    return s.frames_ok >= MIN_FRAMES and s.frames_ok > s.frames_rejected


class _EchoCheck:
    """Tells whether everything received so far is what was sent, byte for byte.

    A loopback plug, or a line that echoes, returns a codec's own requests; the S/5 codec counts
    its start requests as valid records, so without this an echo would be "found" as an S/5.
    The bytes are not filtered: a device that echoes and also answers is judged by its answers.
    """

    def __init__(self) -> None:
        self._sent = bytearray()
        self._matched = 0
        self.only_echo = True

    def sent(self, data: bytes) -> None:
        if self.only_echo and len(self._sent) < ECHO_WINDOW:
            self._sent += data

    def received(self, data: bytes) -> None:
        if self.only_echo:
            end = self._matched + len(data)
            self.only_echo = self._sent[self._matched : end] == data
            self._matched = end


def _plan(name: str, listen_s: float | Mapping[str, float] | None) -> ProbePlan:
    plan = PLANS.get(name, DEFAULT_PLAN)
    if listen_s is None:
        return plan
    longest = listen_s if isinstance(listen_s, int | float) else listen_s.get(name)
    if longest is None:
        return plan
    return ProbePlan(listen_s=longest, first_frame_s=min(plan.first_frame_s, longest))


def _try_protocol(
    url: str, info: ProtocolInfo, plan: ProbePlan, cancel: threading.Event,
    monotonic: Callable[[], float],
) -> ProtocolEvidence:
    """Open ``url`` with ``info``'s settings, run its codec for up to ``plan.listen_s``, close."""
    settings = info.serial
    tried = ProtocolEvidence(info.name, short_name(info), settings, Outcome.FAILED)
    try:
        codec = info.create()
    except (ImportError, AttributeError) as exc:  # a protocol whose codec is not installed
        return replace(tried, error=f"codec not available ({exc})")
    try:
        port = serial.serial_for_url(
            url, baudrate=settings.baudrate, bytesize=settings.bytesize,
            parity=settings.parity, stopbits=settings.stopbits, rtscts=settings.rtscts,
            timeout=READ_TIMEOUT_S, write_timeout=WRITE_TIMEOUT_S, exclusive=True,
        )
    except _PORT_ERRORS as exc:
        log.info("detect: cannot open %s: %s", url, exc)
        return replace(tried, outcome=Outcome.PORT_ERROR, error=_port_error_text(exc))
    start = monotonic()
    received = 0
    outcome = Outcome.NOT_THIS
    error = ""
    echo = _EchoCheck()
    device_says = ""

    def send() -> None:
        out = codec.data_to_send()
        if out:
            echo.sent(out)
            port.write(out)

    try:
        port.reset_input_buffer()  # bytes from before this try belong to no request of ours
        codec.connection_made()
        send()
        last_tick = start
        while True:
            if cancel.is_set():
                outcome = Outcome.CANCELLED
                break
            data = port.read(min(max(port.in_waiting, 1), READ_CHUNK))
            now = monotonic()
            if data:
                received += len(data)
                echo.received(data)
                events = codec.receive_data(data)
                device_says = device_says or next(
                    (e.detail for e in events if isinstance(e, DeviceEvent)
                     and e.kind is DeviceEventKind.DEVICE_ERROR), "")
            elapsed = now - start
            if _matched(codec) and not echo.only_echo:
                outcome = Outcome.FOUND
                break
            if elapsed >= plan.first_frame_s and (codec.stats.frames_ok == 0 or echo.only_echo):
                outcome = Outcome.SILENT if received == 0 else Outcome.NOT_THIS
                break
            if elapsed >= plan.listen_s:
                break
            if now - last_tick >= 1.0:
                codec.tick(now)
                last_tick = now
            send()
        if outcome is Outcome.NOT_THIS and received and echo.only_echo:
            outcome = Outcome.ECHO
        codec.closing()  # a goodbye (IntelliVue: Release), so the monitor is free for the app
        send()
    except serial.SerialTimeoutException:
        outcome, error = Outcome.FAILED, (
            "write timed out: the port did not accept data (RTS/CTS not asserted?)")
    except _PORT_ERRORS as exc:
        outcome, error = Outcome.PORT_ERROR, f"port lost: {exc}"
    finally:
        codec.connection_lost()
        try:
            port.close()
        except _PORT_ERRORS as exc:  # a vanished device can fail to close; it is gone anyway
            log.debug("detect: closing %s: %s", url, exc)
    return replace(
        tried, outcome=outcome, bytes_read=received, frames_ok=codec.stats.frames_ok,
        frames_rejected=codec.stats.frames_rejected, seconds=monotonic() - start, error=error,
        device_says=device_says,
    )


def probe_order(protocols: Iterable[str] | None = None) -> list[ProtocolInfo]:
    """The protocols to try: the given ones in that order, else every known one, quickest first."""
    if protocols is not None:
        return [get_protocol(p) for p in protocols]
    return sorted(PROTOCOLS.values(), key=lambda i: PLANS.get(i.name, DEFAULT_PLAN).listen_s)


def detect(
    url: str,
    protocols: Iterable[str] | None = None,
    *,
    listen_s: float | Mapping[str, float] | None = None,
    on_progress: Callable[[Attempt], None] | None = None,
    cancel: threading.Event | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> DetectResult:
    """Try each protocol on ``url`` until one is found; never raises for port trouble.

    Parameters
    ----------
    protocols
        Protocol names to try, in that order; default all known, quickest first.
    listen_s
        Longest try in seconds, for every protocol or per protocol name (default ``PLANS``).
    on_progress
        Called (on the calling thread) before each try.
    cancel
        Set it from another thread to stop within about ``READ_TIMEOUT_S``.
    """
    cancel = cancel or threading.Event()
    order = probe_order(protocols)
    start = monotonic()
    evidence: list[ProtocolEvidence] = []
    found: str | None = None
    for step, info in enumerate(order, 1):
        if cancel.is_set():
            break
        if evidence:
            cancel.wait(BETWEEN_TRIES_S)
            if cancel.is_set():
                break
        if on_progress is not None:
            on_progress(Attempt(step, len(order), info.name, short_name(info)))
        result = _try_protocol(url, info, _plan(info.name, listen_s), cancel, monotonic)
        evidence.append(result)
        log.info("detect %s: %s", url, result.describe())
        if result.outcome is Outcome.FOUND:
            found = info.name
            break
        if result.outcome in (Outcome.PORT_ERROR, Outcome.CANCELLED):
            break
    return DetectResult(
        url=url, protocol=found, evidence=tuple(evidence),
        cancelled=found is None and cancel.is_set(), seconds=monotonic() - start,
    )
