"""Nonin pulse oximeters (OEM III, Xpod, 7500 and similar): serial data formats #2 and #7.

Wire facts come from the shared design notes (protocols.md, "Nonin"), checked against OpenICE
(mdpnp ``devices/nonin/pulseox``: ``Packet``, ``Status`` and ``NoninPulseOx``: the format #7 frame
``STATUS, PLETH MSB, PLETH LSB, X, CHK``, the select command, ACK/NAK at a frame boundary),
Pufferfish (``Driver/Serial/Nonin/PacketReceiver``: the status bit names) and
embodied-computation-group/systole (the format #2 frame check). The module also holds the frame
encoders the simulator uses.

Decisions, and why:

- Frames of both formats are decoded whatever was asked for: a format #2 frame starts with 0x01,
  a format #7 frame with its status byte (bit 7 always set), so they cannot be confused. A unit
  that missed or refused the select, or still sends its stored format, is recorded anyway.
- Sync is strict. A hunting codec locks only on a valid frame with the sync bit followed by
  ``CONFIRM_FRAMES - 1`` valid frames without it; only frames read in sync count
  (``stats.frames_ok``). A format #7 frame has no constant byte, so a random 5-byte window passes
  its check once in 512; five in a row with the right sync bits happen about once in 10^15.
- Status bits (Pufferfish, OpenICE): 0x40 sensor disconnected, 0x20 artifact, 0x10 out of
  track, 0x08 sensor alarm, bits 2-1 perfusion (01 green, 10 red = low, 11 yellow), 0x01 sync.
  The two sensor bits are a probe problem (``PROBE_OFF``); artifact, out of track and low
  perfusion a signal problem. A condition starts with the first packet that shows it and ends
  after ``HOLD_PACKETS`` packets without it (the flags come and go with each beat), and values
  are QUESTIONABLE while any condition is on.
- HR = ((MSB & 3) << 7) | (LSB & 0x7F) from frames 0 and 1, as protocols.md and Pufferfish
  have it (OpenICE's format #7 ``Packet`` computes (MSB << 8) | LSB; the two agree below 128).
- Readings are thinned (``RepeatThinner``): every distinct value is kept, repeats are thinned to
  one a second (every third packet). Nonin frames carry no time, so readings have no device time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infusion_monitor.devices.base import (
    Codec,
    DeviceEvent,
    DeviceEventKind,
    Event,
    SerialSettings,
    WaveformBlock,
)
from infusion_monitor.vitals import Quality, Reading, Vital

FRAME_SIZE = 5
PACKET_FRAMES = 25
SAMPLE_RATE_HZ = 75.0  # frames (pleth samples) per second: 3 packets a second
FORMATS = (2, 7)
FORMAT2_START = 0x01  # the first byte of every format #2 frame

STX, ETX, ACK, NAK = 0x02, 0x03, 0x06, 0x15
OP_SET_FORMAT = 0x70

STATUS_ALWAYS = 0x80
SENSOR_DISCONNECTED = 0x40
ARTIFACT = 0x20
OUT_OF_TRACK = 0x10
SENSOR_ALARM = 0x08
PERFUSION_MASK = 0x06
GREEN_PERFUSION = 0x02
RED_PERFUSION = 0x04
YELLOW_PERFUSION = 0x06
SYNC = 0x01
#: Any of these in a packet makes its pleth block an ARTIFACT.
BAD_PLETH = ARTIFACT | OUT_OF_TRACK | SENSOR_ALARM | SENSOR_DISCONNECTED

MISSING_HR = 511
MISSING_SPO2 = 127
HR_MSB, HR_LSB, SPO2, FIRMWARE = 0, 1, 2, 3  # frame index in the packet -> meaning of X

#: Frames (sync frame included) a hunting codec must see in a row before it counts any.
CONFIRM_FRAMES = 5
#: While hunting, one FRAME_REJECTED per this many skipped bytes (1 s at 9600 baud).
HUNT_REPORT_BYTES = 375
#: With no frame in sync for this long (seconds), the select is sent again.
SELECT_RETRY_S = 3.0
#: A repeated value is kept once in this many packets (once a second).
THIN_PACKETS = 3
#: A status condition ends after this many packets without it (2 s).
HOLD_PACKETS = 6

#: (name, mask, value, is a probe problem): a frame shows the condition if status & mask == value.
CONDITIONS: tuple[tuple[str, int, int, bool], ...] = (
    ("sensor disconnected", SENSOR_DISCONNECTED, SENSOR_DISCONNECTED, True),
    ("sensor alarm", SENSOR_ALARM, SENSOR_ALARM, True),
    ("artifact", ARTIFACT, ARTIFACT, False),
    ("out of track", OUT_OF_TRACK, OUT_OF_TRACK, False),
    ("low perfusion", PERFUSION_MASK, RED_PERFUSION, False),
)
PROBE_VITALS = (Vital.SPO2, Vital.PR)
VALID = "valid"
NO_VALUE = "no value"


def select_command(data_format: int) -> bytes:
    """The command that selects a serial data format: ``02 70 02 02 <fmt> 03``."""
    return bytes([STX, OP_SET_FORMAT, 0x02, 0x02, data_format, ETX])


@dataclass(frozen=True, slots=True)
class NoninFrame:
    """One frame that passed its check; ``pleth`` is 8-bit in format #2, 16-bit in #7."""

    data_format: int
    status: int
    pleth: int
    x: int


