"""Masimo Rad-8 / Radical-7 serial "ASCII 1": one text line a second, read by its keys.

Wire facts come from the shared design notes (protocols.md, "Masimo Rad-8 / Radical-7 serial
ASCII 1"), checked against a Rad-8 capture published in yahnatan/pulseox (README) and OpenICE's
Radical driver (mdpnp ``poxrad_discrete.h``: Radical-5 and Radical-7 example lines, the names of
the ALARM and EXC bits). The module also holds the line encoder the simulator uses, so that both
sides of the wire share one description of it.

Decisions, and why:

- A line is read as ``KEY=VALUE`` pairs after its date and time, never by column: the Radical-5
  sends only ``SPO2= BPM= PI= ALARM= EXC=``, the Radical-7 adds ``SPCO= ... PVI=``.
- A line counts as a frame only if it is well-formed: date and time, ``SPO2=`` and ``BPM=``, every
  token a ``KEY=VALUE`` pair (a value never holds ``=``), every value we use a number or dashes.
  ASCII 1 has no checksum, so this strictness is what keeps noise and damaged lines from
  counting as frames (auto-detect relies on it).
- The device time is the line's date and time read as UTC. The Rad-8 prints its own wall clock
  without a zone; the recorder's receipt time (UTC) stays the time of record.
- EXC bits 001, 002, 020 and 080 (no, defective, off, unrecognised sensor) are a probe problem
  (``PROBE_OFF``); 004, 008, 010, 040 and 400 (low perfusion, pulse search, interference, ambient
  light, low signal IQ) a signal problem. Values sent while any of them is set are
  QUESTIONABLE: the Radical-7 example line carries ``SPO2=098`` with ``EXC=000820`` (sensor off),
  so values and such bits do coexist. 800 (SET mode) is normal operation, not a problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from infusion_monitor.devices.base import (
    Codec,
    DeviceEvent,
    DeviceEventKind,
    Event,
    SerialSettings,
)
from infusion_monitor.vitals import Quality, Reading, Vital

#: Longest line kept (bytes); a real Radical-7 line is about 150. Longer is noise.
MAX_LINE = 512
_EOL = re.compile(rb"[\r\n]")

#: ``KEY=`` -> vital, for the keys we record.
KEY_VITALS: tuple[tuple[str, Vital], ...] = (
    ("SPO2", Vital.SPO2), ("BPM", Vital.PR), ("PI", Vital.PI), ("PVI", Vital.PVI),
)
REQUIRED_KEYS = ("SPO2", "BPM")
VALID = "valid"
NO_VALUE = "no value"  # PARAMETER_STATUS detail while the device sends dashes

EXC_NO_SENSOR = 0x001
EXC_DEFECTIVE_SENSOR = 0x002
EXC_LOW_PERFUSION = 0x004
EXC_PULSE_SEARCH = 0x008
EXC_INTERFERENCE = 0x010
EXC_SENSOR_OFF = 0x020
EXC_AMBIENT_LIGHT = 0x040
EXC_UNRECOGNISED_SENSOR = 0x080
EXC_LOW_SIGNAL_IQ = 0x400
EXC_SET_MODE = 0x800  # "Masimo SET": set in normal operation (the example line has it)

#: (bit, name, is a probe problem) for every EXC bit that starts and ends a condition.
EXC_CONDITIONS: tuple[tuple[int, str, bool], ...] = (
    (EXC_NO_SENSOR, "no sensor", True),
    (EXC_DEFECTIVE_SENSOR, "defective sensor", True),
    (EXC_LOW_PERFUSION, "low perfusion", False),
    (EXC_PULSE_SEARCH, "pulse search", False),
    (EXC_INTERFERENCE, "interference", False),
    (EXC_SENSOR_OFF, "sensor off", True),
    (EXC_AMBIENT_LIGHT, "ambient light", False),
    (EXC_UNRECOGNISED_SENSOR, "unrecognised sensor", True),
    (EXC_LOW_SIGNAL_IQ, "low signal IQ", False),
)
QUESTIONABLE_MASK = sum(bit for bit, _, _ in EXC_CONDITIONS)
#: A probe problem makes these tiles show why they are empty.
PROBE_VITALS = (Vital.SPO2, Vital.PR)

#: ALARM bits (protocols.md; 0x40 from OpenICE's list).
ALARM_BITS: tuple[tuple[int, str], ...] = (
    (0x01, "SpO2 high"), (0x02, "SpO2 low"), (0x04, "pulse rate high"),
    (0x08, "pulse rate low"), (0x10, "alarm active"), (0x20, "alarm silenced"),
    (0x40, "low battery"),
)

#: Consecutive text lines that are not ASCII 1 before saying the output mode is wrong.
FOREIGN_LINES = 3
WRONG_MODE = (
    "the oximeter sends text that is not ASCII 1: set the Rad-8 serial output to ASCII 1 "
    "(the factory setting is ASCII 2)"
)

_HEAD = re.compile(r"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)")
#: A value never holds "=": two pairs run together by a damaged space are not one pair.
_TOKEN = re.compile(r"([A-Z][A-Z0-9]*)=([^\s=]*)")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
_DASH_CHARS = frozenset("+-.")


@dataclass(frozen=True, slots=True)
class Ascii1Line:
    """One well-formed line: its time, the recorded values sent (None = dashes), EXC and ALARM."""

    time: datetime
    values: dict[Vital, float | None]
    exc: int
    alarm: int


class _MalformedLineError(ValueError):
    """A line that is not well-formed; the message says why."""


def _line_time(head: re.Match[str]) -> datetime:
    month, day, year, hour, minute, second = (int(g) for g in head.groups())
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise _MalformedLineError(f"impossible date or time {head.group(0)!r}") from None


def _fields(rest: str) -> dict[str, str]:
    """``KEY=VALUE`` tokens; ``KEY= VALUE`` (a sign sent as a space) is joined into one."""
    tokens = rest.split()
    fields: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        m = _TOKEN.fullmatch(tokens[i])
        if m is None:
            raise _MalformedLineError(f"not a KEY=VALUE pair: {tokens[i][:20]!r}")
        key, value = m.groups()
        if not value and i + 1 < len(tokens) and "=" not in tokens[i + 1]:
            value = tokens[i + 1]
            i += 1
        if key in fields:
            raise _MalformedLineError(f"{key}= sent twice")
        fields[key] = value
        i += 1
    return fields


def _value(key: str, raw: str) -> float | None:
    """A number, or None for dashes (``---``, ``--.-``, ``+--``); a unit ``%`` is dropped."""
    text = raw[:-1] if raw.endswith("%") else raw
    if _NUMBER.fullmatch(text):
        return float(text)
    if text and "-" in text and set(text) <= _DASH_CHARS:
        return None
    raise _MalformedLineError(f"bad {key} value {raw[:20]!r}")


def _hex(key: str, fields: dict[str, str]) -> int:
    raw = fields.get(key, "0")  # the Radical-5 may send fewer fields; absent means none set
    if not _HEX.fullmatch(raw):
        raise _MalformedLineError(f"bad {key} value {raw[:20]!r}")
    return int(raw, 16)


def parse_line(line: bytes) -> Ascii1Line | str:
    """The well-formed ASCII 1 line in ``line`` (no terminator), else why it is not one."""
    try:
        text = line.decode("ascii")
        if not text.isprintable():
            raise _MalformedLineError("control characters in the line")
        head = _HEAD.match(text)
        if head is None or text[17:18] not in ("", " "):
            raise _MalformedLineError("no date and time at the start")
        time = _line_time(head)
        fields = _fields(text[17:])
        missing = [f"{k}=" for k in REQUIRED_KEYS if k not in fields]
        if missing:
            raise _MalformedLineError(f"no {' or '.join(missing)}")
        values = {vital: _value(key, fields[key]) for key, vital in KEY_VITALS if key in fields}
        return Ascii1Line(time, values, _hex("EXC", fields), _hex("ALARM", fields))
    except UnicodeDecodeError:
        return "not ASCII text"
    except _MalformedLineError as exc:
        return str(exc)


def looks_like_other_mode(line: bytes) -> bool:
    """Printable text without ``SPO2=``: a printer format (ASCII 2) or another output mode."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return False
    return (len(text.strip()) >= 8 and text.isprintable() and "SPO2=" not in text
            and sum(c.isalnum() for c in text) >= 4)


