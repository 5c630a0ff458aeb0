"""`musicbox up` / `down` at their edges, on a stack of the test's own: its own var dir and free
ports, never the stack of the defaults (9092/9093/9090), which may be serving other work. Whatever
happens, the fixture stops what the test's stack started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local.processes import port_open
from musicbox.settings import Settings
from tests.fixtures.ports import free_ports
from tests.fixtures.waiting import wait_until

SERVICES = ("kafka", "prometheus")
# A process of the test's that holds a port (argv[1]) the way a foreign service would.
LISTENER = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); time.sleep(600)"
)


def _alive(pid: int) -> bool:
    """Running and not a zombie (a service's parent, `musicbox up`, is gone: init reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@dataclass
class OwnStack:
    var_dir: Path
    ports: dict[str, int]  # kafka, controller, metrics (the broker's JMX exporter), prometheus
    env: dict[str, str]

    def musicbox(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = self.env if path is None else {**self.env, "PATH": path}
        return subprocess.run(
            [sys.executable, "-m", "musicbox", *args],
            capture_output=True,
            text=True,
            timeout=400,
            env=env,
        )

    def pids(self) -> dict[str, int]:
        """The services' PID files: what `up` started and `down` has not stopped."""
        run = self.var_dir / "run"
        return {p.stem: int(p.read_text()) for p in sorted(run.glob("*.pid"))}

    def open_ports(self) -> list[int]:
        return [port for port in self.ports.values() if port_open("127.0.0.1", port)]


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[OwnStack]:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    (var_dir / "jars").symlink_to(Settings().jars_dir.resolve())
    kafka, controller, metrics, prometheus = free_ports(4)
    env = {
        **os.environ,
        "COLUMNS": "200",
        "MUSICBOX_LOG_LEVEL": "WARNING",
        "MUSICBOX_VAR_DIR": str(var_dir),
        "MUSICBOX_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "MUSICBOX_KAFKA_CONTROLLER_PORT": str(controller),
        "MUSICBOX_KAFKA_METRICS_PORT": str(metrics),
        "MUSICBOX_PROMETHEUS_PORT": str(prometheus),
        "MUSICBOX_KAFKA_HEAP": "256m",
    }
    ports = {"kafka": kafka, "controller": controller, "metrics": metrics, "prometheus": prometheus}
    stack = OwnStack(var_dir, ports, env)
    try:
        yield stack
    finally:
        stack.musicbox("down")
        for pid in stack.pids().values():  # only if `down` failed; ours by their PID files
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def test_up_twice_then_down_leaves_nothing_behind(own_stack: OwnStack) -> None:
    first = own_stack.musicbox("up")
    assert first.returncode == 0, _output(first)
    pids = own_stack.pids()
    assert set(pids) == set(SERVICES) and all(_alive(pid) for pid in pids.values())
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
    assert not [pid for pid in pids.values() if _alive(pid)]  # no process left
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
