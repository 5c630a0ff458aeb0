"""Replay benchmark: parse, parse + encode, full replay into the local broker, and a reference client.

    .venv/bin/python -m bench.replay [--logs DIR] [--limit N] [--skip-kafka]

Default data: the generator's study-sample profile (64,746 users, 44 days, ~11.5 M events) in
var/data/study-sample, generated first if missing (the generator's own rate is reported too).
Figures go to BENCHMARKS.md by hand, with the machine they ran on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

from musicbox.events import Event
from musicbox.logging_setup import configure_logging
from musicbox.rawlogs import ReadStats, group_by_day, iter_logs, select_logs
from musicbox.settings import REPO_ROOT, Settings
from musicbox.topics import Topics

DEFAULT_LOGS = REPO_ROOT / "var" / "data" / "study-sample"


def generate_if_missing(logs: Path) -> None:
    if (logs / "manifest.json").exists():
        return
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "musicbox",
            "generate",
            "--profile",
            "study-sample",
            "--out",
            str(logs),
            "--force",
        ],
        check=True,
    )
    print(f"generate study-sample: {time.monotonic() - started:.1f} s")


def bench_parse(logs: Path, to_day: str | None) -> tuple[int, float]:
    started = time.monotonic()
    n = sum(1 for _ in iter_logs(logs, to_day=to_day))
    return n, time.monotonic() - started


def bench_parse_encode(logs: Path, to_day: str | None) -> tuple[int, float]:
    started = time.monotonic()
    n = 0
    for item in iter_logs(logs, to_day=to_day):
        item.to_json()
        if isinstance(item, Event):
            str(item.uid).encode()
        n += 1
    return n, time.monotonic() - started


def bench_replay(settings: Settings, logs: Path, to_day: str | None) -> tuple[int, float]:
    """The real thing: `Replay` with the Kafka sink at max speed into fresh topics."""
    from infra.local.kafka_broker import ensure_topics
    from producers.replay.kafka_sink import kafka_replay
    from producers.replay.pacing import Pacer

    ensure_topics(settings)
    stats = ReadStats()
    days = group_by_day(select_logs(logs, to_day=to_day, stats=stats))
    started = time.monotonic()
    with kafka_replay(settings, Pacer(None)) as replay:
        counts = replay.run(days, stats)
    return counts.events + counts.dead_letters, time.monotonic() - started


def bench_confluent(settings: Settings, logs: Path, to_day: str | None) -> tuple[int, float]:
    """The same messages through confluent-kafka (librdkafka), the reference client."""
    from confluent_kafka import Producer

    from infra.local.kafka_broker import ensure_topics

    ensure_topics(settings)
    topics = Topics(settings.topic_prefix)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 512 * 1024,
        }
    )
    started = time.monotonic()
    n = 0
    for item in iter_logs(logs, to_day=to_day):
        if isinstance(item, Event):
            topic, key = topics.for_event_type(item.type), str(item.uid).encode()
        else:
            topic, key = topics.dead_letters, None
        while True:
            try:
                producer.produce(topic, item.to_json(), key)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush()
    return n, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    parser.add_argument("--to", dest="to_day", help="last day to use, YYYY-MM-DD (default: all days)")
    parser.add_argument("--skip-kafka", action="store_true", help="parse benchmarks only")
    args = parser.parse_args()
    configure_logging("WARNING")
    if args.logs == DEFAULT_LOGS:
        generate_if_missing(args.logs)

    rows = []
    n, s = bench_parse(args.logs, args.to_day)
    rows.append(("parse (reader, all files merged)", n, s))
    n, s = bench_parse_encode(args.logs, args.to_day)
    rows.append(("parse + JSON encode", n, s))
    if not args.skip_kafka:
        base = Settings()
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        n, s = bench_replay(base.model_copy(update={"topic_prefix": prefix + "k."}), args.logs, args.to_day)
        rows.append(("full replay, kafka-python (acks=all, idempotent)", n, s))
        n, s = bench_confluent(
            base.model_copy(update={"topic_prefix": prefix + "c."}), args.logs, args.to_day
        )
        rows.append(("parse + encode + confluent-kafka (reference)", n, s))
        print(f"(bench topics left under prefix {prefix}: delete them or `make clean-state`)")
    print(f"{'what':<52} {'lines':>12} {'seconds':>9} {'lines/s':>10}")
    for what, n, s in rows:
        print(f"{what:<52} {n:>12,} {s:>9.1f} {n / s:>10,.0f}")
    if len(rows) == 4:
        ratio = (rows[2][1] / rows[2][2]) / (rows[3][1] / rows[3][2])
        print(f"kafka-python / confluent-kafka throughput ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
