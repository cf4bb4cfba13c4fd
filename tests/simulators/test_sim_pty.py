"""``python -m simulators --pty`` end to end: a real pty, a pyserial reader, signals, unplugs."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from infusion_monitor.devices.datex_s5 import DatexS5Codec, build_start_request
from infusion_monitor.vitals import Reading

REPO = Path(__file__).resolve().parents[2]
START = "2026-01-01T09:00:00Z"
EPOCH = 1767258000

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def simulator(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Start the simulator on a pty; yield (process, device path); always kill it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--pty", "--start", START,
         "--link", str(tmp_path / "ttySIM0"), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "the simulator printed no device path"
        path = Path(proc.stdout.readline().strip())
        assert path == tmp_path / "ttySIM0"
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_for(port: serial.SerialBase, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data += port.read(4096)
    return data


def decode(codec: DatexS5Codec, data: bytes) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for e in codec.receive_data(data):
        if isinstance(e, Reading):
            assert e.t_device is not None
            out.setdefault(int(e.t_device.timestamp()), {})[e.vital.value] = e.value
    return out


def truth(path: Path) -> dict[int, dict[str, float]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["r_time"]: {k: v for k, v in r["values"].items() if v is not None} for r in rows}


def test_pty_sends_nothing_until_asked_then_matches_the_truth(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with simulator(tmp_path, "--speed", "50", "--seed", "2", "--truth", str(truth_path)) as (
        _proc, path,
    ):
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.2)
        try:
            assert read_for(port, 1.0) == b""  # 50 simulated seconds: a monitor stays silent
            port.write(build_start_request())
            codec = DatexS5Codec()
            got: dict[int, dict[str, float]] = {}
            deadline = time.monotonic() + 15
            while len(got) < 25 and time.monotonic() < deadline:
                got.update(decode(codec, port.read(4096)))
        finally:
            port.close()
    assert len(got) >= 25 and codec.stats.frames_rejected == 0
    expected = truth(truth_path)
    first, last = min(got), max(got)
    assert first - EPOCH >= 50
    assert got == {t: v for t, v in expected.items() if first <= t <= last}
    assert min(expected) == first  # nothing was written before the request
    assert any("nibp_sys" in v for v in got.values())  # an NIBP result came by (every 300 s)


def test_sigusr1_unplugs_and_a_new_pty_comes_back(tmp_path: Path) -> None:
    with simulator(tmp_path, "--speed", "50", "--unplug-seconds", "60") as (proc, path):
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.2)
        codec = DatexS5Codec()
        try:
            codec.connection_made()  # the app's own requests (every DRI level)
            port.write(codec.data_to_send())
            wait_for(lambda: bool(decode(codec, port.read(4096))), 10, "first frames")
            unplugged_at = time.monotonic()
            proc.send_signal(signal.SIGUSR1)
            with pytest.raises(serial.SerialException):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    port.read(4096)
        finally:
            port.close()
        assert not path.exists()
        wait_for(path.exists, 10, "the symlink to come back")
        assert time.monotonic() - unplugged_at >= 60 / 50 * 0.8
        assert os.readlink(path).startswith("/dev/")
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.2)
        try:
            assert read_for(port, 0.3) == b""  # a replugged monitor waits to be asked again
            port.write(build_start_request())
            codec.connection_lost()
            wait_for(lambda: bool(decode(codec, port.read(4096))), 10, "frames after replug")
        finally:
            port.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert not os.path.lexists(path)


def test_unplug_scenario_drops_the_port_at_900_s(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with simulator(tmp_path, "--scenario", "unplug", "--speed", "400", "--duration", "1100",
                   "--truth", str(truth_path)) as (proc, path):
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.1)
        codec = DatexS5Codec()
        got: dict[int, dict[str, float]] = {}
        try:
            port.write(build_start_request())
            with pytest.raises(serial.SerialException):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    got.update(decode(codec, port.read(4096)))
        finally:
            port.close()
        # Frames still in the pty buffer when the cable goes are lost, as on a real cable.
        assert 800 <= max(got) - EPOCH <= 895
        wait_for(path.exists, 10, "the replugged pty")
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.1)
        try:
            port.write(build_start_request())
            codec.connection_lost()
            after: dict[int, dict[str, float]] = {}
            wait_for(lambda: bool(after.update(decode(codec, port.read(4096))) or after), 10,
                     "frames after the replug")
        finally:
            port.close()
        assert min(after) - EPOCH >= 960
        assert proc.wait(10) == 0  # stops by itself after --duration
    sent = sorted(t - EPOCH for t in truth(truth_path))
    assert not [t for t in sent if 900 <= t < 960]
    assert max(t for t in sent if t < 900) == 895  # the last frame written before the pull


def test_stops_after_duration_and_cleans_up(tmp_path: Path) -> None:
    with simulator(tmp_path, "--speed", "1000", "--duration", "300") as (proc, path):
        assert proc.wait(10) == 0
        assert not os.path.lexists(path)


def test_default_link_lives_in_a_temp_dir_that_is_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--pty", "--speed", "1000", "--duration", "300"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        path = Path(proc.stdout.readline().strip())
        assert path.name == "ttySIM0"
        assert proc.wait(10) == 0
        assert not path.parent.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_port_url_serves_a_socket_reader(tmp_path: Path) -> None:
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    host, port_no = server.getsockname()
    truth_path = tmp_path / "truth.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--port", f"socket://{host}:{port_no}",
         "--speed", "100", "--start", START, "--truth", str(truth_path)],
        cwd=REPO,
    )
    try:
        conn, _ = server.accept()
        conn.settimeout(0.2)
        codec = DatexS5Codec()
        got: dict[int, dict[str, float]] = {}
        deadline = time.monotonic() + 10
        asked = 0.0
        while len(got) < 10 and time.monotonic() < deadline:
            # pyserial's socket:// open() discards what arrived before it finished opening, so
            # ask until data flows, as the app's codec does.
            if not got and time.monotonic() - asked > 1.0:
                conn.sendall(build_start_request())
                asked = time.monotonic()
            try:
                got.update(decode(codec, conn.recv(4096)))
            except TimeoutError:
                pass
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
        server.close()
    expected = truth(truth_path)
    assert len(got) >= 10
    assert got == {t: v for t, v in expected.items() if min(got) <= t <= max(got)}


def test_skip_starts_the_session_late(tmp_path: Path) -> None:
    """``--skip 1790``: the first frame is from second 1790, where desaturation goes severe."""
    truth_path = tmp_path / "truth.jsonl"
    with simulator(tmp_path, "--scenario", "desaturation", "--speed", "20", "--skip", "1790",
                   "--truth", str(truth_path)) as (_proc, path):
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.2)
        try:
            port.write(build_start_request())
            codec = DatexS5Codec()
            got: dict[int, dict[str, float]] = {}
            deadline = time.monotonic() + 15
            while len(got) < 4 and time.monotonic() < deadline:
                got.update(decode(codec, port.read(4096)))
        finally:
            port.close()
    seconds = sorted(t - EPOCH for t in got)
    assert 1790 <= seconds[0] < 1800
    assert any(v["spo2"] <= 86 for t, v in got.items() if 1800 <= t - EPOCH < 1830)


def test_skip_must_lie_within_the_session(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators", "--pty", "--duration", "300", "--skip", "300"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "--skip" in result.stderr


@pytest.mark.parametrize("wait", [False, True])
def test_wait_for_reader_starts_the_session_clock_when_the_port_opens(
        tmp_path: Path, wait: bool) -> None:
    """A recorder that takes seconds to start (a loaded test machine) misses nothing of the
    scenario with ``--wait-for-reader``; without it the monitor has been running meanwhile."""
    flags = ("--wait-for-reader",) if wait else ()
    with simulator(tmp_path, "--speed", "50", *flags) as (_proc, path):
        time.sleep(3)  # 150 simulated seconds, if the clock were running
        port = serial.serial_for_url(str(path), baudrate=19200, timeout=0.2)
        try:
            port.write(build_start_request())
            codec = DatexS5Codec()
            got: dict[int, dict[str, float]] = {}
            deadline = time.monotonic() + 15
            while not got and time.monotonic() < deadline:
                got.update(decode(codec, port.read(4096)))
        finally:
            port.close()
    first = min(got) - EPOCH
    if wait:
        assert first < 150  # the clock started at the open, not 150 s before it
    else:
        assert first >= 150
