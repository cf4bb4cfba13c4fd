"""Valid frames of each protocol from the simulators' encoders, and how the fuzzer mutates them.

The pool for each protocol is every scenario with two seeds (the S/5 at DRI level 9, IntelliVue
also in DEMO mode, Masimo as Rad-8 and Radical-7, Nonin in formats #2 and #7). Sentinels are
valid frames with values and a device time no pool frame has. Used by ``fuzz_codecs``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from benchmarks.fuzz_checks import (
    Passing,
    iv_passing,
    iv_unstuff,
    masimo_passing,
    s5_passing,
    s5_unescape,
)
from infusion_monitor.devices import datex_s5, intellivue_frames
from infusion_monitor.devices.base import Codec, Event
from infusion_monitor.devices.nonin import ACK, FRAME_SIZE
from infusion_monitor.devices.registry import PROTOCOLS
from simulators.datex import DatexS5Stream
from simulators.intellivue import IntelliVueStream
from simulators.masimo import MasimoStream
from simulators.nonin import NoninStream
from simulators.output import MonitorStream
from simulators.patient import SCENARIOS, PatientModel, Sample, Scenario

SEEDS = (1, 2)
START = 1_777_885_200  # 2026-05-04 09:00 UTC: the pool's monitor clock at t = 0
SENTINEL_START = 1_924_992_000  # 2031-01-01: no pool frame carries a time near it
N_SENTINELS = 16
KINDS = ("bit flip", "substitution", "insertion", "deletion", "truncation", "duplication",
         "splice", "garbage", "length field", "content")


class _SentinelPatient(PatientModel):
    """Shows the same distinctive values whenever asked: no simulated patient has them."""

    def __init__(self, i: int) -> None:
        super().__init__(Scenario("sentinel", "fuzzing sentinel"), seed=i)
        self.values = (230 + i, 200 + i, 101 + i)  # HR, PR, SpO2

    def sample(self, t: float) -> Sample:
        hr, pr, spo2 = self.values
        return Sample(int(t), hr=hr, pr=pr, spo2=spo2, nibp=None, nibp_measuring=False)


# --- what each protocol's frames are and how they are changed ----------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One protocol's frames, sentinels and the mutations that need to know its format."""

    protocol: str
    pool: tuple[bytes, ...]
    sentinels: tuple[bytes, ...]  # the last one primes new codecs and is not used in turns
    special: bytes  # bytes with a meaning on this wire: random bytes favour them
    passing: Callable[[bytes], Passing] | None  # None: Nonin (readings by frame triples)
    rewrap: Callable[[bytes, random.Random], bytes]  # content changed, check recomputed
    bad_length: Callable[[bytes, random.Random], bytes]  # length wrong, check recomputed
    handshake: bytes = b""  # what a new codec is fed before the priming sentinel

    def new_codec(self) -> Codec:
        """A codec as the link leaves it after connecting and one good frame."""
        codec = PROTOCOLS[self.protocol].create()
        self.connect(codec)
        return codec

    def connect(self, codec: Codec) -> list[Event]:
        """What the link does on (re)connecting, then the priming sentinel; what it gave."""
        codec.connection_made()
        codec.tick(0.0)
        events = codec.receive_data(self.handshake)
        codec.data_to_send()
        return events + codec.receive_data(self.sentinels[-1])


def _changed(data: bytes, rng: random.Random, first: int = 0, count: int = 3) -> bytearray:
    """``data`` with 1 to ``count`` bytes at or after ``first`` changed."""
    out = bytearray(data)
    for _ in range(rng.randint(1, count)):
        i = rng.randrange(first, len(out))
        out[i] = (out[i] + rng.randrange(1, 256)) & 0xFF
    return out


def _other_length(n: int, rng: random.Random) -> int:
    return (n + rng.choice((-1, 1)) * rng.randint(1, 300)) & 0xFFFF


def _s5_record(frame: bytes) -> bytes:
    raw = s5_unescape(frame[1:-1])
    assert raw is not None
    return raw[:-1]


def _s5_rewrap(frame: bytes, rng: random.Random) -> bytes:
    return datex_s5.encode_frame(bytes(_changed(_s5_record(frame), rng, first=2)))