def alarm_names(alarm: int) -> list[str]:
    """Names of the ALARM bits set (unknown bits by their hex value)."""
    names = [name for bit, name in ALARM_BITS if alarm & bit]
    unknown = alarm & ~sum(bit for bit, _ in ALARM_BITS)
    return names + ([f"other alarm bits {unknown:04X}"] if unknown else [])


# --- encoder (for the simulator) ----------------------------------------------------------------


def _text(value: float | None, spec: str, dashes: str) -> str:
    return dashes if value is None else format(value, spec)


def build_line(
    time: datetime,
    *,
    spo2: int | None,
    bpm: int | None,
    pi: float | None,
    pvi: int | None = None,
    with_pvi: bool = False,
    alarm: int = 0,
    exc: int = EXC_SET_MODE,
    serial_number: str = "0000056661",
) -> bytes:
    """One CR LF terminated ASCII 1 line as a Rad-8 (or, ``with_pvi``, a Radical-7) sends it.

    ``None`` is sent as dashes. The layout follows the published Rad-8 capture.
    """
    parts = [
        time.astimezone(UTC).strftime("%m/%d/%y %H:%M:%S"),
        f"SN={serial_number}",
        f"SPO2={_text(spo2, '03d', '---')}%",
        f"BPM={_text(bpm, '03d', '---')}",
        f"PI={_text(pi, '05.2f', '--.--')}%",
        "SPCO=--.-%", "SPMET=--.-%", "DESAT=--", "PIDELTA=+--",
    ]
    if with_pvi:
        parts.append(f"PVI={_text(pvi, '03d', '---')}")
    parts += [f"ALARM={alarm:04X}", f"EXC={exc:06X}"]
    return (" ".join(parts) + "\r\n").encode("ascii")


