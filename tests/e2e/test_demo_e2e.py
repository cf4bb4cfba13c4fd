"""``infusion-monitor demo`` as a user runs it: a real window (offscreen) on the simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.store.db import inspect_database


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_demo_records_and_quits_cleanly_on_a_signal(run, sig):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "infusion_monitor.cli", "--db", run.db, "demo",
         "--speed", "20", "--scenario", "typical"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    run.procs.append(proc)

    def recorded() -> int:
        if not inspect_database(run.db).current:  # the demo has not made its schema yet
            return 0
        with run.open_database() as database:
            sessions = database.repository.list_sessions()
            return sessions[0].n_readings if sessions else 0

    run.wait_for(lambda: recorded() >= 6, 60, "the demo to record readings")
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert len(children) == 1  # the simulator
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with run.open_database() as database:
        (info,) = database.repository.list_sessions()
        kinds = [e.kind for e in database.repository.device_events(info.id)]
    assert info.source == "demo" and info.ended is not None
    assert kinds[0] is DeviceEventKind.RECORDING_STARTED
    assert kinds[-1] is DeviceEventKind.RECORDING_STOPPED
    # The simulator the demo started is gone with it.
    ps = subprocess.run(["pgrep", "-f", "simulators.*--start"], capture_output=True, text=True)
    assert str(proc.pid) not in ps.stdout