def _s5_bad_length(frame: bytes, rng: random.Random) -> bytes:
    record = bytearray(_s5_record(frame))
    if rng.random() < 0.5:
        record[:2] = _other_length(len(record), rng).to_bytes(2, "little")
    elif rng.random() < 0.5:
        del record[rng.randrange(datex_s5.HEADER_SIZE, len(record)):]
    else:
        record += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    return datex_s5.encode_frame(bytes(record))


def _iv_payload(frame: bytes) -> bytes:
    return iv_unstuff(frame[1:-1])[intellivue_frames.HEADER_SIZE : -intellivue_frames.FCS_SIZE]


def _iv_rewrap(frame: bytes, rng: random.Random) -> bytes:
    return intellivue_frames.encode_frame(bytes(_changed(_iv_payload(frame), rng)))


def _iv_bad_length(frame: bytes, rng: random.Random) -> bytes:
    payload = _iv_payload(frame)
    body = (bytes([intellivue_frames.PROTOCOL_ID, intellivue_frames.MSG_TYPE])
            + _other_length(len(payload), rng).to_bytes(2, "big") + payload)
    stuffed = intellivue_frames.escape(body + intellivue_frames.frame_check(body))
    return bytes([intellivue_frames.BOF]) + stuffed + bytes([intellivue_frames.EOF])


def _masimo_rewrap(line: bytes, rng: random.Random) -> bytes:
    """A digit of a value changed, or a value sent as dashes: still well-formed ASCII 1."""
    out = bytearray(line)
    digits = [i for i in range(18, len(out)) if 0x30 <= out[i] <= 0x39]
    for _ in range(rng.randint(1, 3)):
        out[rng.choice(digits)] = rng.choice(b"0123456789-")
    return bytes(out)


def _masimo_bad_length(line: bytes, rng: random.Random) -> bytes:
    pad = b" PAD=" + b"0" * rng.randint(520 - len(line), 700)
    return line[:-2] + pad + line[-2:]


def _nonin_frames(packet: bytes) -> list[bytes]:
    return [packet[i : i + FRAME_SIZE] for i in range(0, len(packet), FRAME_SIZE)]


def _nonin_rewrap(packet: bytes, rng: random.Random) -> bytes:
    frames = _nonin_frames(packet)
    k = rng.randrange(4) if rng.random() < 0.5 else rng.randrange(len(frames))
    head = _changed(frames[k][:4], rng, count=2)
    frames[k] = bytes(head) + bytes([sum(head) & 0xFF])
    return b"".join(frames)


def _nonin_bad_length(packet: bytes, rng: random.Random) -> bytes:
    frames = _nonin_frames(packet)
    for _ in range(rng.randint(1, 5)):
        k = rng.randrange(len(frames))
        if rng.random() < 0.5 and len(frames) > 1:
            del frames[k]
        else:
            frames.insert(k, frames[k])
    return b"".join(frames)


def _stream_frames(stream: MonitorStream, model: PatientModel, duration: int) -> list[bytes]:
    stream.start_unsolicited(0)
    return [f.data for f in stream.frames_until(duration - 1e-9)
            if len(f.data) > 1 and not model.is_unplugged(f.t)]  # no Nonin ACK/NAK byte


def _pool(build: Callable[[PatientModel, int], MonitorStream], duration: int) -> tuple[bytes, ...]:
    frames: list[bytes] = []
    for scenario in SCENARIOS:
        for seed in SEEDS:
            model = PatientModel(scenario, seed)
            frames += _stream_frames(build(model, seed), model, duration)
    return tuple(frames)


def _sentinels(build: Callable[[PatientModel, int], MonitorStream]) -> tuple[bytes, ...]:
    out = []
    for i in range(N_SENTINELS + 1):
        model = _SentinelPatient(i)
        stream = build(model, i)
        stream.start_unsolicited(0)
        out.append(stream.frames_until(0)[0].data)
    return tuple(out)


def _iv_handshake() -> bytes:
    """The monitor's side of an association (Accept, MDS Create) from the simulator."""
    codec = PROTOCOLS["intellivue"].create()
    codec.connection_made()
    monitor = IntelliVueStream(PatientModel("typical", 0), START)
    monitor.receive_data(codec.data_to_send(), 0.0)
    return b"".join(f.data for f in monitor.frames_until(0.0))