# --- the codec ----------------------------------------------------------------------------------


class MasimoCodec(Codec):
    """Decodes ASCII 1 lines into readings and device events; sends nothing (ASCII 1 is one-way).

    The first line after (re)connecting may have started before we listened: if it does not
    parse it is dropped without counting as a rejected frame (as bytes before the first flag are
    for the S/5).
    """

    name = "masimo"
    serial = SerialSettings(baudrate=9600, bytesize=8, parity="N", stopbits=1)

    def __init__(self) -> None:
        super().__init__()
        self._line = bytearray()
        self._overlong = False
        self._fragment = True
        # Survive connection_lost(), so a reconnect repeats no status or condition event.
        self._status: dict[Vital, str] = {}
        self._exc = 0
        self._alarm = 0
        self._foreign = 0
        self._mode_reported = False

    def connection_made(self) -> None:
        """Nothing to ask for; a new connection may say the output mode is wrong again."""
        self._foreign = 0
        self._mode_reported = False

    def connection_lost(self) -> None:
        self._line.clear()
        self._overlong = False
        self._fragment = True

    def receive_data(self, data: bytes) -> list[Event]:
        data = bytes(data)
        self.stats.bytes_in += len(data)
        events: list[Event] = []
        start = 0
        for eol in _EOL.finditer(data):
            self._collect(data[start : eol.start()], events)
            self._end_of_line(events)
            start = eol.end()
        self._collect(data[start:], events)
        self.stats.readings += sum(isinstance(e, Reading) for e in events)
        return events

    def _collect(self, chunk: bytes, events: list[Event]) -> None:
        """Add to the current line; every ``MAX_LINE + 1`` bytes without an end is one rejection."""
        self._line += chunk
        while len(self._line) > MAX_LINE:
            del self._line[: MAX_LINE + 1]
            self._overlong = True
            self._reject(events, f"line longer than {MAX_LINE} bytes", b"")

    def _end_of_line(self, events: list[Event]) -> None:
        line = bytes(self._line)
        self._line.clear()
        overlong, self._overlong = self._overlong, False
        fragment, self._fragment = self._fragment, False
        if overlong or not line:
            return  # the rest of an overlong line was rejected already; CR LF gives empty lines
        parsed = parse_line(line)
        if isinstance(parsed, str):
            if not fragment:
                self._reject(events, parsed, line)
            return
        self._decode(parsed, events)

    def _reject(self, events: list[Event], detail: str, line: bytes) -> None:
        self.stats.frames_rejected += 1
        events.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, detail=detail))
        if not looks_like_other_mode(line):
            return
        self._foreign += 1
        if self._foreign >= FOREIGN_LINES and not self._mode_reported:
            self._mode_reported = True
            events.append(DeviceEvent(DeviceEventKind.DEVICE_ERROR, detail=WRONG_MODE))

    def _decode(self, line: Ascii1Line, events: list[Event]) -> None:
        self.stats.frames_ok += 1
        self._foreign = 0
        t = line.time
        quality = Quality.QUESTIONABLE if line.exc & QUESTIONABLE_MASK else Quality.OK
        for vital, value in line.values.items():
            self._availability(vital, value is not None, t, events)
        for vital, value in line.values.items():
            if value is not None:
                events.append(Reading(vital, value, quality, t_device=t))
        self._exceptions(line.exc, t, events)
        self._alarms(line.alarm, t, events)

    def _availability(self, vital: Vital, sent: bool, t: datetime, events: list[Event]) -> None:
        """One PARAMETER_STATUS per change; the first value of a vital needs none."""
        status = VALID if sent else NO_VALUE
        previous = self._status.get(vital)
        if status != previous and not (previous is None and status == VALID):
            events.append(DeviceEvent(
                DeviceEventKind.PARAMETER_STATUS, detail=status, vital=vital, t_device=t,
            ))
        self._status[vital] = status

    def _exceptions(self, exc: int, t: datetime, events: list[Event]) -> None:
        """An event when an EXC condition starts and one when it ends, not one per line.

        A probe problem starts with PROBE_OFF for SpO2 and pulse rate (their tiles show why they
        are empty); other starts, and every end, are PARAMETER_STATUS events with no vital, so
        that they are recorded without marking a vital as lost.
        """
        changed = exc ^ self._exc
        self._exc = exc
        for bit, name, probe in EXC_CONDITIONS:
            if not changed & bit:
                continue
            if exc & bit and probe:
                events.extend(DeviceEvent(DeviceEventKind.PROBE_OFF, detail=name, vital=v,
                                          t_device=t) for v in PROBE_VITALS)
            else:
                detail = name if exc & bit else f"{name} cleared"
                events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, detail=detail,
                                          t_device=t))

    def _alarms(self, alarm: int, t: datetime, events: list[Event]) -> None:
        """The oximeter's own alarm state, recorded when it changes."""
        if alarm == self._alarm:
            return
        self._alarm = alarm
        detail = ("device alarm: " + ", ".join(alarm_names(alarm)) if alarm
                  else "device alarms cleared")
        events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, detail=detail, t_device=t))