def decode_frame(raw: bytes | bytearray) -> NoninFrame | None:
    """The frame in 5 bytes, or None if they fail the checksum or the format's fixed bits."""
    b0, b1, b2, b3, chk = raw[:FRAME_SIZE]
    if (b0 + b1 + b2 + b3) & 0xFF != chk:
        return None
    if b0 == FORMAT2_START and b1 & STATUS_ALWAYS:
        return NoninFrame(2, b1, b2, b3)
    if b0 & STATUS_ALWAYS:
        return NoninFrame(7, b0, (b1 << 8) | b2, b3)
    return None


# --- encoders (for the simulator and the tests) -------------------------------------------------


def encode_frame(data_format: int, status: int, pleth: int, x: int) -> bytes:
    """One frame with its checksum; status bit 7 is always set, as the device does."""
    status |= STATUS_ALWAYS
    if data_format == 2:
        head = bytes([FORMAT2_START, status, pleth, x])
    elif data_format == 7:
        head = bytes([status, pleth >> 8, pleth & 0xFF, x])
    else:
        raise ValueError(f"data format #{data_format} is not supported")
    return head + bytes([sum(head) & 0xFF])


def packet_x(hr: int, spo2: int, firmware: int = 0x21) -> list[int]:
    """The 25 X bytes of a packet: the standard values, repeated in the 'D' and 'E' slots."""
    if not 0 <= hr <= MISSING_HR or not 0 <= spo2 <= MISSING_SPO2:
        raise ValueError(f"HR {hr} or SpO2 {spo2} does not fit its field")
    msb, lsb = (hr >> 7) & 0x03, hr & 0x7F
    x = [0] * PACKET_FRAMES
    x[HR_MSB], x[HR_LSB], x[SPO2], x[FIRMWARE] = msb, lsb, spo2, firmware
    for i in (8, 9, 10, 15, 16):  # SpO2-D, fast, beat-to-beat, E-SpO2, E-SpO2-D
        x[i] = spo2
    for i in (13, 19, 21):  # E-HR, HR-D, E-HR-D: MSB then LSB
        x[i], x[i + 1] = msb, lsb
    return x


