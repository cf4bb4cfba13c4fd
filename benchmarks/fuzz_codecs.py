"""Fuzzing: each codec takes randomly mutated valid frames; no exception, no reading from a bad one.

Valid frames come from the bundled simulators' encoders (``benchmarks.fuzz_frames``: every
scenario, several devices and modes). Each is mutated one of ten ways: bit flips, byte
substitutions, insertions, deletions, truncations (head or tail kept), duplications (the frame or
a slice of it), splices of two frames, random garbage before, after or instead of it, a corrupted
length field with the check recomputed (S/5 ``r_len``, IntelliVue header length; a Masimo line
past 512 bytes; a Nonin packet with frames missing or doubled) and changed content with the
check recomputed (which passes, and exercises the decoders behind the check). Random bytes
favour the protocol's own flags, escapes and field characters. A Nonin unit is a 25-frame
packet, the smallest thing readings come from.

Each mutant goes to a codec that has just decoded a valid frame, followed by a valid *sentinel*
frame with values and a device time no simulated frame has (16 of them in turn, so that repeats
are never thinned away); the bytes arrive in 1 to 4 reads cut at random. One turn in 200 starts
with part of a valid frame, the cable pulled and the reconnect (which must give no reading but
its priming frame's). Whether a frame passes
its check is decided by ``benchmarks.fuzz_checks``, independently of the codecs (see there for
each protocol's check; Masimo's ASCII 1 has no checksum, so there it is the line's form). A
reading is attributed thus:

- the sentinel's readings, when all arrive, are the sentinel's; when not, a valid frame was lost
  (the resync cost) and its readings may still come with the next mutant;
- every other reading must be one that a frame in the received bytes which passes its check
  carries: the readings a freshly started codec decodes from that frame alone (Nonin: the PR and
  SpO2 that three consecutive passing frames carry, sync bit on the first). Any other reading
  came from bytes that fail their check: it is counted, and must be zero.

Exceptions are counted (the first few printed with their traceback and input) and must be zero.
Run ``python -m benchmarks.fuzz_codecs [--frames N] [--seed S] [--protocol P]``: one line per
codec, exit 1 on any exception or any reading from a failing frame. ``run()`` returns the rows
for ``python -m benchmarks``, with fewer frames (``SUITE_FRAMES``) to keep the suite short.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from benchmarks.fuzz_checks import Passing, nonin_intact, nonin_readings
from benchmarks.fuzz_frames import N_SENTINELS, Target, mutate, target
from benchmarks.table import Row
from infusion_monitor.devices.base import Codec, Event
from infusion_monitor.devices.registry import PROTOCOLS
from infusion_monitor.vitals import Reading, Vital

DEFAULT_FRAMES = 1_000_000
#: Per codec in ``python -m benchmarks``: 10^6 mutants took 130 (S/5) to 320 (Nonin) s of CPU
#: per codec, 12.5 min for the four: too long for a suite that must run in 10 min on 2 cores.
SUITE_FRAMES = 50_000
SHOWN = 6  # the first exceptions and bad readings, printed in full
UNPLUG_P = 1 / 200  # a turn starts with the cable pulled mid-frame (and a reconnect)

Key = tuple[Vital, float, datetime | None]


@dataclass(slots=True)
class FuzzResult:
    """The counts one codec's run printed."""

    protocol: str
    frames: int = 0
    exceptions: int = 0
    bad_readings: int = 0  # readings no passing frame carries: must be 0
    valid_readings: int = 0  # readings from mutants that still pass their check
    passing_mutants: int = 0  # mutants that are still nothing but frames passing their check
    lost: int = 0  # sentinels (valid frames) whose readings did not all arrive
    unplugs: int = 0  # turns that began with the cable pulled in the middle of a frame
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: steadier than wall time on a busy host
    kinds: Counter[str] = field(default_factory=Counter)
    shown: list[str] = field(default_factory=list)  # the first exceptions and bad readings

    @property
    def ok(self) -> bool:
        return self.exceptions == 0 and self.bad_readings == 0

    def line(self) -> str:
        unit = "packets" if self.protocol == "nonin" else "frames"
        return (f"{self.protocol}: {self.frames:,} mutated {unit}, {self.exceptions:,} exceptions, "
                f"{self.bad_readings:,} readings from failing frames, {self.valid_readings:,} "
                f"readings from still-valid mutants ({self.passing_mutants:,} mutants still "
                f"pass), {self.lost:,} valid frames lost, {self.unplugs:,} unplugs mid-frame, "
                f"{self.frames / max(self.seconds, 1e-9):,.0f} {unit}/s "
                f"({self.seconds:,.0f} s, {self.cpu_seconds:,.0f} s CPU)")


