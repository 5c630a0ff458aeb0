"""Scoring benchmark: churn rows scored per second and day-close -> score latency at ~65 K users.

    .venv/bin/python -m bench.score [--users 65000] [--family hist_gradient_boosting] [--events 1000000]
                                    [--active-users 20000] [--songs 2000] [--factors 32] [--skip-churn]
                                    [--skip-floor] [--rounds 5] [--workers 1] [--worker-code DIR]

1. service: the pure scoring service in this process (decode + validate + predict + encode):
   the ceiling of the worker's own code.
2. worker: `musicbox worker` on a fresh topic prefix, warmed up (with --workers N: until its
   consumer group is stable with N members); then, --rounds times, one closed day of feature
   rows for every user is produced at once (aiokafka batches, as fast as the streaming job's
   bulk write), stamped computed_at_ms = the close. Reported per round and
   as the median: rows/s from the close to the last score, and the latency (scored_at_ms -
   computed_at_ms) at p50 / p99 / max. Goal: >= 50 K rows/s, p99 <= 5 s.
3. events (bench/score_events.py): a backlog of plays and downloads of --active-users users,
   then the day's ticks: events/s into the recommendation state, and how fast the day close
   refreshes the active users (users/s), with an ALS of --songs songs and --factors factors.
4. floors: a plain aiokafka batch consumer, and a Faust agent that only takes batches, read the
   same topic without doing any work: what each kind of reader allows on this machine.
--worker-code DIR runs the worker of another checkout (e.g. an export of an older commit) on the
same bench: old and new code side by side. The partition count is MUSICBOX_PARTITIONS'.
The bench's topics are deleted afterwards. Figures go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.score_events import bench_events
from bench.worker_io import Producer, read_records, start_worker, wait_for_records
from infra.local.kafka_broker import ensure_topics
from models.churn import fit_churn
from models.metadata import TrainingInfo, fingerprint
from models.registry import load_churn, promote, save_churn
from musicbox.events import encode_json
from musicbox.features import AS_OF, COMPUTED_AT_MS, DEVICE, IS_BOT, LABEL, NUMERIC_FEATURES, UID
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.app import app_id, features_group
from streaming.scoring.feature_rows import feature_frame
from streaming.scoring.reload import Served
from streaming.scoring.service import ScoringService

BOT_SHARE = 0.01


def feature_values(users: int, day: str, computed_at_ms: int, seed: int = 0) -> list[bytes]:
    """One day's feature rows: counts with the logs' heavy tail, 1 % bots."""
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(1.0, 1.0, users)
    out = []
    for i in range(users):
        row: dict = {UID: 168_000_000 + i, AS_OF: day}
        for name in NUMERIC_FEATURES:
            row[name] = (
                int(rng.poisson(rate[i] * 3))
                if not name.startswith("days_since")
                else int(rng.integers(1, 32))
            )
        row[DEVICE] = "ar" if rng.random() < 0.84 else "ip"
        row[IS_BOT] = bool(rng.random() < BOT_SHARE)
        row[COMPUTED_AT_MS] = computed_at_ms
        out.append(encode_json(row))
    return out


def train(root: Path, family: str) -> str:
    """A model of `family` on rows like the bench's, labelled by recency and activity plus noise."""
    table, _ = feature_frame(feature_values(4000, "2017-04-01", 0, seed=1))
    rng = np.random.default_rng(1)
    logit = (
        0.2 * (table["days_since_play"] - 8)
        - 0.5 * np.log1p(table["plays_7d"])
        + rng.normal(0, 1, len(table))
    )
    table[LABEL] = (logit > 0).astype(int)
    model = fit_churn(table, family).model
    meta = save_churn(root, model, TrainingInfo(("2017-03-30", "2017-04-28"), fingerprint(table)))
    promote(root, "churn", meta.version)
    return meta.version


def bench_service(root: Path, values: list[bytes]) -> float:
    served = Served(load_churn(root), "bench")
    service = ScoringService(lambda: served)
    started = time.perf_counter()
    for start in range(0, len(values), 5000):
        frame, _ = feature_frame(values[start : start + 5000])
        service.score(frame).messages()
    return len(values) / (time.perf_counter() - started)


