"""GE Datex-Ohmeda S/5 Computer Interface (DRI): framing, displayed-values decoding, requests.

Wire facts come from the shared design notes (protocols.md, "GE Datex-Ohmeda S/5"), checked against
xeonfusion/VSCapture (C#: ``DataConstants``, ``RequestTransfer``, ``basic_phdb_type``) and
part-cw/LNhealth ``modules/s5parser``. The module also holds the pure encoders the simulator uses,
so that both sides of the wire share one description of it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from infusion_monitor.devices.base import (
    Codec,
    CodecResult,
    DeviceEvent,
    DeviceEventKind,
    Event,
    SerialSettings,
)
from infusion_monitor.vitals import NIBP, Reading, Vital

FLAG = 0x7E  # starts and ends a frame
ESCAPE = 0x7D  # the next byte has bit 5 flipped
ESCAPE_BIT = 0x20
MAX_FRAME = 4096  # escaped bytes; real records are at most 1490 bytes (VSCapture's buffer)

HEADER_SIZE = 40
# r_len, r_nbr, r_dri_level, plug_id, r_time, reserved, r_maintype; then 8 descriptors
_HEADER = struct.Struct("<HBBHIIH")
_DESCRIPTOR = struct.Struct("<hB")  # offset (from the end of the header), type
_N_DESCRIPTORS = 8
DRI_MT_PHDB = 0  # physiological database record (1 = waveform, 4 = alarm)
DRI_PH_DISPL = 1  # subrecord type / request type: displayed values
DRI_EOL_SUBR_LIST = 0xFF  # descriptor type that ends the subrecord list
#: With no valid frame for this long after a request (seconds), the request is sent again: it
#: may have been lost (a USB adapter opened before the monitor cable was plugged in).
REQUEST_RETRY_S = 10.0
DRI_LEVELS = (7, 8, 9, 10, 11)  # DRI levels 2001, 2003, 2005, 2009, 2015 (VSCapture)

# Class request bits (VSCapture DataConstants, OpenICE; DRI spec table 3-3): the basic class is
# sent unless bit 0 DENIES it, so "request basic only" is a mask of 0, not 1.
DRI_PHDBCL_REQ_BASIC_MASK = 0x0000
DRI_PHDBCL_DENY_BASIC_MASK = 0x0001
DRI_PHDBCL_BASIC = 0  # class in bits 8-11 of cl_drilvl_subt

SUBRECORD_SIZE = 278  # time u32, 270-byte class block, marker u8, reserved u8, cl_drilvl_subt u16
CLASS_BLOCK_SIZE = 270
REQUEST_SIZE = 49  # header + phdb_req {type u8, interval u16, class mask u32, reserved u16}
_REQUEST_BODY = struct.Struct("<BHIH")

# "No value" sentinels: any i16 at or below the limit is a status, never a value.
SENTINEL_LIMIT = -32001
INVALID = -32767
NOT_UPDATED = -32766
DISCONTINUITY = -32765
UNDER_RANGE = -32764
OVER_RANGE = -32763
NOT_CALIBRATED = -32762
SENTINEL_NAMES = {
    INVALID: "invalid",
    NOT_UPDATED: "not updated",
    DISCONTINUITY: "discontinuity",
    UNDER_RANGE: "under range",
    OVER_RANGE: "over range",
    NOT_CALIBRATED: "not calibrated",
}
VALID = "valid"

# Basic class: group offsets in the class block; values follow a 6-byte group header.
_ECG, _NIBP, _SPO2 = 0, 72, 118
NIBP_LABEL_OFFSET = _NIBP + 4
NIBP_MEASURING_BIT = 0x20  # LNhealth s5parser: NIBP label bit 5 = "measuring"
# (vital, offset of the i16 value in the class block, divisor to the display unit)
_BASIC_VALUES: tuple[tuple[Vital, int, int], ...] = (
    (Vital.HR, _ECG + 6, 1),
    (Vital.PR, _SPO2 + 8, 1),
    (Vital.SPO2, _SPO2 + 6, 100),
    (Vital.NIBP_SYS, _NIBP + 6, 100),
    (Vital.NIBP_DIA, _NIBP + 8, 100),
    (Vital.NIBP_MEAN, _NIBP + 10, 100),
)
# Group (offset, size) in the basic block after VSCapture's basic_phdb_type; used only to fill
# the simulator's records. ecg_extra (226, 6 bytes) has no header; 268-269 are reserved.
_BASIC_GROUPS = (
    (0, 16), (16, 14), (30, 14), (44, 14), (58, 14), (72, 14), (86, 8), (94, 8), (102, 8),
    (110, 8), (118, 14), (132, 14), (146, 10), (156, 10), (166, 12), (178, 22), (200, 14),
    (214, 12), (232, 8), (240, 14), (254, 14),
)


def status_name(raw: int) -> str:
    """The status of a raw i16: "valid", or the name of its "no value" sentinel."""
    if raw > SENTINEL_LIMIT:
        return VALID
    return SENTINEL_NAMES.get(raw, "no value")


# --- framing ------------------------------------------------------------------------------------


def encode_frame(record: bytes) -> bytes:
    """Append the 8-bit sum checksum, escape 0x7E/0x7D, and wrap the record in flags."""
    body = bytes(record) + bytes([sum(record) & 0xFF])
    # Escape 0x7D first, so the 0x7D introduced by escaping 0x7E is not escaped again.
    body = body.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")
    return b"\x7e" + body + b"\x7e"


def _unescape(segment: bytes) -> bytes | None:
    """Undo the byte stuffing; None if the segment ends in a lone escape byte."""
    if ESCAPE not in segment:
        return segment
    out = bytearray()
    escaped = False
    for b in segment:
        if escaped:
            out.append(b ^ ESCAPE_BIT)
            escaped = False
        elif b == ESCAPE:
            escaped = True
        else:
            out.append(b)
    return None if escaped else bytes(out)


def _check_frame(segment: bytes) -> tuple[bytes | None, str]:
    """Return (record, "") for a frame with a good checksum and length, else (None, reason)."""
    raw = _unescape(segment)
    if raw is None:
        return None, f"escape byte at end of frame ({len(segment)} bytes)"
    record, checksum = raw[:-1], raw[-1]
    if sum(record) & 0xFF != checksum:
        return None, f"checksum mismatch ({len(record)} bytes)"
    if len(record) < HEADER_SIZE:
        return None, f"too short for a header ({len(record)} bytes)"
    r_len = record[0] | record[1] << 8
    if r_len != len(record):
        return None, f"length mismatch (r_len {r_len}, {len(record)} bytes)"
    return record, ""


class _Deframer:
    """Splits a byte stream at 0x7E flags; bytes before the first flag are discarded."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max = max_frame
        self._buf = bytearray()
        self._in_frame = False
        self._overflow = False

    def reset(self) -> None:
        self._buf.clear()
        self._in_frame = False
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """Complete escaped frames in order; None stands for an overlong frame that was dropped."""
        out: list[bytes | None] = []
        start, n = 0, len(data)
        while start < n:
            i = data.find(FLAG, start)
            end = n if i < 0 else i
            if self._in_frame and not self._overflow:
                if len(self._buf) + end - start > self._max:
                    self._overflow = True
                    self._buf.clear()
                else:
                    self._buf += data[start:end]
            if i < 0:
                break
            if self._overflow:
                out.append(None)
            elif self._buf:
                out.append(bytes(self._buf))
            self._buf.clear()
            self._overflow = False
            self._in_frame = True  # a closing flag may also open the next frame
            start = i + 1
        return out


