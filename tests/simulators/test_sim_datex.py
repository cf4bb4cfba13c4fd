"""The simulated S/5: what it sends is exactly what the truth log says a correct decoder yields."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from types import MappingProxyType

import pytest

from infusion_monitor.devices.datex_s5 import DatexS5Codec, build_start_request
from infusion_monitor.vitals import Reading
from simulators.__main__ import main
from simulators.datex import DatexS5Stream
from simulators.output import TruthLog, write_file
from simulators.patient import SCENARIOS, PatientModel, Scenario

START = "2026-01-01T09:00:00Z"
EPOCH = 1767258000


def decoded_by_time(data: bytes, codec: DatexS5Codec | None = None) -> dict[int, dict[str, float]]:
    """Readings grouped by the monitor's r_time (seconds)."""
    codec = codec or DatexS5Codec()
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for e in codec.receive_data(data):
        if isinstance(e, Reading):
            assert e.t_device is not None
            out[int(e.t_device.timestamp())][e.vital.value] = e.value
    assert codec.stats.frames_rejected == 0
    return dict(out)


def truth_by_time(path: Path) -> dict[int, dict[str, float]]:
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out[row["r_time"]] = {k: v for k, v in row["values"].items() if v is not None}
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_file_output_decodes_to_the_truth(name: str, tmp_path: Path) -> None:
    out, truth = tmp_path / "s5.raw", tmp_path / "truth.jsonl"
    assert main(["--scenario", name, "--seed", "4", "--out", str(out), "--truth", str(truth),
                 "--start", START]) == 0
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert all(r["r_time"] == EPOCH + r["t"] for r in rows)
    expected_times = [t for t in range(0, 4500, 5) if not (name == "unplug" and 900 <= t < 960)]
    assert [r["t"] for r in rows] == expected_times
    decoded = decoded_by_time(out.read_bytes())
    assert decoded == {k: v for k, v in truth_by_time(truth).items() if v}


def test_truth_lists_each_nibp_measurement_once(tmp_path: Path) -> None:
    out, truth = tmp_path / "s5.raw", tmp_path / "truth.jsonl"
    main(["--scenario", "hypertensive", "--out", str(out), "--truth", str(truth), "--start", START])
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    nibp = [(r["t"], r["values"]["nibp_sys"]) for r in rows if "nibp_sys" in r["values"]]
    assert [t for t, _ in nibp] == list(range(90, 4500, 300))
    assert dict(nibp)[2190] == 184 and dict(nibp)[2490] == 202


def test_repeated_identical_nibp_is_a_new_measurement(tmp_path: Path) -> None:
    """Two measurements with the same values: the measuring flag tells them apart."""
    same = Scenario("same", "test", nibp_results=MappingProxyType({60: (120, 80), 360: (120, 80)}))
    model = PatientModel(same, 0)
    truth_path = tmp_path / "truth.jsonl"
    truth = TruthLog(truth_path)
    write_file(DatexS5Stream(model, EPOCH), model, tmp_path / "s5.raw", 700, truth)
    truth.close()
    decoded = decoded_by_time((tmp_path / "s5.raw").read_bytes())
    assert decoded == truth_by_time(truth_path)
    assert [t - EPOCH for t, v in sorted(decoded.items()) if "nibp_sys" in v] == [90, 390, 690]


def test_artifact_invalid_spo2_is_sent_as_a_sentinel(tmp_path: Path) -> None:
    out, truth = tmp_path / "s5.raw", tmp_path / "truth.jsonl"
    main(["--scenario", "artifact", "--out", str(out), "--truth", str(truth), "--start", START])
    decoded = decoded_by_time(out.read_bytes())
    for t in range(1200, 1220, 5):
        assert "spo2" not in decoded[EPOCH + t] and "pr" not in decoded[EPOCH + t]
    assert decoded[EPOCH + 900]["hr"] == 320 and decoded[EPOCH + 1500]["hr"] == 10


class TestRequests:
    def stream(self) -> DatexS5Stream:
        s = DatexS5Stream(PatientModel("typical", 0), EPOCH)
        s.connection_made()
        return s

    def test_silent_until_asked(self) -> None:
        s = self.stream()
        assert s.next_due() is None and s.frames_until(1000) == []

    def test_start_request_starts_on_the_interval_grid(self) -> None:
        s = self.stream()
        s.receive_data(build_start_request(5, 9), 12.3)
        assert [f.t for f in s.frames_until(30)] == [15, 20, 25, 30]
        assert [f.r_time for f in s.frames_until(35)] == [EPOCH + 35]

    def test_request_split_across_reads(self) -> None:
        s = self.stream()
        req = build_start_request()
        s.receive_data(req[:10], 0)
        assert s.next_due() is None
        s.receive_data(req[10:], 0)
        assert s.next_due() == 0

    def test_short_interval_is_raised_to_5_and_longer_is_kept(self) -> None:
        s = self.stream()
        s.receive_data(build_start_request(1, 9), 0)
        assert [f.t for f in s.frames_until(10)] == [0, 5, 10]
        s.connection_made()
        s.receive_data(build_start_request(10, 9), 0)
        assert [f.t for f in s.frames_until(30)] == [0, 10, 20, 30]

    def test_other_dri_levels_are_ignored(self) -> None:
        s = self.stream()
        s.receive_data(build_start_request(5, 7) + build_start_request(5, 11), 0)
        assert s.next_due() is None

    def test_the_apps_codec_requests_are_answered(self) -> None:
        codec = DatexS5Codec()
        codec.connection_made()
        s = self.stream()
        s.receive_data(codec.data_to_send(), 0)
        frames = s.frames_until(5)
        assert len(frames) == 2
        decoded = decoded_by_time(b"".join(f.data for f in frames), codec)
        assert set(decoded) == {EPOCH, EPOCH + 5}

    def test_stop_request_stops(self) -> None:
        s = self.stream()
        s.receive_data(build_start_request(), 0)
        s.frames_until(10)
        s.receive_data(build_start_request(stop=True), 11)
        assert s.next_due() is None and s.frames_until(100) == []

    def test_new_connection_must_ask_again(self) -> None:
        s = self.stream()
        s.receive_data(build_start_request(), 0)
        s.connection_made()
        assert s.frames_until(100) == []