def uid_keys(values: list[bytes]) -> list[bytes]:
    """The message keys of feature rows: their uid, as the streaming job keys them."""
    return [str(orjson.loads(raw)[UID]).encode() for raw in values]


def _partitions_of(assignment: Any) -> int:
    """Partitions in a member assignment as kafka-python's `describe_groups` decodes it."""
    if not isinstance(assignment, dict):
        return 0
    return sum(len(t.get("partitions", [])) for t in assignment.get("assigned_partitions", []))


def wait_for_group(settings: Settings, group: str, members: int, timeout_s: float) -> None:
    """Until consumer group `group` is stable with `members` members, each assigned partitions:
    with several workers, the first rounds would otherwise time the group's first rebalance."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            info = admin.describe_groups([group])[group]
            assigned = [m for m in info["members"] if _partitions_of(m.get("member_assignment"))]
            if info["group_state"] == "Stable" and len(assigned) == members:
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{group}: not {members} members with partitions after {timeout_s:.0f} s: {info}"
                )
            time.sleep(0.5)
    finally:
        admin.close()


def bench_worker(
    settings: Settings, values: list[bytes], close_ms: int, scorable: int, rounds: int, workers: int
) -> None:
    """`rounds` day closes one after the other (the same rows, as-of days 04-28, 04-29, ...),
    each produced at once and stamped with its close; figures per round, then the median.
    With `workers` > 1, that many worker processes share the partitions (one consumer group)."""
    topics = Topics(settings.topic_prefix)
    warm = feature_values(100, "2017-04-27", close_ms - 86_400_000, seed=9)
    warm_scored = sum(1 for raw in warm if not json.loads(raw)[IS_BOT])
    producer = Producer(settings)
    producer.send(topics.features, uid_keys(warm), warm)
    keys = uid_keys(values)
    log = settings.var_dir / "worker.log"
    with open(log, "w") as out:
        procs = [start_worker(settings, out, settings.worker_metrics_port + n) for n in range(workers)]
    figures = []
    try:
        wait_for_records(settings, topics.churn_scores, warm_scored, 180)
        if len(read_records(settings, topics.churn_scores, warm_scored, 30)) < warm_scored:
            raise SystemExit(f"the worker did not warm up; its log:\n{log.read_text()[-3000:]}")
        wait_for_group(settings, features_group(app_id(settings.topic_prefix)), workers, 120)
        for n in range(rounds):
            day = f"2017-04-{28 + n:02d}" if n < 3 else f"2017-05-{n - 2:02d}"
            close_s = time.time()
            stamped = [
                raw.replace(str(close_ms).encode(), str(int(close_s * 1000)).encode()).replace(
                    b'"2017-04-28"', f'"{day}"'.encode()
                )
                for raw in values
            ]
            sent_s = time.time()
            produce_s = producer.send(topics.features, keys, stamped)
            want = warm_scored + (n + 1) * scorable
            wait_for_records(settings, topics.churn_scores, want, 900)
            scores = [s for s in read_records(settings, topics.churn_scores, want, 60) if s[AS_OF] == day]
            if len(scores) < scorable:
                print(f"worker: {len(scores)} of {scorable} scores of {day}; log:\n{log.read_text()[-3000:]}")
                return
            scored_at = np.array([s["scored_at_ms"] for s in scores], dtype=np.float64) / 1000
            latency = scored_at - close_s
            p50, p99 = np.percentile(latency, [50, 99])
            figures.append((len(values) / (scored_at.max() - close_s), p50, p99, latency.max()))
            print(
                f"round {n + 1} ({day}): {len(values):,} rows produced in {produce_s:.2f} s (aiokafka), "
                f"from close +{sent_s - close_s:.2f} s; {figures[-1][0]:,.0f} rows/s close -> last score "
                f"({len(values) / (scored_at.max() - sent_s):,.0f} from the first send); latency p50 "
                f"{p50:.2f} s, p99 {p99:.2f} s, max {latency.max():.2f} s"
            )
    finally:
        producer.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)
    for line in log.read_text().splitlines():
        if line.startswith(("feature rows:", "scores by model version:")):
            print(f"worker summary: {line}")
    rate, p50, p99, worst = (float(np.median([f[i] for f in figures])) for i in range(4))
    print(
        f"worker, median of {len(figures)} rounds: {rate:,.0f} rows/s close -> last score; latency p50 "
        f"{p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s (goal: >= 50,000 rows/s, p99 <= 5 s)"
    )


def bench_faust_floor(settings: Settings, topic: str, want: int) -> None:
    """A Faust agent that only takes batches: the consumer's own ceiling here."""
    import faust

    name = f"{app_id(settings.topic_prefix)}-floor"
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = faust.App(
        name, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://", web_enabled=False,
        topic_allow_declare=False, topic_disable_leader=True, consumer_auto_offset_reset="earliest",
        datadir=str(settings.var_dir / "floor"),
    )  # fmt: skip
    seen = {"n": 0, "first": 0.0, "last": 0.0}
    stopping: list[asyncio.Task] = []
    worker = faust.Worker(app, loop=loop, quiet=True, redirect_stdouts=False, override_logging=False)

    @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"), concurrency=1)
    async def drain(stream: Any) -> None:
        async for batch in stream.take_events(5000, within=0.5):
            seen["first"] = seen["first"] or time.perf_counter()
            seen["n"] += len(batch)
            seen["last"] = time.perf_counter()
            if seen["n"] >= want:
                stopping.append(loop.create_task(worker.stop()))

    with contextlib.suppress(SystemExit):  # the worker exits 0 when stopped
        worker.execute_from_commandline()
    rate = seen["n"] / max(seen["last"] - seen["first"], 1e-3)
    print(f"faust floor: {seen['n']:,} messages taken by a no-op agent at {rate:,.0f} messages/s")


