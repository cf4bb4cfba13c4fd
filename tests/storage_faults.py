"""Real storage faults for tests: another process holding a SQLite file's write lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOCK_HOLDER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"""


def hold_write_lock(db: Path) -> subprocess.Popen[str]:
    """Another process holding the database's write lock until ``release``."""
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(30) == 0
