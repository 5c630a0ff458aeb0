"""The demo's process control with a fake spawner: what --keep-running leaves running, what stops."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from demo.command import finish
from demo.errors import DemoError
from demo.processes import Kept, Processes, record_kept, stop_left_running
from demo.summary import LeftRunning


@dataclass
class FakeProcess:
    pid: int
    exit_code: int | None = None  # None: runs until terminated or killed
    terminated: bool = False
    killed: bool = False

    def poll(self) -> int | None:
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int:
        if self.exit_code is None:
            raise subprocess.TimeoutExpired("musicbox", timeout or 0)
        return self.exit_code

    def terminate(self) -> None:
        self.terminated, self.exit_code = True, -signal.SIGTERM

    def kill(self) -> None:
        self.killed, self.exit_code = True, -signal.SIGKILL


@dataclass
class FakeSpawner:
    """Commands named in `exits` end at once with that code; the others run until stopped."""

    exits: dict[str, int] = field(default_factory=dict)
    started: dict[str, FakeProcess] = field(default_factory=dict)

    def __call__(self, args: Sequence[str], log: Path) -> FakeProcess:
        log.write_text(f"output of musicbox {' '.join(args)}\n")
        proc = FakeProcess(pid=100 + len(self.started), exit_code=self.exits.get(args[0]))
        self.started[args[0]] = proc
        return proc


def _demo_processes(tmp_path: Path, keep_running: bool) -> tuple[Processes, FakeSpawner]:
    spawner = FakeSpawner(exits={"generate": 0})
    procs = Processes(spawner, tmp_path, keep_running=keep_running)
    procs.run("generate", "generate", "--users", "10")
    procs.spawn("stream", "stream", "--reset")
    procs.spawn("worker", "worker")
    return procs, spawner


def test_keep_running_leaves_the_stream_and_worker_running_and_names_them(tmp_path: Path) -> None:
    procs, spawner = _demo_processes(tmp_path, keep_running=True)
    procs.done_with("worker", "stream")  # the pipeline's "done with them" before parity
    kept = procs.close(completed=True)
    assert kept == [Kept("stream", 101, ["stream", "--reset"]), Kept("worker", 102, ["worker"])]
    assert not spawner.started["stream"].terminated and not spawner.started["worker"].terminated


def test_without_keep_running_the_demo_stops_them_when_done_with_them(tmp_path: Path) -> None:
    procs, spawner = _demo_processes(tmp_path, keep_running=False)
    procs.done_with("worker", "stream")
    assert spawner.started["stream"].terminated and spawner.started["worker"].terminated
    assert procs.close(completed=True) == []


def test_a_failed_run_stops_everything_even_with_keep_running(tmp_path: Path) -> None:
    procs, spawner = _demo_processes(tmp_path, keep_running=True)
    assert procs.close(completed=False) == []
    assert spawner.started["stream"].terminated and spawner.started["worker"].terminated


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    procs, spawner = _demo_processes(tmp_path, keep_running=False)
    stubborn = spawner.started["worker"]
    stubborn.terminate = lambda: setattr(stubborn, "terminated", True)  # type: ignore[method-assign]
    procs.stop("worker", timeout_s=0)
    assert stubborn.terminated and stubborn.killed


@pytest.mark.parametrize(
    ("keep_running", "completed", "stack_started", "stack_stopped", "stack_left"),
    [
        (True, True, True, False, True),  # kept: the summary says `musicbox down`
        (False, True, True, True, False),  # the demo started it, the demo stops it
        (True, False, True, True, False),  # a failed run leaves nothing behind
        (True, True, False, False, False),  # the stack was up before the demo: not ours to stop
        (False, True, False, False, False),  # ... nor with --keep-running off
    ],
)
def test_the_stack_is_stopped_only_when_the_demo_started_it_and_does_not_keep_it(
    tmp_path: Path,
    keep_running: bool,
    completed: bool,
    stack_started: bool,
    stack_stopped: bool,
    stack_left: bool,
) -> None:
    procs, _ = _demo_processes(tmp_path, keep_running=keep_running)
    calls: list[str] = []
    left = finish(procs, completed, stack_started, lambda: calls.append("down"))
    assert (calls == ["down"]) is stack_stopped
    assert left.stack is stack_left
    assert bool(left.processes) is (keep_running and completed)


def test_the_summary_says_how_to_stop_what_was_left_running() -> None:
    left = LeftRunning([Kept("stream", 101, ["stream"]), Kept("worker", 102, ["worker"])], stack=True)
    lines = left.how_to_stop()
    assert lines[0].startswith("kill 101 102 ") and "stream, worker" in lines[0]
    assert lines[1].startswith("musicbox down")
    assert LeftRunning().how_to_stop() == []


def test_run_raises_with_the_log_when_a_command_fails(tmp_path: Path) -> None:
    procs = Processes(FakeSpawner(exits={"train-churn": 3}), tmp_path)
    with pytest.raises(DemoError, match=r"exit 3.*train\.log") as failure:
        procs.run("train", "train-churn", "--logs", "x")
    assert "output of musicbox train-churn --logs x" in str(failure.value)


def test_check_alive_names_a_process_that_exited(tmp_path: Path) -> None:
    procs, spawner = _demo_processes(tmp_path, keep_running=False)
    procs.check_alive("stream", "worker")
    spawner.started["worker"].exit_code = 1
    with pytest.raises(DemoError, match=r"the worker process exited \(1\)"):
        procs.check_alive("stream", "worker")


def test_the_next_demo_stops_what_keep_running_left_and_only_that(tmp_path: Path) -> None:
    record = tmp_path / "left-running.json"
    record_kept(
        record,
        [
            Kept("stream", 101, ["stream", "--reset"]),
            Kept("worker", 102, ["worker"]),
            Kept("old", 103, ["worker"]),
        ],
    )
    running = {
        101: ["/venv/bin/python", "-m", "musicbox", "stream", "--reset"],  # still the demo's stream
        102: ["/venv/bin/python", "-m", "musicbox", "worker"],  # ignores SIGTERM
        103: ["/usr/bin/vim", "notes"],  # the PID was reused by something else: left alone
    }
    sent: list[tuple[int, int]] = []

    def send(pid: int, sig: int) -> None:
        sent.append((pid, sig))
        if pid == 101:
            running.pop(pid)

    stopped = stop_left_running(record, running.get, send, timeout_s=0)
    assert [k.name for k in stopped] == ["stream", "worker"]
    assert sent == [(101, signal.SIGTERM), (102, signal.SIGTERM), (102, signal.SIGKILL)]
    assert not record.exists()


def test_nothing_recorded_nothing_stopped(tmp_path: Path) -> None:
    record = tmp_path / "left-running.json"
    record_kept(record, [])
    assert not record.exists()
    assert stop_left_running(record, lambda pid: ["anything"], lambda pid, sig: None) == []


def test_each_process_s_span_runs_from_its_start_to_when_the_demo_saw_it_end(tmp_path: Path) -> None:
    ticks = iter(float(t) for t in range(100))
    spawner = FakeSpawner(exits={"generate": 0})
    procs = Processes(spawner, tmp_path, clock=lambda: next(ticks))
    procs.run("generate", "generate")  # spawned at 0, stopped (seen ended) at 2: 1 is the timing's start
    procs.spawn("replay", "replay")  # 4
    procs.spawn("worker", "worker")  # 5
    assert procs.returncode("replay") is None and procs.spans["replay"] == (4.0, None)
    assert procs.running() == {"replay": 101, "worker": 102}
    spawner.started["replay"].exit_code = 0
    assert procs.returncode("replay") == 0  # seen ended at 6
    assert procs.returncode("replay") == 0  # seen again: the end stays
    procs.done_with("worker")  # stopped at 7
    assert procs.spans == {"generate": (1.0, 2.0), "replay": (4.0, 6.0), "worker": (5.0, 7.0)}
    assert procs.running() == {}
