"""Latency from a frame's last byte written on a pty to its reading being in the recorder.

The app path is the real one: pyserial on the pty's slave side, the link's reader thread, the
Datex codec and the recorder (with a store writer on a real SQLite file). The baseline, measured
in the same run on the same kind of pty, is a bare pyserial read loop that only waits for the
bytes: the difference is what the app adds.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import tty
from pathlib import Path

import serial

from benchmarks.table import Row, format_table, median_p99
from infusion_monitor.clock import SystemClock
from infusion_monitor.devices.datex_s5 import BasicValues, DatexS5Codec, build_displayed_values
from infusion_monitor.devices.link import SerialLink
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.store.db import open_database
from infusion_monitor.store.writer import StoreWriter
from infusion_monitor.vitals import Reading, Vital

FRAMES = 400
SPACING_S = 0.01
T0 = 1_780_000_000
GOAL_P99_MS = 50


def _pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


def _frames() -> list[bytes]:
    return [build_displayed_values(T0 + i, BasicValues(hr=60 + i % 100)) for i in range(FRAMES)]




def measure_app() -> list[float]:
    """Write frames on a pty; time until the recorder has each HR reading."""
    frames = _frames()
    master, name = _pty()
    arrived: dict[int, float] = {}
    done = threading.Event()

    def on_readings(events) -> None:
        now = time.perf_counter()
        for e in events:
            if isinstance(e, Reading) and e.vital is Vital.HR and e.t_device is not None:
                arrived[int(e.t_device.timestamp()) - T0] = now
        if len(arrived) == FRAMES:
            done.set()

    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        sid = database.repository.create_session(
            source="record", protocol="datex-s5", port=name,
            started=SystemClock().now(),
        )
        writer = StoreWriter(database.repository)
        recorder = Recorder(sid, sink=writer)
        recorder.subscribe(on_readings)
        link = SerialLink(name, DatexS5Codec(), on_events=recorder.handle)
        link.start()
        try:
            _wait_for_request(master)
            sent = _send(master, frames)
            if not done.wait(10):
                raise RuntimeError(f"only {len(arrived)} of {FRAMES} frames arrived")
        finally:
            link.stop()
            writer.close()
            database.close()
            os.close(master)
    return [arrived[i] - sent[i] for i in range(FRAMES)]


def measure_baseline() -> list[float]:
    """A bare pyserial reader on a pty: time until each frame's bytes are all read."""
    frames = _frames()
    master, name = _pty()
    port = serial.serial_for_url(name, baudrate=19200, timeout=0.05)
    arrived: list[float] = []
    expected = [sum(len(f) for f in frames[: i + 1]) for i in range(FRAMES)]

    def reader() -> None:
        total = 0
        while len(arrived) < FRAMES:
            data = port.read(max(port.in_waiting, 1))
            now = time.perf_counter()
            total += len(data)
            while len(arrived) < FRAMES and total >= expected[len(arrived)]:
                arrived.append(now)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    sent = _send(master, frames)
    thread.join(10)
    port.close()
    os.close(master)
    return [a - s for a, s in zip(arrived, sent, strict=True)]


def _wait_for_request(master: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.read(master, 4096):
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("the link sent no start request")


def _send(master: int, frames: list[bytes]) -> list[float]:
    sent = []
    for f in frames:
        os.write(master, f)
        sent.append(time.perf_counter())
        time.sleep(SPACING_S)
    return sent


def run() -> list[Row]:
    base_med, base_p99 = median_p99(measure_baseline())
    med, p99 = median_p99(measure_app())
    return [
        Row("pty byte -> reading in recorder: median", med, "ms", "",
            f"bare pyserial read {base_med:.2f} ms"),
        Row("pty byte -> reading in recorder: p99", p99, "ms", f"<= {GOAL_P99_MS}",
            f"bare pyserial read {base_p99:.2f} ms"),
    ]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
