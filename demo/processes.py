"""Process control for the demo: the `musicbox` commands it runs, to completion or beside it.

A `Spawner` starts `musicbox ARGS` with its output in a log file: the real one a subprocess of
this Python, a test's a fake. Each process runs in a session of its own, so the terminal's
Ctrl-C reaches the demo alone, and the demo decides what stops: everything when a step fails
or is interrupted; at the end of a run, everything unless `--keep-running`, which leaves the
stream job and the worker running (`Processes.close`) and records them, so the next demo can
stop them before it recreates their topics (`stop_left_running`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from demo.errors import DemoError


class Process(Protocol):
    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Spawner(Protocol):
    def __call__(self, args: Sequence[str], log: Path) -> Process: ...


@dataclass(frozen=True)
class SubprocessSpawner:
    """`python -m musicbox ARGS` with `env`, stdout and stderr into `log`."""

    env: dict[str, str]

    def __call__(self, args: Sequence[str], log: Path) -> Process:
        with log.open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "musicbox", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


@dataclass(frozen=True)
class Kept:
    """A process the demo left running: how to recognise it and how to stop it."""

    name: str
    pid: int
    args: list[str]


@dataclass
class Processes:
    spawner: Spawner
    log_dir: Path
    keep_running: bool = False
    command_timeout_s: float = 900  # a command run to completion (generate, train, report)
    clock: Callable[[], float] = time.monotonic
    timings: dict[str, float] = field(default_factory=dict)
    # name -> (start, end) on `clock`: when each process ran (end: when the demo saw it end).
    spans: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    _procs: dict[str, tuple[Process, list[str]]] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, *args: str) -> None:
        """Start `musicbox ARGS` beside the demo, output to <log_dir>/<name>.log."""
        self._procs[name] = (self.spawner(args, self.log(name)), list(args))
        self.spans[name] = (self.clock(), None)

    def running(self) -> dict[str, int]:
        """name -> pid of every process of the demo's that has not ended (safe from another thread)."""
        return {name: proc.pid for name, (proc, _) in dict(self._procs).items() if proc.poll() is None}

    def _ended(self, name: str) -> None:
        start, end = self.spans[name]
        if end is None:
            self.spans[name] = (start, self.clock())

    def run(self, name: str, *args: str, timeout_s: float | None = None) -> None:
        """Run `musicbox ARGS` to completion; a failure or a timeout raises, naming the log."""
        timeout_s = self.command_timeout_s if timeout_s is None else timeout_s
        started = self.clock()
        self.spawn(name, *args)
        proc = self._procs[name][0]
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DemoError(
                f"`musicbox {' '.join(args)}` took over {timeout_s:.0f} s; see {self.log(name)}"
            ) from exc
        finally:
            self.stop(name)  # only if it still runs: a timeout, or an interrupt of the demo
        self.timings[name] = self.timings.get(name, 0.0) + self.clock() - started
        if returncode != 0:
            tail = self.log(name).read_text(errors="replace")[-1500:]
            raise DemoError(
                f"`musicbox {' '.join(args)}` failed (exit {returncode}); see {self.log(name)}:\n{tail}"
            )

    def returncode(self, name: str) -> int | None:
        """None while `name` runs; its exit code once it has ended."""
        code = self._procs[name][0].poll()
        if code is not None:
            self._ended(name)
        return code

    def wait(self, name: str) -> int:
        code = self._procs[name][0].wait()
        self._ended(name)
        return code

    def check_alive(self, *names: str) -> None:
        """Raise when one of `names` has exited: the demo cannot go on without it."""
        for name in names:
            if name in self._procs and (code := self.returncode(name)) is not None:
                raise DemoError(f"the {name} process exited ({code}); see {self.log(name)}")

    def stop(self, name: str, timeout_s: float = 120) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; nothing when it has ended already."""
        entry = self._procs.pop(name, None)
        if entry is None:
            return
        self._ended(name)
        proc = entry[0]
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def done_with(self, *names: str) -> None:
        """The demo needs `names` no more: stopped, unless --keep-running keeps them."""
        if not self.keep_running:
            for name in names:
                self.stop(name)

    def close(self, completed: bool) -> list[Kept]:
        """The end of the demo. After a completed run with --keep-running, the processes still
        running are left so and returned; otherwise (a failed or interrupted run, or no
        --keep-running) every process is stopped and nothing is returned."""
        if self.keep_running and completed:
            return [
                Kept(name, proc.pid, args)
                for name, (proc, args) in self._procs.items()
                if proc.poll() is None
            ]
        for name in list(self._procs):
            self.stop(name)
        return []


def record_kept(path: Path, kept: list[Kept]) -> None:
    """Remember what was left running (or that nothing was) for the next demo."""
    if kept:
        path.write_text(json.dumps([asdict(k) for k in kept], indent=2) + "\n")
    else:
        path.unlink(missing_ok=True)


def _cmdline(pid: int) -> list[str] | None:
    """The arguments process `pid` runs with, or None when there is no such process (Linux /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stop_left_running(
    path: Path,
    cmdline: Callable[[int], list[str] | None] = _cmdline,
    send: Callable[[int, int], None] = os.kill,
    timeout_s: float = 60,
) -> list[Kept]:
    """Stop the processes an earlier `--keep-running` demo recorded in `path`, those still running
    the very command it started (a PID the system has reused since is left alone); returns them."""
    try:
        recorded = [Kept(**k) for k in json.loads(path.read_text())]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError) as exc:
        raise DemoError(f"{path} is not a list of processes ({exc}): remove it") from exc

    def still_runs(k: Kept) -> bool:
        cmd = cmdline(k.pid)
        return cmd is not None and bool(k.args) and cmd[-len(k.args) :] == k.args  # [] for a zombie

    ours = [k for k in recorded if still_runs(k)]
    for k in ours:
        send(k.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(still_runs(k) for k in ours) and time.monotonic() < deadline:
        time.sleep(0.5)
    for k in ours:
        if still_runs(k):
            send(k.pid, signal.SIGKILL)
    path.unlink()
    return ours
