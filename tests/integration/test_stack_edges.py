"""`musicbox up` / `down` at their edges, on a stack of the test's own: its own var dir and free
ports, never the stack of the defaults (9092/9093/9090), which may be serving other work. Whatever
happens, the fixture stops what the test's stack started."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.processes import port_open
from tests.fixtures.own_stack import OwnStack, alive, own_stack_at
from tests.fixtures.waiting import wait_until

SERVICES = ("kafka", "prometheus")


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[OwnStack]:
    with own_stack_at(tmp_path) as stack:
        yield stack


# A process of the test's that holds a port (argv[1]) the way a foreign service would.
LISTENER = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); time.sleep(600)"
)


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def test_up_twice_then_down_leaves_nothing_behind(own_stack: OwnStack) -> None:
    first = own_stack.musicbox("up")
    assert first.returncode == 0, _output(first)
    pids = own_stack.pids()
    assert set(pids) == set(SERVICES) and all(alive(pid) for pid in pids.values())
    assert sorted(own_stack.open_ports()) == sorted(own_stack.ports.values())

    second = own_stack.musicbox("up")
    assert second.returncode == 0, _output(second)
    assert own_stack.pids() == pids  # the same processes: nothing restarted, nothing added
    assert second.stdout.count("already running") == 2, second.stdout
    assert "everything was already up: nothing started, nothing created" in second.stdout

    down = own_stack.musicbox("down")
    assert down.returncode == 0, _output(down)
    assert down.stdout.count("stopped") == 2, down.stdout
    assert own_stack.pids() == {}  # no PID file left
    assert not [pid for pid in pids.values() if alive(pid)]  # no process left
    assert own_stack.open_ports() == []  # every port free again

    again = own_stack.musicbox("down")
    assert again.returncode == 0 and again.stdout.count("was not running") == 2, _output(again)


@pytest.mark.parametrize(
    ("held", "setting"),
    [
        ("kafka", "MUSICBOX_KAFKA_BOOTSTRAP"),
        ("controller", "MUSICBOX_KAFKA_CONTROLLER_PORT"),
        ("metrics", "MUSICBOX_KAFKA_METRICS_PORT"),
        # Prometheus starts after Kafka: refused before Kafka starts, not after.
        ("prometheus", "MUSICBOX_PROMETHEUS_PORT"),
    ],
)
def test_a_port_in_use_names_it_and_its_holder_and_nothing_is_left_running(
    own_stack: OwnStack, held: str, setting: str
) -> None:
    port = own_stack.ports[held]
    holder = subprocess.Popen([sys.executable, "-c", LISTENER, str(port)])
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, f"the test's listener on {port}")
        done = own_stack.musicbox("up")
        others = [p for p in own_stack.open_ports() if p != port]
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1, _output(done)
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if "error:" in line]
    assert f"port 127.0.0.1:{port}" in error and f"in use by pid {holder.pid} (" in error, error
    assert setting in error
    assert "started (pid" not in done.stdout  # refused before any start
    assert own_stack.pids() == {} and others == []  # nothing left running


def test_a_failed_up_stops_what_it_started(own_stack: OwnStack, tmp_path: Path) -> None:
    # A PATH with java but no prometheus: Kafka starts, then Prometheus cannot.
    java = shutil.which("java")
    assert java, "java is not installed: run `make setup`"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    done = own_stack.musicbox("up", path=str(bin_dir))
    assert done.returncode == 1, _output(done)
    assert "no `prometheus` binary on PATH" in done.stderr
    assert "kafka       stopped again: `up` failed" in done.stdout
    assert own_stack.pids() == {} and own_stack.open_ports() == []
