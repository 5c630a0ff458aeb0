"""The fan-out's pieces that need no broker: a sender ends once the replay process is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.own_stack import alive
from tests.fixtures.waiting import wait_until

# A parent that starts a child which watches for being orphaned, then sleeps (as a sender that
# hangs in a commit would); the parent prints the child's pid and sleeps too.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = """
import os, time
from producers.replay.fanout import _exit_when_orphaned
_exit_when_orphaned(os.getppid(), every_s=0.1)
time.sleep(600)
"""


def test_a_sender_ends_when_the_replay_process_is_killed() -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child is up and watching: not a wait for anything else
    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_until(lambda: not alive(child), 10, "the orphaned sender to end")