# --- requests -----------------------------------------------------------------------------------


def _header(r_len: int, dri_level: int, r_time: int, r_nbr: int, descriptors: list[int]) -> bytes:
    """A 40-byte record header; ``descriptors`` are subrecord types at offset 0, then 0xFF."""
    head = _HEADER.pack(r_len, r_nbr & 0xFF, dri_level, 0, r_time, 0, DRI_MT_PHDB)
    descs = [*descriptors, DRI_EOL_SUBR_LIST]
    descs += [0] * (_N_DESCRIPTORS - len(descs))
    offsets = [SUBRECORD_SIZE * i if i < len(descriptors) else 0 for i in range(_N_DESCRIPTORS)]
    return head + b"".join(_DESCRIPTOR.pack(o, t) for o, t in zip(offsets, descs, strict=True))


def build_start_request(interval_s: int = 5, dri_level: int = 9, stop: bool = False) -> bytes:
    """The framed 49-byte request for displayed values every ``interval_s`` (0 or stop: stop)."""
    interval = 0 if stop else interval_s
    record = _header(REQUEST_SIZE, dri_level, 0, 0, [0]) + _REQUEST_BODY.pack(
        DRI_PH_DISPL, interval, DRI_PHDBCL_REQ_BASIC_MASK, 0
    )
    return encode_frame(record)


def parse_request(record: bytes) -> tuple[int, int] | None:
    """(interval_s, dri_level) of an unescaped displayed-values request record, else None."""
    if len(record) != REQUEST_SIZE:
        return None
    r_len, _nbr, dri_level, _plug, _t, _res, maintype = _HEADER.unpack_from(record)
    _, type0 = _DESCRIPTOR.unpack_from(record, 16)
    _, type1 = _DESCRIPTOR.unpack_from(record, 19)
    rcrd_type, interval, _mask, _ = _REQUEST_BODY.unpack_from(record, HEADER_SIZE)
    if (r_len, maintype, type0, type1, rcrd_type) != (
        REQUEST_SIZE, DRI_MT_PHDB, 0, DRI_EOL_SUBR_LIST, DRI_PH_DISPL
    ):
        return None
    return interval, dri_level


