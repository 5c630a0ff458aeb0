from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.errors import StackError
from infra.local.processes import ManagedProcess, port_open, wait_until


def test_start_and_stop_a_background_process(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", tmp_path)
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(60)"])
    assert proc.pid() == pid
    assert proc.stop(timeout_s=10) is True
    assert proc.pid() is None and not proc.pid_file.exists()


def test_stop_leaves_processes_it_did_not_start_alone(tmp_path: Path) -> None:
    # `down` stops only what `up` started: no PID file, nothing to stop.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert ManagedProcess("sleeper", tmp_path).stop() is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_stale_pid_file_reads_as_not_running(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    proc = ManagedProcess("gone", tmp_path)
    proc.pid_file.write_text(done.stdout)
    assert proc.pid() is None


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(StackError, match="the moon"):
        wait_until(lambda: False, 0.3, "the moon", interval_s=0.1)


def test_port_open_on_a_closed_port() -> None:
    assert port_open("127.0.0.1", 1) is False
