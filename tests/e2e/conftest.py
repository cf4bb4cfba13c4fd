"""Helpers for end-to-end runs: the simulator on a real pty, the real CLI, a real database
(a SQLite file, then a scratch PostgreSQL database: ``run`` is parametrised by ``db_url``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infusion_monitor.store import Database, open_database

START = "2026-05-04T09:00:00Z"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Run:
    """One simulator and (optionally) one ``record`` process, cleaned up whatever happens."""

    start_time = datetime.fromisoformat(START)  # the simulated monitor's clock at t=0

    def __init__(self, tmp: Path, db: str, protocol: str = "datex-s5") -> None:
        self.tmp = tmp
        self.protocol = protocol  # set before simulator()/record() to run another monitor
        self.db = db  # a database URL, passed to every command as --db
        self.truth = tmp / "truth.jsonl"
        self.procs: list[subprocess.Popen[str]] = []

    def simulator(self, *args: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--protocol", self.protocol, "--pty",
             "--link", str(self.tmp / "ttySIM0"), "--truth", str(self.truth),
             "--start", START, "--wait-for-reader", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.procs.append(proc)
        self.sim = proc
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path, proc.stderr.read() if proc.stderr else "simulator printed no path"
        return path

    def record(self, port: str, *args: str) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infusion_monitor.cli", "--db", self.db, "record",
             "--protocol", self.protocol, "--port", port, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.procs.append(proc)
        self.rec = proc
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.isdigit(), proc.stderr.read() if proc.stderr else line
        return int(line)

    def stop_record(self) -> str:
        self.rec.send_signal(signal.SIGTERM)
        _, err = self.rec.communicate(timeout=20)
        assert self.rec.returncode == 0, err
        return err

    def record_whole_session(self, *sim_args: str, timeout: float = 90) -> int:
        """Simulate a session on a pty and ``record`` it until everything sent is stored.

        Returns the session id; ``record``'s stderr is kept in ``self.record_err``.
        """
        sid = self.record(self.simulator(*sim_args))
        self.sim.wait(timeout=timeout)  # the simulated session ends by itself
        assert self.sim.returncode == 0
        sent = sum(self.truth_values().values())
        assert sent > 100, "the simulator sent too little to prove anything"
        wait_for(lambda: len(self.db_readings(sid)) >= sent, 60,  # generous: CI is loaded
                 "the recorder to store what was sent")
        self.record_err = self.stop_record()
        return sid

    def truth_values(self) -> Counter[tuple[str, float, datetime | None]]:
        """(vital, value, device time) for every value the simulator put on the wire.

        The device time is ``None`` for a protocol whose frames carry no timestamp (Nonin).
        """
        out: Counter[tuple[str, float, datetime | None]] = Counter()
        for line in self.truth.read_text().splitlines():
            frame = json.loads(line)
            r_time = frame["r_time"]
            t = None if r_time is None else datetime.fromtimestamp(r_time, UTC)
            for vital, value in frame["values"].items():
                if value is not None:
                    out[(vital, float(value), t)] += 1
        return out

    def open_database(self) -> Database:
        """The run's database, opened (and migrated) as the app opens it; close it after use."""
        return open_database(self.db)

    def db_readings(self, session_id: int):
        with self.open_database() as database:
            return database.repository.readings(session_id)

    def db_events(self, session_id: int):
        with self.open_database() as database:
            return database.repository.device_events(session_id)

    wait_for = staticmethod(wait_for)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


@pytest.fixture
def run(tmp_path: Path, db_url: str) -> Iterator[Run]:
    r = Run(tmp_path, db_url)
    try:
        yield r
    finally:
        r.cleanup()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
