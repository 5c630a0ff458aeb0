"""The memory of the stack while the demo runs: the resident size of every process it started, of
the broker, of Prometheus and of the demo itself, each with its children (the Spark JVM is a
child of the stream's Python, the replay's senders children of the replay).

One read of `/proc/<pid>/stat` per process gives both its parent and its resident pages, so a
sample is a walk over /proc and nothing else (no psutil). The pure part: a process counts for the
nearest of its ancestors that is a named root (a spawned command is a child of the demo, and
counts for its own name, not the demo's), so every byte is counted once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.local.processes import listening_inodes

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcTable:
    """Every process seen at one moment: its parent and its resident bytes."""

    parents: Mapping[int, int]
    rss_bytes: Mapping[int, int]


def parse_stat(text: str) -> tuple[int, int]:
    """(parent pid, resident pages) from a `/proc/<pid>/stat` line. The command name, in
    parentheses, may hold spaces and parentheses itself: fields are counted after the last ')'."""
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), int(fields[21])


def read_table(proc: Path = Path("/proc")) -> ProcTable:
    """The process table from a /proc tree (the real one, or a test's fake)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, pages = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid], rss[pid] = ppid, pages * PAGE_BYTES
    return ProcTable(parents, rss)


def usage_by_root(table: ProcTable, roots: Mapping[str, int]) -> dict[str, int]:
    """name -> resident bytes of the root `roots[name]` and of its descendants not under another
    root. A root that has ended counts nothing (and is left out)."""
    named = {pid: name for name, pid in roots.items()}
    owner: dict[int, str | None] = {}

    def owner_of(pid: int) -> str | None:
        path: list[int] = []
        found: str | None = None
        while pid not in owner:
            if pid in named:
                found = named[pid]
                break
            path.append(pid)
            parent = table.parents.get(pid)
            if parent is None or parent in path or parent <= 1:
                break
            pid = parent
        else:
            found = owner[pid]
        for p in path:
            owner[p] = found
        return found

    usage: dict[str, int] = {}
    for pid, nbytes in table.rss_bytes.items():
        name = owner_of(pid)
        if name is not None:
            usage[name] = usage.get(name, 0) + nbytes
    return usage


@dataclass(frozen=True)
class MemoryPeaks:
    """The peak of the sum over samples (and when), and each process's own peak."""

    peak_total_bytes: int
    peak_at_s: float | None
    by_process: dict[str, int]
    samples: int

    def to_dict(self) -> dict[str, object]:
        return {
            "peak_total_bytes": self.peak_total_bytes,
            "peak_at_s": self.peak_at_s,
            "by_process": dict(sorted(self.by_process.items(), key=lambda kv: -kv[1])),
            "samples": self.samples,
        }


def peaks(samples: Iterable[tuple[float, Mapping[str, int]]]) -> MemoryPeaks:
    """From (seconds, name -> bytes) samples."""
    total, at, by, n = 0, None, dict[str, int](), 0
    for t_s, usage in samples:
        n += 1
        now = sum(usage.values())
        if now > total:
            total, at = now, t_s
        for name, nbytes in usage.items():
            by[name] = max(by.get(name, 0), nbytes)
    return MemoryPeaks(total, at, by, n)


def listening_pid(port: int, proc: Path = Path("/proc")) -> int | None:
    """The pid of the process listening on `port`, or None (another user's process, no /proc).
    For a stack started from another checkout, whose PID files are not under our var dir."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes((proc / "net" / table).read_text(), port)
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in inodes}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue
    return None