def build_packet(
    data_format: int,
    *,
    hr: int,
    spo2: int,
    pleth: Sequence[int],
    status: int | Sequence[int] = GREEN_PERFUSION,
) -> bytes:
    """25 frames; ``status`` for every frame or one per frame; frame 0 gets the sync bit."""
    if len(pleth) != PACKET_FRAMES:
        raise ValueError(f"a packet has {PACKET_FRAMES} pleth samples, not {len(pleth)}")
    statuses = [status] * PACKET_FRAMES if isinstance(status, int) else list(status)
    xs = packet_x(hr, spo2)
    return b"".join(
        encode_frame(data_format, (s & ~SYNC) | (SYNC if i == 0 else 0), p, x)
        for i, (s, p, x) in enumerate(zip(statuses, pleth, xs, strict=True))
    )


class SelectDecoder:
    """Finds format-select commands in the bytes a client sends (the simulator's side)."""

    _PREFIX = bytes([STX, OP_SET_FORMAT, 0x02, 0x02])

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[int]:
        """The data format of each complete ``02 70 02 02 <fmt> 03`` in the stream so far."""
        self._buf += data
        found: list[int] = []
        start = 0
        while True:
            i = self._buf.find(self._PREFIX, start)
            if i < 0:  # keep what could be the start of a command cut by the read
                cut = max(start, len(self._buf) - len(self._PREFIX) + 1)
                break
            if i + 6 > len(self._buf):
                cut = i
                break
            if self._buf[i + 5] == ETX:
                found.append(self._buf[i + 4])
                start = i + 6
            else:
                start = i + 1
        del self._buf[:cut]
        return found


class RepeatThinner:
    """Which values of a packet to record: every distinct value, repeats once in ``every``.

    At 3 packets a second and ``every`` = 3, a steady value is kept once a second and any change
    at once. A missing value resets the memory, so the first value after it is always kept.
    The simulator uses this same class for its truth log.
    """

    def __init__(self, every: int = THIN_PACKETS) -> None:
        self.every = every
        self._last: dict[Vital, tuple[int, int]] = {}  # vital -> (value, packets since kept)

    def reset(self) -> None:
        self._last.clear()

    def keep(self, vital: Vital, value: int | None) -> bool:
        """Whether to record ``value`` (None = missing, never recorded) for this packet."""
        if value is None:
            self._last.pop(vital, None)
            return False
        last = self._last.get(vital)
        if last is None or last[0] != value or last[1] + 1 >= self.every:
            self._last[vital] = (value, 0)
            return True
        self._last[vital] = (value, last[1] + 1)
        return False


# --- the codec ----------------------------------------------------------------------------------