def _keys(events: Iterable[Event]) -> Counter[Key]:
    return Counter((e.vital, e.value, e.t_device) for e in events if isinstance(e, Reading))


def _feed(codec: Codec, data: bytes, rng: random.Random) -> list[Event]:
    """``data`` in 1 to 4 reads cut at random, as a serial port returns it."""
    reads = rng.randrange(4) if len(data) > 1 else 0
    cuts = sorted(rng.randrange(1, len(data)) for _ in range(reads))
    events: list[Event] = []
    start = 0
    for cut in [*cuts, len(data)]:
        if cut > start:
            events += codec.receive_data(data[start:cut])
            start = cut
    return events


class _Referee:
    """The readings that frames passing their check carry (codec-independent framing)."""

    def __init__(self, t: Target) -> None:
        self.t = t
        self._decoded: dict[bytes, Counter[Key]] = {}

    def frames(self, data: bytes) -> Passing:
        assert self.t.passing is not None
        return self.t.passing(data)

    def _alone(self, frame: bytes) -> Counter[Key]:
        """What a new codec decodes from ``frame`` alone (every value, NIBP too)."""
        keys = self._decoded.get(frame)
        if keys is None:
            if len(self._decoded) > 100_000:
                self._decoded.clear()
            keys = self._decoded[frame] = _keys(self.t.new_codec().receive_data(frame))
        return keys

    def readings(self, data: bytes, sentinel: bytes) -> Counter[Key]:
        """Readings passing frames in ``data`` carry, bar the ``sentinel`` that ends it."""
        out: Counter[Key] = Counter()
        if self.t.passing is None:
            for vital, value, (start, _) in nonin_readings(data):
                if start < len(data) - len(sentinel):
                    out[(vital, value, None)] += 1
            return out
        for (_, end), frame in self.frames(data):
            if not (end == len(data) and frame == sentinel):
                out += self._alone(frame)
        return out

    def mutant_passes(self, mutant: bytes) -> bool:
        """Whether the mutant is still nothing but frames that pass their check."""
        if self.t.passing is None:
            return nonin_intact(mutant)
        return b"".join(frame for _, frame in self.frames(mutant)) == mutant


def _unplug_mid_frame(t: Target, codec: Codec, primer: Counter[Key], rng: random.Random,
                      result: FuzzResult) -> None:
    """Part of a valid frame, the cable pulled, then the reconnect and its priming frame.

    The part can give no reading, and the reconnect only the priming frame's: the codec must
    drop the partial frame rather than join it to what comes after the reconnect.
    """
    frame = t.pool[rng.randrange(len(t.pool))]
    # Never the last two bytes: a Masimo line that ends "\r" is already a whole line.
    got = _keys(_feed(codec, frame[: rng.randrange(1, len(frame) - 2)], rng))
    codec.connection_lost()
    got += _keys(t.connect(codec))
    result.lost += got & primer != primer
    got -= primer
    result.bad_readings += got.total()
    if got and len(result.shown) < SHOWN:
        result.shown.append(f"unplugged mid-frame, then readings {sorted(got)}")


