"""The simulated Nonin: 75 frames a second, format selects, and a truth log a decoder matches."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.devices.nonin import (
    ACK,
    MISSING_HR,
    NAK,
    SENSOR_DISCONNECTED,
    NoninCodec,
    decode_frame,
    select_command,
)
from infusion_monitor.vitals import Quality, Reading
from simulators.__main__ import main
from simulators.nonin import NoninStream
from simulators.output import Frame
from simulators.patient import SCENARIOS, Override, PatientModel, Scenario


def decode(data: bytes, codec: NoninCodec | None = None) -> tuple[NoninCodec, list]:
    codec = codec or NoninCodec()
    events = codec.receive_data(data)
    assert codec.stats.frames_rejected == 0
    return codec, events


def reading_counts(events: list) -> Counter:
    return Counter((e.vital.value, e.value) for e in events if isinstance(e, Reading))


def truth_counts(frames_values: list[dict]) -> Counter:
    return Counter((k, float(v)) for values in frames_values for k, v in values.items()
                   if v is not None)


def stream(speed: float = 1.0, scenario: str = "typical") -> NoninStream:
    s = NoninStream(PatientModel(scenario, 0), speed=speed)
    s.connection_made()
    return s


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_file_output_decodes_to_the_truth(name: str, tmp_path: Path) -> None:
    out, truth = tmp_path / "nonin.raw", tmp_path / "truth.jsonl"
    assert main(["--protocol", "nonin", "--scenario", name, "--seed", "4", "--duration", "2100",
                 "--out", str(out), "--truth", str(truth)]) == 0
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    unplugged = 3 * 60 if name == "unplug" else 0
    assert len(rows) == 3 * 2100 - unplugged  # one frame of the log per packet
    assert all(r["r_time"] is None for r in rows)
    codec, events = decode(out.read_bytes())
    assert reading_counts(events) == truth_counts([r["values"] for r in rows])
    # In order too: the decoder's readings are the log's values, packet by packet.
    flat = [(k, float(v)) for r in rows for k, v in r["values"].items()]
    assert [(e.vital.value, e.value) for e in events if isinstance(e, Reading)] == flat
    assert codec.stats.frames_ok == 25 * len(rows)
    assert all(e.t_device is None for e in events if isinstance(e, Reading))


def test_75_frames_per_simulated_second_in_packets_of_25() -> None:
    s = NoninStream(PatientModel("typical", 0))
    s.start_unsolicited(0)
    frames = s.frames_until(10 - 1e-9)
    assert [f.t for f in frames] == [k / 3 for k in range(30)]
    data = b"".join(f.data for f in frames)
    assert len(data) == 10 * 75 * 5
    codec, events = decode(data)
    assert codec.stats.frames_ok == 750
    assert [len(b.samples) for b in events if isinstance(b, WaveformBlock)] == [25] * 30
    assert {b.rate_hz for b in events if isinstance(b, WaveformBlock)} == {75.0}


def test_starts_in_format_2_and_switches_after_an_ack() -> None:
    s = stream()
    s.frames_until(0)  # a reader is there: packets from 0.1 s on
    first = s.frames_until(1.0)
    assert first and all(decode_frame(f.data[:5]).data_format == 2 for f in first)
    s.receive_data(select_command(7)[:3], 1.1)  # a select split across two reads
    s.receive_data(select_command(7)[3:], 1.2)
    frames = s.frames_until(2.0)
    assert frames[0].data == bytes([ACK]) and frames[0].values == {} and frames[0].t == 1.2
    assert [decode_frame(f.data[:5]).data_format for f in frames[1:]] == [7, 7, 7]
    assert s.selects == [(1.2, 7)]


def test_other_formats_get_a_nak_and_change_nothing() -> None:
    s = stream()
    s.frames_until(0.5)
    s.receive_data(select_command(13), 0.5)
    frames = s.frames_until(1.0)
    assert frames[0].data == bytes([NAK])
    assert decode_frame(frames[1].data[:5]).data_format == 2


def test_packets_due_before_an_answer_are_sent_before_it() -> None:
    s = stream()
    s.frames_until(0.1)
    s.receive_data(select_command(7), 1.5)
    frames = s.frames_until(2.0)
    assert [f.t for f in frames] == pytest.approx([1 / 3, 2 / 3, 1.0, 4 / 3, 1.5, 5 / 3, 2.0])
    assert frames[4].data == bytes([ACK])


def test_the_apps_codec_negotiates_format_7_and_decodes_the_truth() -> None:
    codec = NoninCodec()
    codec.connection_made()
    s = stream()
    s.frames_until(0)
    s.receive_data(codec.data_to_send(), 0.0)
    frames = s.frames_until(30)
    _, events = decode(b"".join(f.data for f in frames), codec)
    assert codec.data_to_send() == b""  # the ACK was taken; no retry needed
    assert reading_counts(events) == truth_counts([f.values for f in frames])
    pleth = [b for b in events if isinstance(b, WaveformBlock)]
    assert max(max(b.samples) for b in pleth) > 255  # 16-bit pleth in format #7


STEADY = Scenario("steady", "test: PR 70, SpO2 97 throughout", overrides=(
    Override(0, 10**6, "pr", 70), Override(0, 10**6, "spo2", 97)))


def test_a_new_reader_gets_format_2_and_fresh_repeats_after_the_holdoff() -> None:
    s = NoninStream(PatientModel(STEADY, 0), speed=60)
    s.connection_made()
    s.frames_until(0)  # starts the schedule: the first packet after 0.1 s * 60 = 6 s
    frames = s.frames_until(10)
    assert frames[0].t == pytest.approx(6.0) and len(frames) == 13
    # A steady value is kept in every third packet, the first one included.
    assert [bool(f.values) for f in frames] == [True, False, False] * 4 + [True]
    s.receive_data(select_command(7), 10)
    s.frames_until(10.5)
    s.connection_made()
    s.frames_until(100)
    frames = s.frames_until(110)
    assert frames[0].t == pytest.approx(106.0)
    assert decode_frame(frames[0].data[:5]).data_format == 2
    # The codec forgets repeats on a reconnect, so the first packet of a reader is kept.
    assert frames[0].values == {"pr": 70, "spo2": 97}


def test_pleth_pulses_at_the_pulse_rate() -> None:
    s = NoninStream(PatientModel("typical", 0))
    s.start_unsolicited(0)
    frames = s.frames_until(60 - 1e-9)
    _, events = decode(b"".join(f.data for f in frames))
    samples = [x for b in events if isinstance(b, WaveformBlock) for x in b.samples]
    top = max(samples)
    peaks = sum(1 for a, b, c in zip(samples, samples[1:], samples[2:], strict=False)
                if b >= a and b > c and b > 0.8 * top)
    rates = [f.sample.pr for f in frames]
    assert abs(peaks - sum(rates) / len(rates)) <= 2  # beats in 60 s = the mean pulse rate


def test_probe_off_sends_missing_codes_and_the_disconnect_bit() -> None:
    s = NoninStream(PatientModel("artifact", 0))
    s.start_unsolicited(1195)
    frames: list[Frame] = s.frames_until(1225 - 1e-9)
    off = [f for f in frames if 1200 <= f.t < 1220]
    for f in off:
        first = decode_frame(f.data[:5])
        assert first.status & SENSOR_DISCONNECTED
        hr = ((decode_frame(f.data[0:5]).x & 3) << 7) | decode_frame(f.data[5:10]).x
        assert hr == MISSING_HR and f.values == {}
    _, events = decode(b"".join(f.data for f in frames))
    probe = [e for e in events if isinstance(e, DeviceEvent)
             and e.kind is DeviceEventKind.PROBE_OFF]
    assert [e.detail for e in probe] == ["sensor disconnected"] * 2
    assert {b.quality for b in events if isinstance(b, WaveformBlock)} == {
        Quality.OK, Quality.ARTIFACT}
