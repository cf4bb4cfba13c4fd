"""Simulator -> pty -> ``record`` -> SQLite while storage fails for real: disk full, locked.

Each fault is real: a small tmpfs filled up by a ballast file, a file-size limit the kernel
enforces on the recording process (EFBIG, the RLIMIT_FSIZE variant for machines where mount
is refused), and another process holding SQLite's write lock past the busy timeout. While it
lasts the recorder keeps reading the monitor and raises the storage alarm; once the fault is
gone, what was buffered is written, and the stored readings equal the simulator's truth log.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infusion_monitor.store import open_database
from infusion_monitor.store.alarm_log import AlarmLog
from tests.e2e.conftest import START, wait_for
from tests.storage_faults import hold_write_lock, release

SIM_ARGS = ("--scenario", "typical", "--speed", "20", "--duration", "900", "--seed", "11")


class Recording:
    """One simulator and one ``record`` process on ``db``; stderr read as it comes."""

    def __init__(self, tmp: Path, db: Path) -> None:
        self.db, self.truth = db, tmp / "truth.jsonl"
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--protocol", "datex-s5", "--pty",
             "--link", str(tmp / "ttySIM0"), "--truth", str(self.truth), "--start", START,
             *SIM_ARGS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.sim.stdout is not None
        port = self.sim.stdout.readline().strip()
        self.rec = subprocess.Popen(
            [sys.executable, "-m", "infusion_monitor.cli", "--db", str(db), "record",
             "--protocol", "datex-s5", "--port", port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.rec.stdout is not None and self.rec.stderr is not None
        line = self.rec.stdout.readline().strip()
        assert line.isdigit(), self.rec.stderr.read()
        self.session_id = int(line)
        self.err: list[tuple[float, str]] = []  # (monotonic time, line)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.rec.stderr is not None
        for line in self.rec.stderr:
            self.err.append((time.monotonic(), line.rstrip("\n")))

    def first_err(self, text: str) -> float | None:
        return next((t for t, line in self.err if text in line), None)

    def stop(self) -> str:
        self.rec.send_signal(signal.SIGTERM)
        self.rec.wait(timeout=60)
        self._reader.join(10)
        assert self.rec.returncode == 0, "\n".join(line for _, line in self.err)
        return "\n".join(line for _, line in self.err)

    def kill(self) -> None:
        for proc in (self.rec, self.sim):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    def truth_values(self) -> Counter[tuple[str, float, datetime]]:
        out: Counter[tuple[str, float, datetime]] = Counter()
        for line in self.truth.read_text().splitlines():
            frame = json.loads(line)
            t = datetime.fromtimestamp(frame["r_time"], UTC)
            out.update((v, float(x), t) for v, x in frame["values"].items() if x is not None)
        return out

    def stored(self) -> Counter[tuple[str, float, datetime | None]]:
        with open_database(f"sqlite:///{self.db}") as database:
            return Counter((r.vital.value, r.value, r.t_device)
                           for r in database.repository.readings(self.session_id))


def stored_count(db: Path, session_id: int) -> int:
    """Readings on disk, looked at read-only (the test must not write the faulty store)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute("SELECT count(*) FROM readings WHERE session_id = ?",
                               (session_id,)).fetchone()[0])
    finally:
        con.close()


def record_through_fault(tmp: Path, db: Path, start_fault: Callable[[Recording], None],
                         end_fault: Callable[[Recording], None]) -> dict[str, float]:
    """Record a session, with the storage fault from the first stored readings for ~8 s."""
    rec = Recording(tmp, db)
    try:
        wait_for(lambda: stored_count(db, rec.session_id) > 20, 60, "the first readings")
        t_fault = time.monotonic()
        start_fault(rec)
        wait_for(lambda: rec.first_err("saving to the database failed") is not None, 60,
                 "the recorder to notice the storage fault")
        detected = rec.first_err("saving to the database failed")
        assert detected is not None
        faulted_at_us = time.time_ns() // 1000
        time.sleep(8)  # the fault lasts: the simulated monitor goes on sending meanwhile
        assert rec.rec.poll() is None, "the recorder died during the storage fault"
        t_end = time.monotonic()
        end_fault(rec)
        wait_for(lambda: rec.first_err("saving to the database works again") is not None, 60,
                 "the recorder to write again")
        recovered = rec.first_err("saving to the database works again")
        assert recovered is not None
        assert rec.sim.wait(timeout=120) == 0  # the simulated session ends by itself
        truth = rec.truth_values()
        wait_for(lambda: stored_count(db, rec.session_id) >= sum(truth.values()), 60,
                 "everything sent to be stored")
        rec.stop()
        stored = rec.stored()
        assert stored == truth  # nothing lost, nothing duplicated, value by value
        with open_database(f"sqlite:///{db}") as database:
            alarms = AlarmLog(database.engine).events(rec.session_id)
        storage = [(a.event, a.condition) for a in alarms if a.condition.startswith("storage")]
        assert storage == [("raised", "storage_failing"), ("ended", "storage_failing"),
                           ("cleared", "storage_failing")]
        raised = next(a for a in alarms if a.condition == "storage_failing")
        assert raised.priority in {"high", "technical"} and "Saving" in (raised.detail or "")
        # Frames kept coming while nothing could be saved: no 'monitor link lost'.
        assert "link_lost" not in {a.condition for a in alarms}
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
        figures = {"detect_s": detected - t_fault, "recover_s": recovered - t_end,
                   "readings": float(sum(stored.values())),
                   "raised_lag_s": raised.time.timestamp() - faulted_at_us / 1e6}
        print(f"\nstorage fault {start_fault.__name__}: detected {figures['detect_s']:.2f} s,"
              f" written again {figures['recover_s']:.2f} s after it ended;"
              f" {int(figures['readings'])} readings stored = sent, integrity ok")
        return figures
    finally:
        rec.kill()


def fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem refuses (ENOSPC)."""
    ballast = directory / "ballast"
    chunk = b"\0" * 65536
    with ballast.open("wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return ballast


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of our own; skipped (the RLIMIT variant still runs) where mount is refused."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); "
                    "test_file_size_limit_mid_session covers a full disk")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_disk_full_mid_session_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    ballast: list[Path] = []

    def disk_full(_rec: Recording) -> None:
        ballast.append(fill(small_disk))

    def space_freed(_rec: Recording) -> None:
        ballast[0].unlink()

    record_through_fault(tmp_path, small_disk / "e2e.db", disk_full, space_freed)


def test_file_size_limit_mid_session_loses_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE on the recorder: the kernel refuses its writes past the database's size."""
    db = tmp_path / "e2e.db"

    def size_limit(rec: Recording) -> None:
        # The main file is the smaller: neither it nor the WAL (past it) may grow.
        limit = db.stat().st_size
        resource.prlimit(rec.rec.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def limit_lifted(rec: Recording) -> None:
        resource.prlimit(rec.rec.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    record_through_fault(tmp_path, db, size_limit, limit_lifted)


def test_write_lock_held_by_another_process_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "e2e.db"
    holder: list[subprocess.Popen[str]] = []

    def locked(_rec: Recording) -> None:
        holder.append(hold_write_lock(db))

    def released(_rec: Recording) -> None:
        release(holder[0])

    record_through_fault(tmp_path, db, locked, released)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