def bench_aiokafka_floor(settings: Settings, topic: str, want: int) -> None:
    """A plain aiokafka consumer reading batches (getmany): what a non-Faust reader would allow."""
    from aiokafka import AIOKafkaConsumer

    async def drain() -> float:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        n, first = 0, 0.0
        try:
            while n < want:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                first = first or time.perf_counter()
                n += sum(len(records) for records in batches.values())
        finally:
            await consumer.stop()
        return n / max(time.perf_counter() - first, 1e-3)

    print(f"aiokafka floor: a plain batch consumer reads {asyncio.run(drain()):,.0f} messages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=65_000)
    parser.add_argument("--family", default="hist_gradient_boosting")
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="day closes scored one after the other")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the partitions")
    parser.add_argument("--skip-churn", action="store_true", help="no churn scoring (service, worker)")
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="plays and downloads for the recommendation side (0: skip)",
    )
    parser.add_argument(
        "--active-users", type=int, default=20_000, help="users with events on the benched day"
    )
    parser.add_argument("--songs", type=int, default=2_000, help="songs of the bench's ALS model")
    parser.add_argument("--factors", type=int, default=32, help="factors of the bench's ALS model")
    parser.add_argument("--worker-code", type=Path, help="run the worker of this checkout instead")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-score-"))
    settings = Settings(
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.", var_dir=var_dir, worker_metrics_port=19303
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; users {args.users:,}; "
        f"{settings.partitions} partitions; worker code {args.worker_code or 'this checkout'}"
    )
    ensure_topics(settings)
    try:
        version = train(settings.models_dir, args.family)  # the worker needs a churn model to start
        if not args.skip_churn:
            close_ms = int(time.time() * 1000)
            values = feature_values(args.users, "2017-04-28", close_ms)
            scorable = sum(1 for raw in values if not json.loads(raw)[IS_BOT])
            print(f"model: {args.family} {version}")
            print(f"service (in process): {bench_service(settings.models_dir, values):,.0f} rows/s")
            bench_worker(settings, values, close_ms, scorable, args.rounds, args.workers)
        if args.events:
            bench_events(settings, args.events, args.active_users, args.songs, args.factors, args.worker_code)
        if not args.skip_floor:
            bench_aiokafka_floor(settings, Topics(settings.topic_prefix).features, args.users + 100)
            bench_faust_floor(settings, Topics(settings.topic_prefix).features, args.users + 100)
    finally:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        stem = settings.topic_prefix.rstrip(".")
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(stem)])
        groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(stem)]
        if groups:
            admin.delete_groups(groups)  # the workers' consumer groups, empty once they stopped
        admin.close()
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