class RequestDecoder:
    """Finds displayed-values requests in the bytes a client sends (the simulator's side)."""

    def __init__(self) -> None:
        self._deframer = _Deframer()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """(interval_s, dri_level) for each valid request frame completed by ``data``."""
        found = []
        for segment in self._deframer.feed(bytes(data)):
            record = _check_frame(segment)[0] if segment else None
            request = parse_request(record) if record is not None else None
            if request is not None:
                found.append(request)
        return found


# --- displayed values (encoder for the simulator) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicValues:
    """Basic-class values in display units (bpm, %, mmHg) for ``build_displayed_values``.

    ``None`` is sent as INVALID; a value at or below ``SENTINEL_LIMIT`` (e.g. ``NOT_UPDATED``) is
    sent as that raw sentinel. ``nibp_measuring`` sets the NIBP group's "measuring" label bit.
    """

    hr: int | None = None
    pr: int | None = None
    spo2: float | None = None
    nibp_sys: float | None = None
    nibp_dia: float | None = None
    nibp_mean: float | None = None
    nibp_measuring: bool = False


def _raw(value: float | None, divisor: int) -> int:
    if value is None:
        return INVALID
    if value <= SENTINEL_LIMIT:
        return int(value)
    raw = round(value * divisor)
    if not SENTINEL_LIMIT < raw <= 32767:
        raise ValueError(f"{value} does not fit the S/5's 16-bit value field")
    return raw


