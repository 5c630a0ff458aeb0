"""Replay benchmark: where a replay's time goes, and each Kafka client side by side.

    .venv/bin/python -m bench.replay [--logs DIR] [--to DAY] [--rounds N] [--with-stream] [--sweep]

Rows (each into fresh topics of `MUSICBOX_PARTITIONS` partitions, in rounds A B C A B C ... so a
noisy machine hits every variant alike; the median of the rounds is printed, every round too):
- parse: the reader alone, every file of each day merged in event time;
- replay loop, no Kafka: parse + encode + place + ledger (what the replay process does itself);
- full replay with kafka-python from 1, 2 and 3 sender processes, and with confluent-kafka.
`--with-stream` runs `musicbox stream` on the same topics while each replay runs (the issue's
"measured while the stream job runs beside them"). `--sweep` times kafka-python with 2 senders
over linger.ms x batch.size instead.

Default data: the generator's study-sample profile (64,746 users, 44 days, ~12.4 M lines) in
var/data/study-sample, generated first if missing; `--to` limits the days. Figures go to
BENCHMARKS.md by hand, with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicbox.logging_setup import configure_logging
from musicbox.rawlogs import ReadStats, group_by_day, iter_logs, select_logs
from musicbox.settings import REPO_ROOT, Settings
from musicbox.topics import Topics

DEFAULT_LOGS = REPO_ROOT / "var" / "data" / "study-sample"
Run = Callable[[Settings], tuple[int, float]]  # -> (lines, seconds)


def generate_if_missing(logs: Path) -> None:
    if (logs / "manifest.json").exists():
        return
    started = time.monotonic()
    argv = ["generate", "--profile", "study-sample", "--bot-share", "0", "--out", str(logs), "--force"]
    subprocess.run([sys.executable, "-m", "musicbox", *argv], check=True)
    print(f"generate study-sample: {time.monotonic() - started:.1f} s")


def bench_parse(logs: Path, to_day: str | None) -> Run:
    def run(settings: Settings) -> tuple[int, float]:
        started = time.monotonic()
        n = sum(1 for _ in iter_logs(logs, to_day=to_day))
        return n, time.monotonic() - started

    return run


class _NullSink:
    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        pass

    def commit(self, ledger: Any) -> None:
        pass

    def close(self) -> None:
        pass


def bench_loop(logs: Path, to_day: str | None) -> Run:
    """The replay process's own work: parse, encode, place, count, ledger; no Kafka."""
    from producers.replay.core import Replay
    from producers.replay.pacing import Pacer
    from producers.replay.routing import Router

    def run(settings: Settings) -> tuple[int, float]:
        topics = Topics("bench.")
        partitions = {t: settings.partitions for t in (*topics.events, topics.dead_letters)}
        stats = ReadStats()
        days = group_by_day(select_logs(logs, to_day=to_day, stats=stats))
        started = time.monotonic()
        Replay(_NullSink(), Router(topics, partitions), Pacer(None)).run(days, stats)
        return stats.lines, time.monotonic() - started

    return run


def bench_replay(
    logs: Path, to_day: str | None, with_stream: bool, **options: Any
) -> Callable[[Settings], tuple[int, float]]:
    """The real thing, `kafka_replay` at max speed, into fresh topics; the stream job beside it
    when asked (started first and given time to reach its first batch)."""
    from infra.local.kafka_broker import ensure_topics
    from producers.replay.kafka_sink import kafka_replay
    from producers.replay.pacing import Pacer

    def run(settings: Settings) -> tuple[int, float]:
        ensure_topics(settings)
        stream = _start_stream(settings) if with_stream else None
        try:
            stats = ReadStats()
            days = group_by_day(select_logs(logs, to_day=to_day, stats=stats))
            started = time.monotonic()
            with kafka_replay(settings, Pacer(None), **options) as replay:
                counts = replay.run(days, stats)
            elapsed = time.monotonic() - started
        finally:
            if stream is not None:
                stream.terminate()
                stream.wait(timeout=120)
        assert counts.summary().reconciles, "the replay did not reconcile"
        return stats.lines, elapsed

    return run


def _start_stream(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MUSICBOX_TOPIC_PREFIX": settings.topic_prefix,
        "MUSICBOX_VAR_DIR": str(settings.var_dir),
        "MUSICBOX_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicbox", "stream", "--no-metrics"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(25)  # the SparkSession's start-up (10-20 s here): a benchmark, not a test
    return proc


def _fresh(base: Settings, scratch: Path, name: str) -> Settings:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    var_dir = scratch / name.replace(" ", "_")
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    (var_dir / "jars").symlink_to(base.jars_dir)
    return base.model_copy(update={"topic_prefix": prefix, "var_dir": var_dir})


def _delete_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    parser.add_argument("--to", dest="to_day", help="last day to use, YYYY-MM-DD (default: all days)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every variant (default: 2)")
    parser.add_argument("--with-stream", action="store_true", help="the stream job runs beside each replay")
    parser.add_argument("--sweep", action="store_true", help="linger x batch size, kafka-python x2")
    parser.add_argument("--skip-kafka", action="store_true", help="parse and the loop only")
    args = parser.parse_args()
    configure_logging("WARNING")
    if args.logs == DEFAULT_LOGS:
        generate_if_missing(args.logs)

    variants: dict[str, Run] = {}
    if not args.sweep:
        variants["parse (reader, all files merged)"] = bench_parse(args.logs, args.to_day)
        variants["replay loop, no Kafka (parse+encode+place)"] = bench_loop(args.logs, args.to_day)
    if not args.skip_kafka:
        replay = lambda **o: bench_replay(args.logs, args.to_day, args.with_stream, **o)  # noqa: E731
        if args.sweep:
            for linger in (5, 20, 100):
                for batch_kib in (128, 512, 1024):
                    producer = {"linger_ms": linger, "batch_size": batch_kib * 1024}
                    name = f"kafka-python x2, linger {linger} ms, batch {batch_kib} KiB"
                    variants[name] = replay(senders=2, producer=producer)
        else:
            for senders in (1, 2, 3):
                variants[f"kafka-python, {senders} sender process(es)"] = replay(senders=senders)
            variants["confluent-kafka (librdkafka), 1 process"] = replay(client="confluent-kafka")

    base = Settings()
    scratch = base.var_dir / "bench-replay"
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, run in variants.items():
            settings = _fresh(base, scratch, name)
            load = os.getloadavg()[0]
            try:
                n, s = run(settings)
            finally:
                _delete_topics(settings)
            results[name].append((n, s))
            print(f"round {round_ + 1}: {name}: {n:,} lines in {s:.1f} s = {n / s:,.0f}/s (load {load:.1f})")
    shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{'what':<58} {'lines':>12} {'median s':>9} {'lines/s':>10}  rounds (lines/s)")
    medians = {}
    for name, runs in results.items():
        n = runs[0][0]
        median_s = statistics.median(s for _, s in runs)
        medians[name] = n / median_s
        every = ", ".join(f"{n / s:,.0f}" for _, s in runs)
        print(f"{name:<58} {n:>12,} {median_s:>9.1f} {n / median_s:>10,.0f}  {every}")
    loop = medians.get("replay loop, no Kafka (parse+encode+place)")
    if loop:
        for name, rate in medians.items():
            if name.startswith(("kafka-python", "confluent")):
                print(f"{name}: {rate / loop:.2f} of the replay loop without Kafka")
    print(f"machine: {os.cpu_count()} cores; load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
