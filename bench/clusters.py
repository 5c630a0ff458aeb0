"""The whole chain on one process per service beside the same chain on the clusters, same data:

    .venv/bin/python -m bench.clusters [--users 2000] [--days 14] [--rounds 2]

Layouts, each on a stack of its own (own var dir, free ports; the stack of the defaults is left
alone), started, measured and stopped in turn, alternating, `--rounds` times:
- single:   `musicbox up` (one Kafka node, replication 1), Spark local[2] in the driver;
- clusters: `musicbox up --brokers 3 --spark-workers 2` (replication 3, min ISR 2; a Spark
            standalone master, two workers of 1 core and 1 GB; the driver outside them).
Per run: replay --max-speed (lines/s over the command's wall time), stream --available-now
(messages/s over its wall time, Spark start-up included), parity (must be exact), and the
chain's wall time. The load average (1 min) is printed at each step: the machine is shared.
Beside each step, the CPU seconds it cost each party: the command itself (with the Spark driver
and its Python workers), the Kafka nodes, the Spark workers (with their executors): on one host
they share 2 cores; on several, each host's share is what bounds the wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from musicbox.events import Event
from musicbox.rawlogs import iter_logs
from musicbox.settings import Settings
from musicbox.topics import Topics

BASES = {"single": 21_000, "clusters": 21_100}  # port blocks apart from the defaults and the tests


@dataclass
class Run:
    layout: str
    replay_s: float
    stream_s: float
    parity_s: float
    load: tuple[float, float]  # 1-min load average at the chain's start and end
    cpu_s: dict[str, dict[str, float]] = field(default_factory=dict)  # step -> party -> CPU seconds

    @property
    def chain_s(self) -> float:
        return self.replay_s + self.stream_s + self.parity_s


def _env(layout: str, var_dir: Path) -> dict[str, str]:
    base = BASES[layout]
    env = {
        **os.environ,
        "COLUMNS": "200",
        "MUSICBOX_LOG_LEVEL": "WARNING",
        "MUSICBOX_VAR_DIR": str(var_dir),
        "MUSICBOX_KAFKA_BOOTSTRAP": f"127.0.0.1:{base}",
        "MUSICBOX_KAFKA_CONTROLLER_PORT": str(base + 1),
        "MUSICBOX_KAFKA_METRICS_PORT": str(base + 6),
        "MUSICBOX_KAFKA_HEAP": "512m",
        "MUSICBOX_PROMETHEUS_PORT": str(base + 9),
        "MUSICBOX_REPLAY_METRICS_PORT": str(base + 15),
        "MUSICBOX_STREAM_METRICS_PORT": str(base + 16),
        "MUSICBOX_SPARK_DRIVER_MEMORY": "1g",
    }
    if layout == "clusters":
        env |= {
            "MUSICBOX_KAFKA_BROKERS": "3",
            "MUSICBOX_SPARK_WORKERS": "2",
            "MUSICBOX_SPARK_MASTER_PORT": str(base + 10),
            "MUSICBOX_SPARK_MASTER_UI_PORT": str(base + 11),
            "MUSICBOX_SPARK_WORKER_UI_PORT": str(base + 12),
            "MUSICBOX_SPARK_MASTER": f"spark://127.0.0.1:{base + 10}",
        }
    return env


def _cpu_by_group() -> dict[int, dict[int, float]]:
    """CPU seconds (user + system, with reaped children's) of every process, by process group."""
    tick = os.sysconf("SC_CLK_TCK")
    groups: dict[int, dict[int, float]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state ppid pgrp session ... utime(11) stime(12) cutime(13) cstime(14)
        cpu = sum(int(f) for f in fields[11:15]) / tick
        groups.setdefault(int(fields[2]), {})[int(proc.name)] = cpu
    return groups


def _party(name: str) -> str:
    """The party a service of `up` (by its PID file name) counts for."""
    return (
        "kafka"
        if name.startswith("kafka")
        else "spark workers"
        if name.startswith("spark-worker")
        else "other"
    )


def _services(var_dir: Path) -> dict[int, str]:
    """Process group -> party of every service `up` started (each leads its own group)."""
    return {int(p.read_text()): _party(p.stem) for p in (var_dir / "run").glob("*.pid")}


def _musicbox(env: dict[str, str], *args: str, cpu: dict[str, float] | None = None) -> float:
    """Run a command in a process group of its own; its wall time (or exit with its output when it
    fails). With `cpu`, add the CPU seconds the command's group and each service's group spent."""
    services = _services(Path(env["MUSICBOX_VAR_DIR"])) if cpu is not None else {}
    before = _cpu_by_group()
    seen: dict[int, float] = {}  # the command's processes, at their last look (they come and go)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicbox", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    while proc.poll() is None:
        seen |= _cpu_by_group().get(proc.pid, {})
        time.sleep(0.5)
    wall_s = time.monotonic() - started
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"musicbox {' '.join(args)} exited {proc.returncode}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    if cpu is not None:
        after = _cpu_by_group()
        cpu["command"] = cpu.get("command", 0.0) + sum(seen.values())
        for group, party in services.items():
            spent = sum(after.get(group, {}).values()) - sum(before.get(group, {}).values())
            cpu[party] = cpu.get(party, 0.0) + spent
    return wall_s


def one_run(layout: str, logs: Path, scratch: Path) -> Run:
    var_dir = scratch / layout
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    (var_dir / "jars").symlink_to(Settings().jars_dir.resolve())
    env = _env(layout, var_dir)
    up_s = _musicbox(env, "up")
    print(f"  {layout}: up in {up_s:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    try:
        load_start = os.getloadavg()[0]
        cpu: dict[str, dict[str, float]] = {step: {} for step in ("replay", "stream", "parity")}
        replay = ["replay", "--logs", str(logs), "--max-speed", "--no-metrics"]
        replay_s = _musicbox(env, *replay, cpu=cpu["replay"])
        stream_s = _musicbox(env, "stream", "--available-now", "--no-metrics", cpu=cpu["stream"])
        parity = ["parity", "--logs", str(logs)]  # exits 1 on any difference
        parity_s = _musicbox(env, *parity, cpu=cpu["parity"])
        return Run(layout, replay_s, stream_s, parity_s, (load_start, os.getloadavg()[0]), cpu)
    finally:
        _musicbox(env, "down")
        shutil.rmtree(var_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-clusters-"))
    try:
        logs = scratch / "logs"
        gen = [
            "generate",
            "--users",
            str(args.users),
            "--days",
            str(args.days),
            "--seed",
            "3",
            "--out",
            str(logs),
        ]
        _musicbox(dict(os.environ), *gen)
        lines = events = 0
        for item in iter_logs(logs):
            lines += 1
            events += isinstance(item, Event)
        # What the stream job reads: the events and a tick per day on every partition of the event topics.
        messages = events + args.days * Settings().partitions * len(Topics().events)
        print(
            f"data: {args.users} users, {args.days} days, {lines:,} lines, {messages:,} event-topic messages"
        )
        runs = []
        for r in range(args.rounds):
            for layout in ("single", "clusters"):
                print(f"round {r + 1}, {layout}...", flush=True)
                runs.append(one_run(layout, logs, scratch))
                run = runs[-1]
                print(
                    f"  replay {run.replay_s:.1f} s = {lines / run.replay_s:,.0f} lines/s; "
                    f"stream {run.stream_s:.1f} s = {messages / run.stream_s:,.0f} messages/s; "
                    f"parity {run.parity_s:.1f} s (exact); chain {run.chain_s:.1f} s; "
                    f"load {run.load[0]:.1f} -> {run.load[1]:.1f}",
                    flush=True,
                )
                for step, parties in run.cpu_s.items():
                    spent = ", ".join(f"{party} {s:.1f}" for party, s in sorted(parties.items()) if s >= 0.05)
                    print(f"    CPU seconds, {step}: {spent}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