def build_displayed_values(
    r_time: int, values: BasicValues, dri_level: int = 9, r_nbr: int = 0
) -> bytes:
    """A framed displayed-values record with one basic subrecord; unset groups are INVALID."""
    block = bytearray(CLASS_BLOCK_SIZE)
    for offset, size in _BASIC_GROUPS:
        block[offset + 6 : offset + size] = struct.pack("<h", INVALID) * ((size - 6) // 2)
    block[226:232] = struct.pack("<h", INVALID) * 3  # ecg_extra: values without a group header
    by_vital = {
        Vital.HR: values.hr, Vital.PR: values.pr, Vital.SPO2: values.spo2,
        Vital.NIBP_SYS: values.nibp_sys, Vital.NIBP_DIA: values.nibp_dia,
        Vital.NIBP_MEAN: values.nibp_mean,
    }
    for vital, offset, divisor in _BASIC_VALUES:
        struct.pack_into("<h", block, offset, _raw(by_vital[vital], divisor))
    if values.nibp_measuring:
        struct.pack_into("<H", block, NIBP_LABEL_OFFSET, NIBP_MEASURING_BIT)
    subrecord = struct.pack("<I", r_time) + block + struct.pack("<BBH", 0, 0, DRI_PHDBCL_BASIC)
    header = _header(HEADER_SIZE + SUBRECORD_SIZE, dri_level, r_time, r_nbr, [DRI_PH_DISPL])
    return encode_frame(header + subrecord)


# --- the codec ----------------------------------------------------------------------------------


class DatexS5Codec(Codec):
    """Decodes S/5 displayed-values records into readings; asks for them on connect."""

    name = "datex-s5"
    serial = SerialSettings(baudrate=19200, bytesize=8, parity="E", stopbits=1, rtscts=True)

    def __init__(self, interval_s: int = 5, dri_levels: tuple[int, ...] = DRI_LEVELS) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._dri_levels = dri_levels
        self._deframer = _Deframer()
        # Survive connection_lost(), so a reconnect neither repeats an NIBP nor a status event.
        self._status: dict[Vital, str] = {}
        self._last_nibp: tuple[int, int, int] | None = None
        self._nibp_was_measuring = False
        self._quiet_since: float | None = None  # when the line was last known quiet (tick)
        self._frames_seen = 0

    def connection_made(self) -> None:
        """Ask for displayed values at every DRI level: newer monitors answer only their own."""
        for level in self._dri_levels:
            self._send(build_start_request(self._interval_s, level))
        self._quiet_since = None
        self._frames_seen = self.stats.frames_ok

    def tick(self, monotonic: float) -> None:
        """Repeat the start request while the line stays quiet for ``REQUEST_RETRY_S``."""
        if self.stats.frames_ok != self._frames_seen or self._quiet_since is None:
            self._frames_seen = self.stats.frames_ok
            self._quiet_since = monotonic
        elif monotonic - self._quiet_since >= REQUEST_RETRY_S:
            self.connection_made()
            self._quiet_since = monotonic

    def request_stop(self) -> None:
        """Queue stop requests (interval 0) for every DRI level."""
        for level in self._dri_levels:
            self._send(build_start_request(0, level, stop=True))

    def connection_lost(self) -> None:
        self._deframer.reset()

    def receive_data(self, data: bytes) -> list[Event]:
        data = bytes(data)
        self.stats.bytes_in += len(data)
        events: list[Event] = []
        for segment in self._deframer.feed(data):
            if segment is None:
                self._reject(events, f"frame longer than {MAX_FRAME} bytes")
                continue
            record, reason = _check_frame(segment)
            if record is None:
                self._reject(events, reason)
                continue
            self._decode_record(record, events)
        self.stats.readings += sum(isinstance(e, Reading) for e in events)
        return events

    def _reject(self, events: list[Event], detail: str) -> None:
        self.stats.frames_rejected += 1
        events.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, detail=detail))

    def _decode_record(self, record: bytes, events: list[Event]) -> None:
        """Decode a checksummed record; bad descriptors reject it, other main types are skipped."""
        _len, _nbr, _lvl, _plug, r_time, _res, maintype = _HEADER.unpack_from(record)
        subrecords = []
        for i in range(_N_DESCRIPTORS):
            offset, sr_type = _DESCRIPTOR.unpack_from(record, 16 + 3 * i)
            if sr_type == DRI_EOL_SUBR_LIST:
                break  # what follows is garbage (the real capture has bd bd ff ...)
            if maintype != DRI_MT_PHDB or sr_type != DRI_PH_DISPL:
                continue
            start = HEADER_SIZE + offset
            if offset < 0 or start + SUBRECORD_SIZE > len(record):
                self._reject(events, f"subrecord {i} outside the record (offset {offset})")
                return
            subrecords.append(record[start : start + SUBRECORD_SIZE])
        self.stats.frames_ok += 1
        t_device = datetime.fromtimestamp(r_time, tz=UTC)
        for sub in subrecords:
            cl_drilvl_subt = sub[276] | sub[277] << 8
            if (cl_drilvl_subt >> 8) & 0x0F == DRI_PHDBCL_BASIC:
                self._decode_basic(sub[4 : 4 + CLASS_BLOCK_SIZE], t_device, events)

    def _decode_basic(self, block: bytes, t_device: datetime, events: list[Event]) -> None:
        raws: dict[Vital, int] = {}
        for vital, offset, divisor in _BASIC_VALUES:
            raw = struct.unpack_from("<h", block, offset)[0]
            raws[vital] = raw
            status = status_name(raw)
            previous = self._status.get(vital)
            if status != previous and not (previous is None and status == VALID):
                events.append(DeviceEvent(
                    DeviceEventKind.PARAMETER_STATUS, detail=status, vital=vital,
                    t_device=t_device,
                ))
            self._status[vital] = status
            if status == VALID and vital not in NIBP:
                events.append(Reading(vital, raw / divisor, t_device=t_device))
        self._decode_nibp(block, raws, t_device, events)

    def resume_after(self, recorded: Sequence[Reading]) -> None:
        """The last stored NIBP is the one the S/5 still repeats: not a new measurement."""
        last = {r.vital: r for r in recorded if r.vital in NIBP}
        if len(last) == len(NIBP) and len({r.t_device for r in last.values()}) == 1:
            self._last_nibp = tuple(round(last[v].value * 100) for v in NIBP)  # type: ignore[assignment]

    def _decode_nibp(
        self, block: bytes, raws: dict[Vital, int], t_device: datetime, events: list[Event]
    ) -> None:
        """Emit NIBP only for a new measurement: the S/5 repeats the last one in every record.

        New means the triple changed, or the "measuring" label bit went from set to clear since
        the last emitted triple (a new measurement with the same values). While the cuff is
        measuring nothing is emitted: the values shown then are the previous result. LNhealth
        s5parser: "the S5 keeps outputting stale BP values".
        """
        measuring = bool((block[NIBP_LABEL_OFFSET] | block[NIBP_LABEL_OFFSET + 1] << 8)
                         & NIBP_MEASURING_BIT)
        if measuring:
            self._nibp_was_measuring = True
            return
        triple = (raws[Vital.NIBP_SYS], raws[Vital.NIBP_DIA], raws[Vital.NIBP_MEAN])
        finished = self._nibp_was_measuring
        if any(r > SENTINEL_LIMIT for r in triple) and (triple != self._last_nibp or finished):
            for vital, raw in zip(NIBP, triple, strict=True):
                if raw > SENTINEL_LIMIT:
                    events.append(Reading(vital, raw / 100, t_device=t_device))
            self._last_nibp = triple
        self._nibp_was_measuring = False


def decode_capture(data: bytes) -> CodecResult:
    """Decode a whole raw capture with a fresh codec (for ``infusion-monitor import``)."""
    codec = DatexS5Codec()
    events = codec.receive_data(data)
    return CodecResult(events=events, stats=codec.stats)
