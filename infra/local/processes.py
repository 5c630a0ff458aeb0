"""Background service processes with PID files under var/run: start, check, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.local.errors import StackError


@dataclass(frozen=True)
class ManagedProcess:
    """A service `musicbox up` starts; its PID file says it is ours, so `down` stops only ours."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.out"

    def pid(self) -> int | None:
        """The PID of our running process, or None (a stale PID file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start detached (own session: it outlives the command that started it)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def signal(self, sig: signal.Signals) -> bool:
        """Send `sig` to the process group, without waiting. True when it was running."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, sig)
        return pid is not None

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout_s`. True when something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return True
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


_LISTEN = "0A"  # the TCP state code of a listening socket in /proc/net/tcp


def listening_inodes(table: str, port: int) -> set[str]:
    """The inodes of the sockets listening on `port` (any address) in a /proc/net/tcp(6) table."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()  # sl local_address rem_address st ... uid timeout inode
        if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
            inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str | None:
    """`pid N (command)` of the process listening on `port`, or None when this user cannot see it
    (another user's process, or no /proc)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes(Path("/proc/net", table).read_text(), port)
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in inodes}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                return f"pid {proc.name} ({_command(proc)})"
        except OSError:  # gone meanwhile, or another user's
            continue
    return None


def _command(proc: Path, width: int = 100) -> str:
    """The command line, shortened from the middle: a JVM's main class and arguments come last."""
    try:
        argv = (proc / "cmdline").read_bytes().rstrip(b"\0").decode(errors="replace").split("\0")
    except OSError:
        return "?"
    text = " ".join(argv)
    if len(text) <= width:
        return text
    tail = " ".join(argv[-2:])[-(width - 20) :]
    return f"{Path(argv[0]).name} ... {tail}"


def require_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise StackError naming the port and what holds it when something already listens there."""
    if port_open(host, port):
        holder = port_holder(port) or "a process this user cannot see (`sudo ss -ltnp` names it)"
        raise StackError(
            f"port {host}:{port} ({what}) is in use by {holder}, which musicbox did not start: "
            f"stop it, or choose another port ({setting})"
        )


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.5) -> None:
    """Poll `check` until it is true, or raise StackError naming what we waited for."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise StackError(f"timed out after {timeout_s:.0f} s waiting for {what}")