@cache
def target(protocol: str) -> Target:
    """The frames and mutations for ``protocol`` (built once per process)."""
    if protocol == "datex-s5":
        def build(m: PatientModel, i: int) -> MonitorStream:
            if isinstance(m, _SentinelPatient):
                return DatexS5Stream(m, SENTINEL_START + i * 60)
            return DatexS5Stream(m, START)
        return Target(protocol, _pool(build, 1800), _sentinels(build),
                      b"\x7e\x7d\x5e\x5d\x00\xff", s5_passing, _s5_rewrap, _s5_bad_length)
    if protocol == "intellivue":
        def build_iv(m: PatientModel, i: int) -> MonitorStream:
            if isinstance(m, _SentinelPatient):
                return IntelliVueStream(m, SENTINEL_START + i * 60)
            return IntelliVueStream(m, START, demo=i == SEEDS[-1])
        return Target(protocol, _pool(build_iv, 600), _sentinels(build_iv),
                      b"\xc0\xc1\x7d\x11\x01\xe1\x00\xff", iv_passing, _iv_rewrap,
                      _iv_bad_length, handshake=_iv_handshake())
    if protocol == "masimo":
        def build_masimo(m: PatientModel, i: int) -> MonitorStream:
            if isinstance(m, _SentinelPatient):
                return MasimoStream(m, SENTINEL_START + i * 60)
            return MasimoStream(m, START, radical7=i == SEEDS[-1])
        return Target(protocol, _pool(build_masimo, 600), _sentinels(build_masimo),
                      b"\r\n =%-.+/:0123456789ABCDEFSPOBMIVX", masimo_passing, _masimo_rewrap,
                      _masimo_bad_length)
    if protocol == "nonin":
        def build_nonin(m: PatientModel, i: int) -> MonitorStream:
            if isinstance(m, _SentinelPatient):
                return NoninStream(m, data_format=7)
            return NoninStream(m, data_format=2 if i == SEEDS[0] else 7)
        return Target(protocol, _pool(build_nonin, 200), _sentinels(build_nonin),
                      b"\x01\x80\x81\x83\x06\x15\x02\x03\x7f", None, _nonin_rewrap,
                      _nonin_bad_length, handshake=bytes([ACK]))
    raise ValueError(f"no fuzz target for protocol {protocol!r}")


# --- mutation ------------------------------------------------------------------------------------


def _random_bytes(rng: random.Random, n: int, special: bytes) -> bytes:
    return bytes(special[rng.randrange(len(special))] if rng.random() < 0.25
                 else rng.randrange(256) for _ in range(n))


def mutate(t: Target, rng: random.Random) -> tuple[str, bytes]:
    """(kind, bytes) of one random mutation of a random valid frame from the pool."""
    frame = t.pool[rng.randrange(len(t.pool))]
    n = len(frame)
    kind = KINDS[rng.randrange(len(KINDS))]
    if kind in ("bit flip", "substitution"):
        out = bytearray(frame)
        for _ in range(rng.randint(1, 3 if kind == "bit flip" else 4)):
            i = rng.randrange(n)
            if kind == "bit flip":
                out[i] ^= 1 << rng.randrange(8)
            else:
                out[i] = _random_bytes(rng, 1, t.special)[0]
        return kind, bytes(out)
    if kind == "insertion":
        i = rng.randrange(n + 1)
        return kind, frame[:i] + _random_bytes(rng, rng.randint(1, 8), t.special) + frame[i:]
    if kind == "deletion":
        i = rng.randrange(n)
        return kind, frame[:i] + frame[i + rng.randint(1, 8):]
    if kind == "truncation":
        i = rng.randrange(1, n)
        return kind, frame[:i] if rng.random() < 0.5 else frame[i:]
    if kind == "duplication":
        if rng.random() < 0.5:
            return kind, frame + frame
        i, j = sorted((rng.randrange(n), rng.randrange(n)))
        return kind, frame[:j] + frame[i:j] + frame[j:]
    if kind == "splice":
        other = t.pool[rng.randrange(len(t.pool))]
        return kind, frame[: rng.randrange(n)] + other[rng.randrange(len(other)):]
    if kind == "garbage":
        junk = _random_bytes(rng, rng.randint(1, 64), t.special)
        return kind, (junk + frame, frame + junk, junk)[rng.randrange(3)]
    if kind == "length field":
        return kind, t.bad_length(frame, rng)
    return kind, t.rewrap(frame, rng)
