"""The stack's memory: resident bytes per process tree, read from a fake /proc, and the peaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.memory import PAGE_BYTES, ProcTable, listening_pid, parse_stat, peaks, read_table, usage_by_root


def _stat(pid: int, name: str, ppid: int, pages: int) -> str:
    # The real layout: pid (comm) state ppid pgrp session tty tpgid flags ... vsize rss ...
    rest = ["S", str(ppid)] + ["0"] * 19 + [str(pages)] + ["0"] * 20
    return f"{pid} ({name}) " + " ".join(rest) + "\n"


def _fake_proc(root: Path, processes: dict[int, tuple[str, int, int]]) -> Path:
    for pid, (name, ppid, pages) in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "stat").write_text(_stat(pid, name, ppid, pages))
    (root / "self").mkdir()  # not a process directory
    (root / "meminfo").write_text("MemTotal: 1 kB\n")
    return root


# The demo (100) started the stream (200, whose child 201 is Spark's JVM) and the replay (300,
# whose senders are 301 and 302); the broker (400) runs on its own; 500 is somebody else's.
PROCESSES = {
    1: ("init", 0, 10),
    100: ("python", 1, 100),
    200: ("python", 100, 50),
    201: ("java", 200, 1000),
    300: ("python", 100, 40),
    301: ("python", 300, 30),
    302: ("python", 300, 30),
    400: ("java", 1, 700),
    500: ("vim", 1, 5),
}
ROOTS = {"demo": 100, "stream": 200, "replay": 300, "kafka": 400}


def test_each_process_counts_for_its_nearest_named_ancestor(tmp_path: Path) -> None:
    table = read_table(_fake_proc(tmp_path / "proc", PROCESSES))
    assert table.parents[201] == 200 and table.rss_bytes[201] == 1000 * PAGE_BYTES
    usage = usage_by_root(table, ROOTS)
    assert usage == {
        "demo": 100 * PAGE_BYTES,  # itself only: its children are named roots of their own
        "stream": (50 + 1000) * PAGE_BYTES,  # the JVM with its Python
        "replay": (40 + 30 + 30) * PAGE_BYTES,  # the senders with the replay
        "kafka": 700 * PAGE_BYTES,
    }  # init and vim are no part of the stack


def test_a_root_that_has_ended_counts_nothing_and_its_orphans_nothing_either() -> None:
    table = ProcTable(parents={100: 1, 301: 1}, rss_bytes={100: 10, 301: 20})  # 300 gone, 301 re-parented
    assert usage_by_root(table, ROOTS) == {"demo": 10}


def test_a_loop_in_the_parent_links_ends_the_walk() -> None:
    table = ProcTable(parents={7: 8, 8: 7}, rss_bytes={7: 1, 8: 1})  # pids reused between two reads
    assert usage_by_root(table, {"demo": 100}) == {}


@pytest.mark.parametrize(
    ("line", "ppid", "pages"),
    [
        (_stat(42, "python", 7, 9), 7, 9),
        (_stat(42, "odd) name (x", 7, 9), 7, 9),  # a command name with spaces and parentheses
    ],
)
def test_stat_lines_are_split_after_the_command_name(line: str, ppid: int, pages: int) -> None:
    assert parse_stat(line) == (ppid, pages)


def test_the_real_proc_has_this_process_with_its_parent() -> None:
    import os

    table = read_table()
    assert table.parents[os.getpid()] == os.getppid() and table.rss_bytes[os.getpid()] > 0


def test_peaks_are_the_largest_sum_and_each_process_at_its_own_largest() -> None:
    m = peaks([(1.0, {"stream": 5, "worker": 1}), (2.0, {"stream": 3, "worker": 4}), (3.0, {"worker": 2})])
    assert (m.peak_total_bytes, m.peak_at_s, m.samples) == (7, 2.0, 3)
    assert m.by_process == {"stream": 5, "worker": 4}  # 5 + 4 = 9 never held at once
    assert peaks([]).samples == 0


def test_the_process_listening_on_a_port_is_found_by_its_socket(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path / "proc", {400: ("java", 1, 7), 500: ("vim", 1, 5)})
    (proc / "net").mkdir()
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    )
    # 127.0.0.1:9092 (0x2384) listening (0A), inode 777
    row = "   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777\n"
    (proc / "net" / "tcp").write_text(header + row)
    (proc / "400" / "fd").mkdir()
    (proc / "400" / "fd" / "3").symlink_to("socket:[777]")
    (proc / "500" / "fd").mkdir()
    (proc / "500" / "fd" / "3").symlink_to("socket:[778]")
    assert listening_pid(9092, proc) == 400
    assert listening_pid(9093, proc) is None
