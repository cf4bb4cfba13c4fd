"""The codec fuzzer (benchmarks/fuzz_codecs.py): a short run per codec, and proof it can fail."""

from __future__ import annotations

import pytest

from benchmarks import fuzz_codecs
from benchmarks.fuzz_checks import (
    ascii1_line_passes,
    iv_passing,
    masimo_passing,
    nonin_readings,
    s5_passing,
)
from benchmarks.fuzz_codecs import fuzz
from benchmarks.fuzz_frames import KINDS, target
from infusion_monitor.devices import datex_s5, intellivue_frames, masimo, nonin
from infusion_monitor.devices.registry import PROTOCOLS
from infusion_monitor.vitals import Vital

FRAMES = 2_000


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_mutated_frames_raise_nothing_and_give_no_reading_from_a_failing_frame(
    protocol: str,
) -> None:
    r = fuzz(protocol, FRAMES, seed=7)
    assert r.exceptions == 0, r.shown
    assert r.bad_readings == 0, r.shown
    # The run exercised what it claims: every kind of mutation, mutants that still pass their
    # check and gave readings, and many that do not.
    assert set(r.kinds) == set(KINDS)
    assert 0 < r.passing_mutants < FRAMES // 2
    assert r.valid_readings > 0 and r.unplugs > 0
    assert r.frames == FRAMES and r.ok


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_the_referee_passes_every_valid_frame(protocol: str) -> None:
    t = target(protocol)
    for frame in (*t.pool[:300], *t.sentinels):
        if t.passing is None:
            assert {v for v, _, _ in nonin_readings(frame)} == {Vital.PR, Vital.SPO2}
        else:
            assert [f for _, f in t.passing(frame)] == [frame]


def test_the_referee_fails_damaged_frames() -> None:
    s5 = target("datex-s5").pool[0]
    assert s5_passing(s5[:40] + bytes([s5[40] ^ 1]) + s5[41:]) == []
    iv = target("intellivue").pool[0]
    assert iv_passing(iv[:-1] + b"\x7d\xc1") == []  # 7D C1: the sender aborted the frame
    assert iv_passing(iv[:20] + b"\xc0" + iv[20:]) == []  # cut off by a new start
    assert iv_passing(intellivue_frames.encode_frame(b"\xe1\x00")[:-3] + b"\x00\x00\xc1") == []
    line = target("masimo").pool[0]
    assert masimo_passing(line) and ascii1_line_passes(line[:-2])
    for bad in (line.replace(b"BPM=", b"BPX="), line.replace(b"SPO2=", b"SPO2=SPO2="),
                b"13" + line[2:], line.replace(b" EXC=", b" EXC=G"),
                line.replace(b"PI=", b"PI=\x01"), line[:-2] + b" X=" + b"0" * 512 + b"\r\n"):
        assert masimo_passing(bad) == [], bad
    packet = target("nonin").pool[0]
    assert list(nonin_readings(packet[:4] + bytes([packet[4] ^ 1]) + packet[5:])) == []


def test_a_codec_that_ignores_its_checksum_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: an S/5 codec that repairs the checksum before checking it."""
    check = datex_s5._check_frame

    def blind(segment: bytes) -> tuple[bytes | None, str]:
        raw = datex_s5._unescape(segment)
        if raw is None or len(raw) < 2:
            return check(segment)
        return check(datex_s5.encode_frame(raw[:-1])[1:-1])

    monkeypatch.setattr(datex_s5, "_check_frame", blind)
    r = fuzz("datex-s5", 500, seed=7)
    assert r.bad_readings > 0 and not r.ok
    assert "readings" in r.shown[0]


def test_a_nonin_codec_that_ignores_frame_checksums_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decode = nonin.decode_frame

    def blind(raw: bytes) -> nonin.NoninFrame | None:
        head = bytes(raw[:4])
        return decode(head + bytes([sum(head) & 0xFF]))

    monkeypatch.setattr(nonin, "decode_frame", blind)
    r = fuzz("nonin", 500, seed=7)
    assert r.bad_readings > 0 and not r.ok


def test_exceptions_are_counted_shown_and_fail_the_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parse = masimo.parse_line

    def fragile(line: bytes) -> object:
        if b"\xff" in line:
            raise IndexError("fragile parser")
        return parse(line)

    monkeypatch.setattr(masimo, "parse_line", fragile)
    assert fuzz_codecs.main(["--frames", "500", "--protocol", "masimo", "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("masimo: 500 mutated frames, ")
    assert " 0 exceptions" not in out
    assert "IndexError: fragile parser" in out
