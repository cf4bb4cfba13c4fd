"""The fuzzer's referee: which bytes are frames that pass their protocol's check.

Written from protocols.md and each codec's documented rules, not from the codecs' code paths, so
that the fuzzer (``benchmarks/fuzz_codecs.py``) can tell by itself whether a reading came from a
frame that passed its check. Each ``*_passing`` function takes the bytes a codec received after a
frame it decoded (its deframer then waits for the next frame: in a S/5 frame, outside an
IntelliVue frame, at the start of a Masimo line) and returns the frames in them that pass: their
``(start, end)`` spans, and their bytes as a codec decodes them alone. The arithmetic of a check
(the IntelliVue FCS) is the codecs' own tested function; what is checked, and where frames begin
and end, is decided here.

- S/5: a frame is the bytes between two 0x7E flags (at most 4096), unescaped (``7D x`` is
  ``x ^ 0x20``; a 7D with nothing after it fails), whose last byte is the 8-bit sum of the others
  and whose first two bytes (``r_len``, little-endian) give its length, at least the 40-byte
  header.
- IntelliVue: a frame runs from C0 to the next C1 with no C0 between and no unpaired 7D before
  the C1 (``7D C1`` aborts it); unstuffed it is at most 1000 bytes, ends in a good PPP FCS,
  starts ``11 01`` and its u16 length is the user data's length.
- Masimo ASCII 1 has no checksum. A line (ended by CR or LF, at most 512 bytes) passes if it is
  printable ASCII, starts with a real ``MM/DD/YY HH:MM:SS``, goes on with space-separated
  ``KEY=VALUE`` tokens only (``KEY= VALUE`` is one pair: a sign sent as a space; no key twice,
  no ``=`` in a value), has ``SPO2=`` and ``BPM=``, its SPO2, BPM, PI and PVI are numbers (with
  an optional ``%``) or dashes, and its EXC and ALARM are hex. Anything else is not ASCII 1.
- Nonin: a 5-byte frame passes if its fifth byte is the sum of the first four (mod 256) and it
  has its format's fixed bits (#2: ``01`` then a status with bit 7; #7: a status with bit 7).
  Readings come from a packet's first three frames (HR MSB, HR LSB, SpO2), so a reading passes
  if those frames pass, are consecutive, of one format, and only the first has the sync bit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from infusion_monitor.devices.intellivue_frames import GOOD_FCS, fcs16
from infusion_monitor.vitals import Vital

Span = tuple[int, int]
Passing = list[tuple[Span, bytes]]

# --- S/5 ------------------------------------------------------------------------------------------
S5_FLAG, S5_ESCAPE = 0x7E, 0x7D
S5_MAX_ESCAPED = 4096
S5_HEADER = 40


def s5_unescape(segment: bytes) -> bytes | None:
    """The bytes behind the stuffing, or None if the segment ends inside an escape."""
    if S5_ESCAPE not in segment:
        return segment
    out = bytearray()
    it = iter(segment)
    for b in it:
        if b == S5_ESCAPE:
            nxt = next(it, None)
            if nxt is None:
                return None
            b = nxt ^ 0x20
        out.append(b)
    return bytes(out)


def s5_record_passes(raw: bytes) -> bool:
    """An unescaped frame body (record and checksum byte) that passes the S/5 checks."""
    record = raw[:-1]
    return (len(record) >= S5_HEADER and sum(record) & 0xFF == raw[-1]
            and int.from_bytes(record[:2], "little") == len(record))


def s5_passing(data: bytes) -> Passing:
    """The S/5 frames in ``data`` that pass (spans without the flag before them).

    The codec is inside a frame: the flag that ended the last one also opens the next.
    """
    out, start = [], 0
    for m in re.finditer(b"\x7e", data):
        segment = data[start : m.start()]
        if segment and len(segment) <= S5_MAX_ESCAPED:
            raw = s5_unescape(segment)
            if raw is not None and s5_record_passes(raw):
                out.append(((start, m.end()), b"\x7e" + segment + b"\x7e"))
        start = m.end()
    return out


# --- IntelliVue -----------------------------------------------------------------------------------
IV_BOF, IV_EOF, IV_ESCAPE = 0xC0, 0xC1, 0x7D
IV_MAX_FRAME = 1000
_IV_STUFFED = re.compile(rb"\x7d(.)", re.DOTALL)


def iv_unstuff(stuffed: bytes) -> bytes:
    return _IV_STUFFED.sub(lambda m: bytes([m[1][0] ^ 0x20]), stuffed)


def iv_frame_passes(raw: bytes) -> bool:
    """An unstuffed frame (header, user data, FCS) that passes the IntelliVue checks."""
    return (6 <= len(raw) <= IV_MAX_FRAME and fcs16(raw) == GOOD_FCS
            and raw[0] == 0x11 and raw[1] == 0x01
            and int.from_bytes(raw[2:4], "big") == len(raw) - 6)


def iv_passing(data: bytes) -> Passing:
    """The IntelliVue frames (C0 to C1) in ``data`` that pass; the codec is between frames."""
    out, pos = [], 0
    while (start := data.find(IV_BOF, pos)) >= 0:
        end = data.find(IV_EOF, start + 1)
        if end < 0:
            break
        restart = data.find(IV_BOF, start + 1, end)
        if restart >= 0:  # cut off by a new start
            pos = restart
            continue
        stuffed = data[start + 1 : end]
        escapes = len(stuffed) - len(stuffed.rstrip(b"\x7d"))
        if escapes % 2 == 0 and iv_frame_passes(iv_unstuff(stuffed)):  # odd: 7D C1 aborts
            out.append(((start, end + 1), data[start : end + 1]))
        pos = end + 1
    return out


# --- Masimo ASCII 1 -------------------------------------------------------------------------------
MASIMO_MAX_LINE = 512
_LINE_END = re.compile(rb"\r\n|[\r\n]")  # CR LF is one end, as far as lines go
_NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e]")
_DATE_TIME = re.compile(rb"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?: |$)")
_KEY = re.compile(rb"[A-Z][A-Z0-9]*")
_NUMBER = re.compile(rb"[+-]?\d+(?:\.\d+)?%?")
_DASHES = re.compile(rb"[+.-]*-[+.-]*%?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")
_VALUE_KEYS = (b"SPO2", b"BPM", b"PI", b"PVI")


def ascii1_line_passes(line: bytes) -> bool:
    """Whether one line (without its terminator) is well-formed ASCII 1."""
    if len(line) > MASIMO_MAX_LINE or _NOT_PRINTABLE.search(line):
        return False
    head = _DATE_TIME.match(line)
    if head is None:
        return False
    month, day, year, hour, minute, second = (int(g) for g in head.groups())
    try:
        datetime(2000 + year, month, day, hour, minute, second)
    except ValueError:
        return False
    fields: dict[bytes, bytes] = {}
    tokens = line[17:].split(b" ")
    tokens = [t for t in tokens if t]
    i = 0
    while i < len(tokens):
        key, eq, value = tokens[i].partition(b"=")
        if not eq or b"=" in value or not _KEY.fullmatch(key) or key in fields:
            return False
        if not value and i + 1 < len(tokens) and b"=" not in tokens[i + 1]:
            i += 1
            value = tokens[i]
        fields[key] = value
        i += 1
    if b"SPO2" not in fields or b"BPM" not in fields:
        return False
    if any(k in fields and not (_NUMBER.fullmatch(fields[k]) or _DASHES.fullmatch(fields[k]))
           for k in _VALUE_KEYS):
        return False
    return all(k not in fields or _HEX.fullmatch(fields[k]) for k in (b"EXC", b"ALARM"))


def masimo_passing(data: bytes) -> Passing:
    """The ASCII 1 lines (terminator included) in ``data`` that pass; a line starts at 0."""
    out, start = [], 0
    for m in _LINE_END.finditer(data):
        if m.start() > start and ascii1_line_passes(data[start : m.start()]):
            out.append(((start, m.end()), data[start : m.end()]))
        start = m.end()
    return out


# --- Nonin ----------------------------------------------------------------------------------------
NONIN_FRAME = 5
_WITH_SYNC = bytes(b for b in range(256) if b & 0x81 == 0x81)
_SYNC_START = re.compile(b"(?=\x01[" + re.escape(_WITH_SYNC) + b"]|[" + re.escape(_WITH_SYNC)
                         + b"])")


def nonin_frame(data: bytes, p: int) -> tuple[int, int, int] | None:
    """(format, status, X) of the 5 bytes at ``p`` if they pass, else None."""
    if p + NONIN_FRAME > len(data):
        return None
    b0, b1, b2, b3, chk = data[p : p + NONIN_FRAME]
    if (b0 + b1 + b2 + b3) & 0xFF != chk:
        return None
    if b0 == 0x01 and b1 & 0x80:
        return 2, b1, b3
    if b0 & 0x80:
        return 7, b0, b3
    return None


def nonin_intact(data: bytes) -> bool:
    """Whether ``data`` is whole Nonin frames that all pass, the first with the sync bit."""
    first = nonin_frame(data, 0)
    return (first is not None and bool(first[1] & 0x01) and len(data) % NONIN_FRAME == 0
            and all(nonin_frame(data, p) for p in range(NONIN_FRAME, len(data), NONIN_FRAME)))


def nonin_readings(data: bytes) -> Iterator[tuple[Vital, float, Span]]:
    """(vital, value, span of its frames) for every PR and SpO2 that passing frames carry."""
    for m in _SYNC_START.finditer(data):
        p = m.start()
        first = nonin_frame(data, p)
        if first is None or not first[1] & 0x01:
            continue
        rest = []
        for k in (1, 2):
            f = nonin_frame(data, p + k * NONIN_FRAME)
            if f is None or f[1] & 0x01 or f[0] != first[0]:
                break
            rest.append(f)
        if rest:
            hr = ((first[2] & 0x03) << 7) | (rest[0][2] & 0x7F)
            if hr != 511:
                yield Vital.PR, float(hr), (p, p + 2 * NONIN_FRAME)
        if len(rest) == 2 and rest[1][2] & 0x7F != 127:
            yield Vital.SPO2, float(rest[1][2] & 0x7F), (p, p + 3 * NONIN_FRAME)
