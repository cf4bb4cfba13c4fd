"""The simulated Masimo: what it sends is exactly what the truth log says a decoder yields."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import simulators.__main__ as sim_main
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.devices.masimo import (
    EXC_LOW_PERFUSION,
    EXC_SENSOR_OFF,
    MasimoCodec,
    parse_line,
)
from infusion_monitor.vitals import Quality, Reading
from simulators.__main__ import main
from simulators.masimo import HOLDOFF_S, MasimoStream
from simulators.patient import SCENARIOS, PatientModel

START = "2026-01-01T09:00:00Z"
EPOCH = 1767258000


def decoded_by_time(data: bytes) -> tuple[dict[int, dict[str, float]], list]:
    """Readings grouped by the line's time (epoch seconds), and every event."""
    codec = MasimoCodec()
    events = codec.receive_data(data)
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for e in events:
        if isinstance(e, Reading):
            assert e.t_device is not None
            out[int(e.t_device.timestamp())][e.vital.value] = e.value
    assert codec.stats.frames_rejected == 0
    return dict(out), events


def truth_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_file(tmp_path: Path, *args: str) -> tuple[bytes, list[dict]]:
    out, truth = tmp_path / "masimo.raw", tmp_path / "truth.jsonl"
    assert main(["--protocol", "masimo", "--out", str(out), "--truth", str(truth),
                 "--start", START, *args]) == 0
    return out.read_bytes(), truth_rows(truth)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_file_output_decodes_to_the_truth(name: str, tmp_path: Path) -> None:
    data, rows = run_file(tmp_path, "--scenario", name, "--seed", "4", "--duration", "2100")
    expected_times = [t for t in range(2100) if not (name == "unplug" and 900 <= t < 960)]
    assert [r["t"] for r in rows] == expected_times  # one line per simulated second
    assert all(r["r_time"] == EPOCH + r["t"] for r in rows)
    truth = {r["r_time"]: {k: v for k, v in r["values"].items() if v is not None} for r in rows}
    decoded, _ = decoded_by_time(data)
    assert decoded == {k: v for k, v in truth.items() if v}
    assert {k for v in truth.values() for k in v} == {"spo2", "pr", "pi"}  # a Rad-8: no PVI


def test_radical7_sends_pvi(tmp_path: Path) -> None:
    data, rows = run_file(tmp_path, "--duration", "120", "--masimo-model", "radical-7")
    assert all(6 <= r["values"]["pvi"] <= 22 for r in rows)
    decoded, _ = decoded_by_time(data)
    assert [decoded[r["r_time"]]["pvi"] for r in rows] == [r["values"]["pvi"] for r in rows]


def test_pi_is_plausible_and_sent_exactly(tmp_path: Path) -> None:
    data, rows = run_file(tmp_path, "--duration", "1000")
    pis = [r["values"]["pi"] for r in rows]
    assert 1.0 <= min(pis) and max(pis) <= 5.0 and len(set(pis)) > 50
    for line, row in zip(data.splitlines(), rows, strict=True):
        parsed = parse_line(line)
        assert not isinstance(parsed, str)
        assert {k.value: v for k, v in parsed.values.items()} == row["values"]


def test_probe_off_sends_dashes_with_sensor_off_and_artifacts_low_perfusion(tmp_path: Path):
    data, rows = run_file(tmp_path, "--scenario", "artifact", "--duration", "2100")
    by_t = {r["t"]: r["values"] for r in rows}
    lines = dict(zip((r["t"] for r in rows), data.splitlines(), strict=True))
    for t in range(1200, 1220):
        assert by_t[t] == {"spo2": None, "pr": None, "pi": None}
        assert b"SPO2=---% BPM=--- PI=--.--%" in lines[t]
        assert parse_line(lines[t]).exc & EXC_SENSOR_OFF
    for t in (1199, 1220):
        assert not parse_line(lines[t]).exc & EXC_SENSOR_OFF
    for t in range(900, 920):
        assert parse_line(lines[t]).exc & EXC_LOW_PERFUSION and by_t[t]["pi"] < 0.5
    _, events = decoded_by_time(data)
    questionable = {int(e.t_device.timestamp()) - EPOCH for e in events
                    if isinstance(e, Reading) and e.quality is Quality.QUESTIONABLE}
    assert questionable == set(range(900, 920)) | set(range(1500, 1520))
    probe_off = [e for e in events
                 if isinstance(e, DeviceEvent) and e.kind is DeviceEventKind.PROBE_OFF]
    assert sorted({int(e.t_device.timestamp()) - EPOCH for e in probe_off}) == [1200, 2000]


def test_desaturation_sets_the_alarm_bits(tmp_path: Path) -> None:
    data, rows = run_file(tmp_path, "--scenario", "desaturation", "--duration", "1900")
    lines = dict(zip((r["t"] for r in rows), data.splitlines(), strict=True))
    assert parse_line(lines[1810]).alarm == 0x12  # SpO2 low + alarm active
    assert parse_line(lines[1000]).alarm == 0


class TestLive:
    def stream(self, speed: float = 1.0) -> MasimoStream:
        s = MasimoStream(PatientModel("typical", 0), EPOCH, speed=speed)
        s.connection_made()
        return s

    def test_talks_unprompted_after_the_reader_has_settled(self) -> None:
        s = self.stream(speed=60)
        assert s.next_due() is None
        assert s.frames_until(10.2) == []  # the first call starts the schedule
        first = 10.2 + HOLDOFF_S * 60
        assert s.next_due() == pytest.approx(int(first) + 1)
        frames = s.frames_until(30)
        assert [f.t for f in frames] == [float(t) for t in range(int(first) + 1, 31)]
        assert [f.r_time for f in frames] == [EPOCH + int(f.t) for f in frames]

    def test_ignores_what_it_is_sent_and_restarts_for_a_new_reader(self) -> None:
        s = self.stream()
        s.frames_until(0)
        s.receive_data(b"\x02\x70\x02\x02\x07\x03 anything", 0.5)
        assert [f.t for f in s.frames_until(3)] == [1.0, 2.0, 3.0]
        s.connection_made()
        assert s.frames_until(100) == []  # a new reader: the schedule starts again
        assert [f.t for f in s.frames_until(102)] == [101.0, 102.0]


def test_baud_defaults_to_the_protocols_registry_rate(monkeypatch, tmp_path: Path) -> None:
    seen: list[int] = []

    class FakePort:
        def __init__(self, url: str, baudrate: int = 0) -> None:
            seen.append(baudrate)
            raise OSError("not a real port")

    monkeypatch.setattr(sim_main, "PortTransport", FakePort)
    monkeypatch.setattr(sim_main, "_install_signals", lambda controls: None)
    for protocol in ("masimo", "nonin", "datex-s5"):
        assert main(["--protocol", protocol, "--port", "loop://", "--duration", "1"]) == 1
    assert main(["--protocol", "masimo", "--port", "loop://", "--baud", "4800"]) == 1
    assert seen == [9600, 9600, 19200, 4800]