class NoninCodec(Codec):
    """Decodes packets of format #2 or #7 into PR and SpO2 readings and pleth blocks.

    On connect it asks for ``data_format`` (#7, 16-bit pleth, by default). NAK for #7 falls back
    to #2; NAK for #2 as well is a DEVICE_ERROR. While a select is unanswered, an ACK or NAK byte
    is its answer where a frame could start: right after a valid frame, or anywhere while no
    valid frame has arrived since the select was sent (the unit may be sending a format we do
    not read). With no frame in sync for ``SELECT_RETRY_S`` the select is sent again.
    """

    name = "nonin"
    serial = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1)

    def __init__(self, data_format: int = 7) -> None:
        if data_format not in FORMATS:
            raise ValueError(f"data format #{data_format} is not supported; use 2 or 7")
        super().__init__()
        self.data_format = data_format
        self._buf = bytearray()
        self._pos = 0  # stream offset of _buf[0]
        self._locked = False
        self._packet: list[NoninFrame] = []
        self._skipped = 0
        self._boundary = -1  # stream offset right after the last valid frame seen while hunting
        self._asking: int | None = None  # the format whose select is unanswered
        self._wanted: int | None = None  # the format to ask again for (None: refused)
        self._refused: list[int] = []
        self._valid_since_select = False
        self._thinner = RepeatThinner()
        # Survive connection_lost(), so a reconnect repeats no status or condition event.
        self._status: dict[Vital, str] = {}
        self._conditions: dict[str, int] = {}  # name -> packets since last shown
        self._quiet_since: float | None = None
        self._frames_seen = 0

    # -- the link's hooks ------------------------------------------------------------------------
    def connection_made(self) -> None:
        """Ask for the configured format (again: a replugged unit may have forgotten it)."""
        self._reset_parser()
        self._refused = []
        self._select(self.data_format)
        self._quiet_since = None
        self._frames_seen = self.stats.frames_ok

    def connection_lost(self) -> None:
        """Drop a packet cut off by the unplug; repeats after a reconnect are new observations."""
        self._reset_parser()
        self._asking = None

    def tick(self, monotonic: float) -> None:
        """Send the select again while no frame in sync arrives for ``SELECT_RETRY_S``."""
        if self.stats.frames_ok != self._frames_seen or self._quiet_since is None:
            self._frames_seen = self.stats.frames_ok
            self._quiet_since = monotonic
        elif monotonic - self._quiet_since >= SELECT_RETRY_S and self._wanted is not None:
            self._select(self._wanted)
            self._quiet_since = monotonic

    def _reset_parser(self) -> None:
        self._buf.clear()
        self._pos = 0
        self._locked = False
        self._packet = []
        self._skipped = 0
        self._boundary = -1
        self._thinner.reset()

    def _select(self, data_format: int) -> None:
        self._send(select_command(data_format))
        self._asking = self._wanted = data_format
        self._valid_since_select = False

    # -- bytes in --------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[Event]:
        self.stats.bytes_in += len(data)
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        self.stats.readings += sum(isinstance(e, Reading) for e in events)
        return events

    def _step(self, events: list[Event]) -> bool:
        """Act on the front of the buffer; False when more bytes are needed."""
        if not self._buf:
            return False
        if self._is_answer():
            answer = self._buf[0]
            self._consume(1)
            self._answer(answer, events)
            return True
        return self._step_locked(events) if self._locked else self._step_hunting(events)

    def _is_answer(self) -> bool:
        if self._asking is None or self._buf[0] not in (ACK, NAK):
            return False
        return self._locked or self._pos == self._boundary or not self._valid_since_select

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._pos += n

    def _step_hunting(self, events: list[Event]) -> bool:
        if len(self._buf) < FRAME_SIZE:
            return False
        frame = decode_frame(self._buf)
        if frame is not None:
            self._valid_since_select = True
            self._boundary = self._pos + FRAME_SIZE
            if frame.status & SYNC:
                confirmed = self._confirm()
                if confirmed is None:
                    return False
                if confirmed:
                    self._locked = True
                    self._skipped = 0
                    return True
        self._consume(1)
        self._skipped += 1
        if self._skipped >= HUNT_REPORT_BYTES:
            self._skipped = 0
            self._reject(events, f"no frame in sync in {HUNT_REPORT_BYTES} bytes")
        return True

    def _confirm(self) -> bool | None:
        """Whether the sync frame in front starts ``CONFIRM_FRAMES`` good frames; None: wait."""
        buf, i, count, fmt = self._buf, 0, 0, 0
        while count < CONFIRM_FRAMES:
            if count and self._asking is not None and i < len(buf) and buf[i] in (ACK, NAK):
                i += 1  # an answer between two frames
                continue
            if i + FRAME_SIZE > len(buf):
                return None
            frame = decode_frame(buf[i : i + FRAME_SIZE])
            if (frame is None or bool(frame.status & SYNC) != (count == 0)
                    or (count and frame.data_format != fmt)):
                return False
            fmt = frame.data_format
            i += FRAME_SIZE
            count += 1
        return True

    def _step_locked(self, events: list[Event]) -> bool:
        if len(self._buf) < FRAME_SIZE:
            return False
        frame = decode_frame(self._buf)
        if frame is None:
            return self._lose_sync(events, "checksum or status check failed")
        if frame.status & SYNC:
            if self._packet:
                self._finish_packet(events)  # a short packet: keep what it has
        elif not self._packet:
            return self._lose_sync(events, "no sync bit where a packet should start")
        elif frame.data_format != self._packet[0].data_format:
            return self._lose_sync(events, "data format changed inside a packet")
        self._consume(FRAME_SIZE)
        self.stats.frames_ok += 1
        self._valid_since_select = True
        self._packet.append(frame)
        if len(self._packet) == PACKET_FRAMES:
            self._finish_packet(events)
        return True

    def _lose_sync(self, events: list[Event], reason: str) -> bool:
        """Emit what the packet has, count one rejection and hunt from this byte on."""
        frame_no = len(self._packet)
        if self._packet:
            self._finish_packet(events)
        self._locked = False
        self._skipped = 0
        self._reject(events, f"sync lost: {reason} (after frame {frame_no})")
        return True

    def _reject(self, events: list[Event], detail: str) -> None:
        self.stats.frames_rejected += 1
        events.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, detail=detail))

    def _answer(self, byte: int, events: list[Event]) -> None:
        asked = self._asking
        self._asking = None
        if byte == ACK or asked is None:
            return
        self._refused.append(asked)
        if asked == 7:
            self._select(2)
            return
        self._wanted = None
        refused = " and ".join(f"#{f}" for f in self._refused)
        events.append(DeviceEvent(
            DeviceEventKind.DEVICE_ERROR,
            detail=f"the oximeter refused data format {refused}: set it to send format #2 or #7",
        ))

    # -- packets ---------------------------------------------------------------------------------
    def _finish_packet(self, events: list[Event]) -> None:
        frames, self._packet = self._packet, []
        union = 0
        for f in frames:
            union |= f.status
        changes = self._update_conditions([f.status for f in frames])
        quality = Quality.QUESTIONABLE if self._conditions else Quality.OK
        for vital, code, missing in self._codes(frames):
            value = None if code == missing else code
            self._availability(vital, value is not None, events)
            if self._thinner.keep(vital, value):
                events.append(Reading(vital, float(code), quality))
        events.extend(changes)
        events.append(WaveformBlock(
            wave="pleth", rate_hz=SAMPLE_RATE_HZ, samples=tuple(f.pleth for f in frames),
            quality=Quality.ARTIFACT if union & BAD_PLETH else Quality.OK,
        ))

    @staticmethod
    def _codes(frames: list[NoninFrame]) -> list[tuple[Vital, int, int]]:
        """(vital, raw value, its missing code) for the values this (maybe partial) packet has."""
        out = []
        if len(frames) > HR_LSB:
            hr = ((frames[HR_MSB].x & 0x03) << 7) | (frames[HR_LSB].x & 0x7F)
            out.append((Vital.PR, hr, MISSING_HR))
        if len(frames) > SPO2:
            out.append((Vital.SPO2, frames[SPO2].x & 0x7F, MISSING_SPO2))
        return out

    def _availability(self, vital: Vital, sent: bool, events: list[Event]) -> None:
        """One PARAMETER_STATUS per change; the first value of a vital needs none."""
        status = VALID if sent else NO_VALUE
        previous = self._status.get(vital)
        if status != previous and not (previous is None and status == VALID):
            events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, detail=status,
                                      vital=vital))
        self._status[vital] = status

    def _update_conditions(self, statuses: list[int]) -> list[Event]:
        """Start and end events for the status conditions shown by this packet's frames."""
        out: list[Event] = []
        for name, mask, value, probe in CONDITIONS:
            shown = any(s & mask == value for s in statuses)
            age = self._conditions.get(name)
            if shown:
                if age is None:
                    out += self._started(name, probe)
                self._conditions[name] = 0
            elif age is not None:
                if age + 1 >= HOLD_PACKETS:
                    del self._conditions[name]
                    out.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS,
                                           detail=f"{name} cleared"))
                else:
                    self._conditions[name] = age + 1
        return out

    @staticmethod
    def _started(name: str, probe: bool) -> list[Event]:
        if probe:
            return [DeviceEvent(DeviceEventKind.PROBE_OFF, detail=name, vital=v)
                    for v in PROBE_VITALS]
        return [DeviceEvent(DeviceEventKind.PARAMETER_STATUS, detail=name)]