def fuzz(protocol: str, frames: int, seed: int = 0,
         progress: Callable[[FuzzResult], None] | None = None, every: int = 100_000
         ) -> FuzzResult:
    """Feed ``frames`` mutants, each followed by a sentinel, to one codec; count what happens.

    ``progress`` is called with the counts so far after every ``every`` mutants.
    """
    t = target(protocol)
    rng = random.Random(f"{seed}:{protocol}")
    referee = _Referee(t)
    expected = [_keys(t.new_codec().receive_data(s)) for s in t.sentinels[:-1]]
    primer = _keys(t.connect(PROTOCOLS[protocol].create()))
    result = FuzzResult(protocol)
    codec = t.new_codec()
    carry = b""  # the last turn's bytes while its sentinel is owed
    started, cpu = time.perf_counter(), time.process_time()
    for turn in range(frames):
        if progress is not None and turn and turn % every == 0:
            result.frames, result.seconds = turn, time.perf_counter() - started
            result.cpu_seconds = time.process_time() - cpu
            progress(result)
        kind, mutant = mutate(t, rng)
        result.kinds[kind] += 1
        sentinel = t.sentinels[turn % N_SENTINELS]
        data = mutant + sentinel
        try:
            if rng.random() < UNPLUG_P:
                result.unplugs += 1
                _unplug_mid_frame(t, codec, primer, rng, result)
                carry = b""
            got = _keys(_feed(codec, data, rng))
        except Exception:  # the failure being counted: any exception at all
            result.exceptions += 1
            if len(result.shown) < SHOWN:
                result.shown.append(f"{kind} mutant {mutant.hex()}\n{traceback.format_exc()}")
            codec, carry = t.new_codec(), b""
            continue
        if referee.mutant_passes(mutant):
            result.passing_mutants += 1
        want = expected[turn % N_SENTINELS]
        delivered = got & want == want
        result.lost += not delivered
        got -= want
        if got:
            scanned = carry + data
            legit = referee.readings(scanned, sentinel)
            bad = got - legit
            result.bad_readings += sum(bad.values())
            result.valid_readings += sum((got - bad).values())
            if bad and len(result.shown) < SHOWN:
                result.shown.append(f"{kind} mutant {mutant.hex()}: readings {sorted(bad)}")
        # A Nonin codec may keep a few bytes of a sentinel it has not decoded yet; the other
        # codecs end every turn clean (after a flag or a line end).
        carry = data if not delivered and t.passing is None else b""
    result.frames = frames
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu
    return result


def run(frames: int = SUITE_FRAMES, seed: int = 0) -> list[Row]:
    """The suite's rows: each codec's exceptions and readings from failing frames (goal 0)."""
    rows = []
    for protocol in PROTOCOLS:
        r = fuzz(protocol, frames, seed)
        note = f"{frames:,} mutants, {r.frames / r.seconds:,.0f}/s"
        rows += [
            Row(f"{protocol} fuzz: exceptions", r.exceptions, "count", "<= 0", note),
            Row(f"{protocol} fuzz: readings from failing frames", r.bad_readings, "count",
                "<= 0", f"{r.valid_readings:,} from still-valid mutants, {r.lost:,} lost"),
        ]
    return rows


def _progress(r: FuzzResult) -> None:
    print("  so far: " + r.line(), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_codecs", description=__doc__
                                .splitlines()[0])
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="mutants per codec")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol", action="append", choices=sorted(PROTOCOLS),
                   help="only this codec (repeatable; default: every codec)")
    p.add_argument("--progress", type=int, default=0, metavar="N",
                   help="also print the counts so far every N mutants (to stderr)")
    args = p.parse_args(argv)
    failed = False
    for protocol in args.protocol or list(PROTOCOLS):
        r = fuzz(protocol, args.frames, args.seed, progress=_progress if args.progress else None,
                 every=args.progress or 1)
        print(r.line(), flush=True)
        for text in r.shown:
            print("  " + text.replace("\n", "\n  "))
        failed |= not r.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
