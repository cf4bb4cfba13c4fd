"""Auto-detect against the real simulators on real ptys, a random-bytes line and bad ports."""

from __future__ import annotations

import importlib.util
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from infusion_monitor import cli
from infusion_monitor.devices.detect import (
    Attempt,
    DetectResult,
    Outcome,
    ProtocolEvidence,
    detect,
)
from infusion_monitor.devices.registry import PROTOCOLS

REPO = Path(__file__).resolve().parents[2]
#: Simulator module per protocol (simulators/<module>.py), for protocols still being written.
SIM_MODULES = {"datex-s5": "datex", "intellivue": "intellivue", "masimo": "masimo",
               "nonin": "nonin"}

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys"),
    pytest.mark.timeout(120),
]


def require(protocol: str) -> None:
    """Skip (with the reason) while a protocol's codec or simulator module is not written yet."""
    codec_module = PROTOCOLS[protocol].target.partition(":")[0]
    sim_module = f"simulators.{SIM_MODULES[protocol]}"
    for module in (codec_module, sim_module):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} does not exist yet")


class Simulator:
    """``python -m simulators --protocol P --pty``: its device path; stopped by the fixture."""

    def __init__(self, tmp: Path, protocol: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--protocol", protocol, "--pty",
             "--link", str(tmp / f"tty-{protocol}"), *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        assert ready, "the simulator printed no device path"
        self.path = self.proc.stdout.readline().strip()
        assert self.path, self.proc.stderr.read() if self.proc.stderr else "no path"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(protocol: str, *args: str) -> Simulator:
        started.append(Simulator(tmp_path, protocol, *args))
        return started[-1]

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


# -- the simulators, at real speed ----------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["datex-s5", "intellivue", "masimo", "nonin"])
def test_detect_names_each_simulated_monitor(
    protocol: str, simulator: Callable[..., Simulator],
) -> None:
    require(protocol)
    sim = simulator(protocol)
    attempts: list[Attempt] = []
    t0 = time.monotonic()
    result = detect(sim.path, on_progress=attempts.append)
    took = time.monotonic() - t0

    assert result.protocol == protocol, result.details()
    hit = result.evidence[-1]
    assert hit.protocol == protocol and hit.outcome is Outcome.FOUND
    assert hit.frames_ok >= 2 and hit.frames_ok > hit.frames_rejected
    assert result.summary().startswith(f"Found {PROTOCOLS[protocol].title} on {sim.path} (")
    assert [a.step for a in attempts] == list(range(1, len(result.evidence) + 1))
    assert took < 30, f"{protocol} took {took:.1f} s to detect"
    print(f"\n{protocol} detected in {took:.1f} s: {result.summary()}")


def test_random_bytes_are_no_known_monitor(simulator: Callable[..., Simulator]) -> None:
    sim = simulator("noise", "--seed", "7")
    result = detect(sim.path)

    assert result.protocol is None and not result.cancelled
    summary = result.summary()
    assert summary.startswith(f"No known monitor on {sim.path}: ")
    assert "bytes received" in summary and "Check the cable, the baud rate" in summary
    tried = [e for e in result.evidence if e.outcome is not Outcome.FAILED]
    assert tried, result.details()
    # Every protocol that could be tried saw the noise and found too few valid frames in it.
    for e in tried:
        assert e.bytes_read > 0, e.describe()
        assert e.outcome is Outcome.NOT_THIS, e.describe()
        assert e.frames_ok < 2 or e.frames_ok <= e.frames_rejected, e.describe()
    print(f"\nnoise: {result.seconds:.1f} s; " + "; ".join(result.details()))


def test_a_port_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB-nowhere")
    result = detect(missing)

    assert result.protocol is None
    assert "no such port" in result.port_error
    assert result.summary().startswith(f"Could not use {missing}: no such port")
    assert "Traceback" not in result.summary() and "Errno" not in result.summary()
    errors = [e for e in result.evidence if e.outcome is Outcome.PORT_ERROR]
    assert len(errors) == 1  # the port is the problem: the other protocols are not tried


def test_a_port_another_program_holds_is_reported_busy(
    simulator: Callable[..., Simulator],
) -> None:
    sim = simulator("datex-s5")
    with serial.serial_for_url(sim.path, exclusive=True, timeout=0):
        result = detect(sim.path)
    assert result.protocol is None
    assert "port busy" in result.port_error, result.details()


def test_a_loopback_is_not_taken_for_a_monitor() -> None:
    """The S/5 codec counts its own start requests as valid records: an echo is no S/5."""
    result = detect("loop://", ["datex-s5"], listen_s=3.0)
    assert result.protocol is None
    assert result.evidence[0].outcome is Outcome.ECHO
    assert "only sent back what was written" in result.summary()


def test_cancel_stops_within_a_fraction_of_a_second(simulator: Callable[..., Simulator]) -> None:
    sim = simulator("datex-s5")  # silent for seconds after the request: a long try to cancel
    cancel = threading.Event()
    started = threading.Event()

    def progress(attempt: Attempt) -> None:
        if attempt.protocol == "datex-s5":
            started.set()

    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    t0 = time.monotonic()
    try:
        result = detect(sim.path, ["datex-s5"], cancel=cancel, on_progress=progress)
    finally:
        timer.cancel()
        timer.join()
    assert started.is_set()
    assert time.monotonic() - t0 < 1.5
    assert result.cancelled and result.protocol is None
    assert result.evidence[0].outcome is Outcome.CANCELLED
    assert "cancelled" in result.summary()


# -- the wording, without I/O ---------------------------------------------------------------------
def _evidence(protocol: str, outcome: Outcome, *, bytes_read: int = 0, frames_ok: int = 0,
              frames_rejected: int = 0, seconds: float = 0.0) -> ProtocolEvidence:
    names = {"datex-s5": "GE S/5", "intellivue": "Philips IntelliVue", "masimo": "Masimo",
             "nonin": "Nonin"}
    return ProtocolEvidence(protocol, names[protocol], PROTOCOLS[protocol].serial, outcome,
                            bytes_read=bytes_read, frames_ok=frames_ok,
                            frames_rejected=frames_rejected, seconds=seconds)


def test_summary_wording() -> None:
    found = DetectResult("/dev/ttyUSB0", "intellivue", (
        _evidence("nonin", Outcome.SILENT, seconds=1.5),
        _evidence("intellivue", Outcome.FOUND, bytes_read=900, frames_ok=4, seconds=1.24),
    ))
    assert found.summary() == ("Found Philips IntelliVue (MIB/RS232 Data Export) on "
                               "/dev/ttyUSB0 (4 valid frames in 1.2 s)")
    nothing = DetectResult("/dev/ttyUSB0", None, tuple(
        _evidence(p, Outcome.NOT_THIS, bytes_read=n, frames_rejected=3)
        for p, n in (("datex-s5", 10_000), ("intellivue", 8_000), ("masimo", 230),
                     ("nonin", 0))
    ))
    assert nothing.summary() == (
        "No known monitor on /dev/ttyUSB0: 18,230 bytes received, none of them a valid frame "
        "of GE S/5, Philips IntelliVue, Masimo, Nonin. Check the cable, the baud rate and the "
        "monitor's serial output mode.")
    assert nothing.details()[0] == ("GE S/5 at 19200 8E1 RTS/CTS: 10,000 bytes in 0.0 s, "
                                    "0 valid / 3 rejected frames")


# -- the command ----------------------------------------------------------------------------------
def test_cli_detect_exit_codes(
    simulator: Callable[..., Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # At 5x speed the S/5 sends a record every real second: the command's wiring, quickly.
    sim = simulator("datex-s5", "--speed", "5")
    assert cli.main(["detect", "--port", sim.path]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Found {PROTOCOLS['datex-s5'].title} on {sim.path}")
    assert "trying GE S/5" in err

    noise = simulator("noise")
    assert cli.main(["detect", "--port", noise.path, "--protocol", "datex-s5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"infusion-monitor: No known monitor on {noise.path}" in err

    assert cli.main(["detect", "--port", str(tmp_path / "nowhere")]) == 1
    out, err = capsys.readouterr()
    assert "no such port" in err and "Traceback" not in err
