"""Streaming feature job benchmark: sustained events/s, and day-close latency (tick -> rows written).

    .venv/bin/python -m bench.stream [--logs DIR] [--latency-days N] [--latency-speed X]

1. Throughput: the logs are replayed at max speed into fresh bench topics, then
   `musicbox stream --available-now` reads them all; events/s = messages / wall time of the job
   (Spark start-up included, and excluded: the job's own "in batches" figure).
2. Latency: the stream job runs live while the first N days are replayed at `--latency-speed`
   (event seconds per wall second); for each day, latency = the feature log partition's
   `_SUCCESS` time minus the moment Kafka acknowledged that day's ticks.
Default data: var/data/study-sample (see bench/replay.py). Figures go to BENCHMARKS.md by hand.
Each run's var dir is removed afterwards, and the latency run's topics deleted; the throughput
run's topics stay for `--topics-from` (their outputs, features and dead letters, are emptied
before each reuse: 2.5 M feature rows a run piled up before).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.replay import DEFAULT_LOGS, generate_if_missing
from musicbox.rawlogs import select_logs
from musicbox.settings import Settings


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "COLUMNS": "200",
        "MUSICBOX_TOPIC_PREFIX": settings.topic_prefix,
        "MUSICBOX_VAR_DIR": str(settings.var_dir),
        "MUSICBOX_STREAM_METRICS_PORT": "19202",
        "MUSICBOX_REPLAY_METRICS_PORT": "19201",
    }


def _isolated(topic_prefix: str | None = None) -> Settings:
    """Fresh state under var/, and fresh topics (or those of `topic_prefix`, already filled)."""
    from infra.local.kafka_broker import ensure_topics

    base = Settings()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-stream-", dir=base.var_dir))
    (var_dir / "jars").symlink_to(base.jars_dir)
    prefix = topic_prefix or f"bench{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(update={"topic_prefix": prefix, "var_dir": var_dir})
    ensure_topics(settings)
    return settings


def _empty_outputs(settings: Settings) -> None:
    """Delete every record of the stream job's output topics (inputs stay for the next run)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    from musicbox.topics import Topics

    topics = Topics(settings.topic_prefix)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.features, topics.dead_letters)
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        ends = {tp: end for tp, end in consumer.end_offsets(parts).items() if end}
        if ends:
            admin.delete_records(ends)
    finally:
        consumer.close()
        admin.close()


def _delete_topics(settings: Settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(settings.topic_prefix)])
    finally:
        admin.close()


def throughput(logs: Path, topics_from: str | None) -> None:
    settings = _isolated(topics_from)
    try:
        _throughput(logs, settings, topics_from)
    finally:
        shutil.rmtree(settings.var_dir, ignore_errors=True)


def _throughput(logs: Path, settings: Settings, topics_from: str | None) -> None:
    env = _env(settings)
    if topics_from:
        print(f"reading topics {topics_from}* as they are (filled by an earlier run)")
        _empty_outputs(settings)
    else:
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "musicbox", "replay", "--logs", str(logs), "--max-speed", "--no-metrics"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"replay into bench topics {settings.topic_prefix}*: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "stream", "--available-now", "--no-metrics"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall_s = time.monotonic() - started
    messages = int(re.search(r"messages read\s*│?\s*([\d,]+)", done.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    batches_s = float(re.search(r"\(([\d,.]+) s in batches\)", done.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    print(done.stdout)
    print(
        f"stream --available-now: {messages:,} messages in {wall_s:.1f} s wall = {messages / wall_s:,.0f}/s; "
        f"{batches_s:.1f} s inside micro-batches = {messages / batches_s:,.0f}/s"
    )


def latency(logs: Path, days: int, speed: float) -> None:
    settings = _isolated()
    try:
        _latency(logs, settings, days, speed)
    finally:
        _delete_topics(settings)
        shutil.rmtree(settings.var_dir, ignore_errors=True)


def _latency(logs: Path, settings: Settings, days: int, speed: float) -> None:
    from streaming.aggregates.outputs import SUCCESS, FeatureLog

    env = _env(settings)
    first = select_logs(logs)[0].date
    to_day = first.fromordinal(first.toordinal() + days - 1)
    stream = subprocess.Popen(
        [sys.executable, "-m", "musicbox", "stream", "--no-metrics"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(30)  # Spark start-up: let the query run before the first tick
    acked = _replay_recording_ticks(settings, logs, to_day.isoformat(), speed)
    log = FeatureLog(settings.feature_log_dir)
    deadline = time.monotonic() + 600
    while len(log.days()) < days and time.monotonic() < deadline:
        time.sleep(1)
    stream.terminate()
    stream.wait(timeout=120)
    lat = []
    for day in log.days():
        success = (log.partition(day) / SUCCESS).stat().st_mtime
        if day.isoformat() in acked:
            lat.append(success - acked[day.isoformat()])
    lat.sort()
    print(
        f"day-close latency over {len(lat)} days at speed {speed:,.0f}: "
        f"median {statistics.median(lat):.1f} s, p90 {lat[int(0.9 * (len(lat) - 1))]:.1f} s, "
        f"max {lat[-1]:.1f} s"
    )


def _replay_recording_ticks(settings: Settings, logs: Path, to_day: str, speed: float) -> dict[str, float]:
    """Replay in this process at `speed`; returns when each day's ticks were acknowledged (epoch s)."""
    from collections import Counter

    from musicbox.rawlogs import ReadStats, group_by_day
    from producers.replay.kafka_sink import kafka_replay
    from producers.replay.pacing import Pacer

    acked: dict[str, float] = {}

    class Recorder:
        def acknowledged(self, events: Counter[str], dead: Counter[str], nbytes: int, flush_s: float) -> None:
            pass

        def day_started(self, day: str) -> None:
            pass

        def day_done(self, day: str, ticks: int) -> None:
            acked[day] = time.time()

    stats = ReadStats()
    days = group_by_day(select_logs(logs, to_day=to_day, stats=stats))
    with kafka_replay(settings, Pacer(speed), observer=Recorder()) as replay:
        replay.run(days, stats)
    return acked


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--topics-from",
        metavar="PREFIX",
        help="throughput: read the topics of this prefix (a full replay of --logs) instead of replaying",
    )
    parser.add_argument(
        "--latency-days", type=int, default=10, help="days replayed live for the latency run (0: skip)"
    )
    parser.add_argument(
        "--latency-speed", type=float, default=8640.0, help="event s per wall s (8640: a day in 10 s)"
    )
    args = parser.parse_args()
    if args.logs == DEFAULT_LOGS:
        generate_if_missing(args.logs)
    if not args.skip_throughput:
        throughput(args.logs, args.topics_from)
    if args.latency_days:
        latency(args.logs, args.latency_days, args.latency_speed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
