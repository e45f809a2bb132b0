"""A child told to stop that will not is killed once its bound runs out (``sim.processes``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from sim.processes import wait_bounded

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_process_that_ignores_terminate_is_killed_after_the_bound() -> None:
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    process.terminate()  # ignored
    started = time.monotonic()
    wait_bounded(process, 0.5)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 30.0  # waited its bound, not the minute


def test_a_process_that_stops_is_only_waited_for() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_bounded(process, 30.0)
    assert process.returncode == 0
