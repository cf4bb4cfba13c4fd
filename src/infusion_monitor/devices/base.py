"""What every protocol codec is and emits.

Codecs are sans-I/O (after h11): ``receive_data(bytes)`` returns typed events and outgoing bytes
are queued for the link to write with ``data_to_send()``. They know nothing of ports, threads or
wall time except what they are given.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from infusion_monitor.vitals import Quality, Reading, Vital


class DeviceEventKind(enum.StrEnum):
    """Technical events about the device or the link. Stored as text."""

    LINK_UP = "link_up"  # port opened (and start request sent)
    LINK_DOWN = "link_down"  # port lost or could not be opened
    NO_DATA = "no_data"  # port open but no valid frame for the watchdog period
    DATA_RESUMED = "data_resumed"  # valid frames again after NO_DATA
    GAP = "gap"  # a span with no data, recorded once data resumes (start/end in detail)
    FRAME_REJECTED = "frame_rejected"  # checksum or length failure; ``count`` frames
    PARAMETER_STATUS = "parameter_status"  # a vital became unavailable/invalid, or came back
    PROBE_OFF = "probe_off"
    DEVICE_ERROR = "device_error"  # refused association, wrong mode, ...
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something about the device, not a value: link state, rejected frames, a probe off."""

    kind: DeviceEventKind
    detail: str = ""
    vital: Vital | None = None
    count: int = 1
    t_device: datetime | None = None
    t_received: datetime | None = None


@dataclass(frozen=True, slots=True)
class WaveformBlock:
    """A run of waveform samples at a fixed rate, exactly as the device sent them.

    ``samples`` are the device's raw integer units (a Nonin pleth is 0-255 in format #2 and
    0-65535 in format #7); ``scale`` turns them into ``unit``. Blocks, not a row per sample,
    are what the store keeps. ``quality`` is ARTIFACT if the device flagged any sample in the
    block (artifact, out of track, sensor alarm), DEMO for demo/test-mode data.
    """

    wave: str  # "pleth"
    rate_hz: float
    samples: tuple[int, ...]
    unit: str = ""
    scale: float = 1.0
    quality: Quality = Quality.OK
    t_device: datetime | None = None  # device time of the first sample, when known
    t_received: datetime | None = None  # stamped by the recorder (time of the first sample)


Event = Reading | DeviceEvent | WaveformBlock


@dataclass(slots=True)
class CodecStats:
    """Running counters a codec keeps; the link's watchdog watches ``frames_ok``."""

    bytes_in: int = 0
    frames_ok: int = 0
    frames_rejected: int = 0
    readings: int = 0


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Default line settings for a protocol (pyserial names)."""

    baudrate: int
    bytesize: int = 8
    parity: str = "N"  # serial.PARITY_* single letters
    stopbits: float = 1
    rtscts: bool = False


class Codec(ABC):
    """Base of every monitor protocol codec."""

    name: ClassVar[str]
    serial: ClassVar[SerialSettings]

    def __init__(self) -> None:
        self.stats = CodecStats()
        self._outgoing = bytearray()

    @abstractmethod
    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the wire; return the readings and device events they complete."""

    def data_to_send(self) -> bytes:
        """Bytes the codec wants written to the device; empties the queue."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def _send(self, data: bytes) -> None:
        self._outgoing += data

    def connection_made(self) -> None:  # noqa: B027 - optional hook
        """The port was (re)opened: queue whatever starts the data flow."""

    def connection_lost(self) -> None:  # noqa: B027 - optional hook
        """The port went away: drop any partial frame. Memory that prevents duplicates stays."""

    def resume_after(self, recorded: Sequence[Reading]) -> None:  # noqa: B027 - optional hook
        """A new process continues a session (crash recovery): ``recorded`` is what was stored
        before, in time order. Take the memory that prevents duplicates from it, as if this
        codec had decoded it."""

    def tick(self, monotonic: float) -> None:  # noqa: B027 - optional hook
        """Called about once a second by the link, for keep-alives and polls."""

    def closing(self) -> None:  # noqa: B027 - optional hook
        """The app is about to close the port: queue a goodbye."""


@dataclass(slots=True)
class CodecResult:
    """Everything decoded from a finite byte stream (used by ``import``)."""

    events: list[Event] = field(default_factory=list)
    stats: CodecStats = field(default_factory=CodecStats)

    @property
    def readings(self) -> list[Reading]:
        return [e for e in self.events if isinstance(e, Reading)]
