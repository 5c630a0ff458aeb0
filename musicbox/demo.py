"""`musicbox demo`: the whole system on a generated data set, end to end, with a summary.

Steps: bring the stack up (if it is not) -> generate a data set (44 days, dirt on) -> train the
first churn and ALS models on its first 30 days -> start the streaming job and the worker ->
replay the first 39 days at high speed -> retrain from what has arrived and promote -> wait
until the worker hot-reloads it -> replay the rest -> wait until the last day is closed and
scored -> parity check ->
summary and where to look. It stops what it started unless --keep-running.

The demo keeps its own state in `var/demo/` (models, feature log, checkpoints) so it never
touches a user's `var/models`; it does recreate the `musicbox.*` topics, which it needs empty
to count what it produced. The other packages are imported lazily (DESIGN 2: only the CLI may).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from musicbox.errors import MusicboxError
from musicbox.settings import Settings
from musicbox.topics import Topics

console = Console()


class DemoError(MusicboxError):
    """A step of the demo failed; its log file says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users", type=int, default=3000, help="users of the generated data set (default: 3000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay speed, event s per wall s (default: as fast as possible)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the stack, stream job and worker running"
    )


@dataclass
class Demo:
    settings: Settings
    args: argparse.Namespace
    root: Path
    started: float = field(default_factory=time.monotonic)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MUSICBOX_VAR_DIR": str(self.root),
            "MUSICBOX_TOPIC_PREFIX": self.settings.topic_prefix,
            "OPENBLAS_NUM_THREADS": "1",
            "COLUMNS": "120",
        }

    def step(self, title: str) -> None:
        console.rule(f"[bold]{title}[/]  ({time.monotonic() - self.started:.0f} s)")

    def run(self, name: str, *args: str, timeout_s: float = 900) -> str:
        """Run `musicbox ARGS` to completion, output to var/demo/<name>.log; raise on failure."""
        log = self.root / f"{name}.log"
        started = time.monotonic()
        with console.status(f"musicbox {' '.join(args)}"):
            done = subprocess.run(
                [sys.executable, "-m", "musicbox", *args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        text = done.stdout.decode(errors="replace")
        log.write_text(text)
        self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - started
        if done.returncode != 0:
            raise DemoError(
                f"`musicbox {' '.join(args)}` failed (exit {done.returncode}); see {log}:\n{text[-1500:]}"
            )
        return text

    def spawn(self, name: str, *args: str) -> None:
        log: IO[bytes] = (self.root / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "musicbox", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str, timeout_s: float = 120) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def check_alive(self, *names: str) -> None:
        for name in names:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise DemoError(
                    f"the {name} process exited ({proc.returncode}); see {self.root / (name + '.log')}"
                )


def _logs_until(logs: Path, last_day: date, into: Path) -> Path:
    """A folder of links to the log files up to `last_day`: "what has arrived so far"."""
    from musicbox.rawlogs import find_log_files

    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for log in find_log_files(logs):
        if log.date <= last_day:
            (into / log.path.name).symlink_to(log.path)
    return into


def _reset_topics(settings: Settings) -> None:
    """Delete and recreate the musicbox topics (deletion is asynchronous: retry the creation),
    and delete the worker's changelogs and consumer group: state restored from an earlier run
    would mark the new topics' offsets as already read."""
    from kafka import KafkaAdminClient

    from infra.local.kafka_broker import ensure_topics
    from streaming.scoring.kafka_setup import forget_state

    forget_state(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        ours = set(Topics(settings.topic_prefix).all())
        existing = [t for t in admin.list_topics() if t in ours]
        if existing:
            admin.delete_topics(existing)
    finally:
        admin.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            ensure_topics(settings)
            from infra.local.kafka_broker import topic_summary

            if len(topic_summary(settings)) == len(Topics(settings.topic_prefix).all()):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


class _TopicTail:
    """A topic's JSON records from its beginning; each `read` returns those added since the last."""

    def __init__(self, settings: Settings, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        partitions = self.consumer.partitions_for_topic(topic) or []
        self.parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.parts)
        self.consumer.seek_to_beginning(*self.parts)

    def read(self) -> list[dict[str, Any]]:
        end = self.consumer.end_offsets(self.parts)
        values: list[dict[str, Any]] = []
        while any(self.consumer.position(tp) < end[tp] for tp in self.parts):
            for records in self.consumer.poll(timeout_ms=1000, max_records=50_000).values():
                values += [json.loads(r.value) for r in records]
        return values

    def close(self) -> None:
        self.consumer.close()


def _consume(settings: Settings, topic: str) -> list[dict[str, Any]]:
    tail = _TopicTail(settings, topic)
    try:
        return tail.read()
    finally:
        tail.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    from infra.local import commands as stack
    from infra.local import kafka_broker, prometheus_server

    root = settings.var_dir / "demo"
    for stale in ("stream", "feature-log", "worker", "models", "replay"):
        shutil.rmtree(root / stale, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "jars").exists():
        (root / "jars").symlink_to(settings.jars_dir)
    demo = Demo(settings, args, root)
    started_stack = False
    try:
        demo.step("1/8 local stack")
        if not (kafka_broker.ready(settings) and prometheus_server.ready(settings)):
            stack.up(argparse.Namespace(timeout_s=120.0), settings)
            started_stack = True
        else:
            console.print("Kafka and Prometheus already up: using them")
        _reset_topics(settings)
        return _pipeline(demo)
    finally:
        for name in list(demo.procs):
            demo.stop(name)
        if started_stack and not args.keep_running:
            stack.down(argparse.Namespace(), settings)


def _pipeline(demo: Demo) -> int:
    from musicbox.rawlogs import find_log_files

    settings, args = demo.settings, demo.args
    demo.step("2/8 generate a data set (44 days, dirt on)")
    demo.run(
        "generate",
        "generate",
        "--users",
        str(args.users),
        "--days",
        "44",
        "--seed",
        str(args.seed),
        "--out",
        str(demo.logs),
        "--force",
    )
    days = sorted({log.date for log in find_log_files(demo.logs)})
    first, last = days[0], days[-1]
    train_until = first + timedelta(days=29)

    demo.step(f"3/8 train the first models on {first} .. {train_until}")
    early = _logs_until(demo.logs, train_until, demo.root / "logs-early")
    test_as_of = train_until - timedelta(days=settings.label_window_d)
    demo.run(
        "train-churn",
        "batch",
        "train-churn",
        "--logs",
        str(early),
        "--as-of",
        test_as_of.isoformat(),
        "--stride-d",
        "3",
        "--families",
        "logreg,hist_gradient_boosting",
        "--spark-families",
        "none",
        "--cv-folds",
        "0",
        "--promote",
        "always",
    )
    # 16 + 7 + 7 days: the rating, validation and test windows fit in the first 30 days.
    als_args = ["--no-spark", "--grid", "none", "--rating-window-d", "16", "--eval-window-d", "7"]
    demo.run("train-als", "batch", "train-als", "--logs", str(early), *als_args, "--promote", "always")
    first_versions = _served_versions(demo.root)
    console.print(f"serving churn {first_versions.get('churn')} and ALS {first_versions.get('als')}")

    demo.step("4/8 start the streaming job and the worker")
    demo.spawn("stream", "stream", "--reset")
    demo.spawn("worker", "worker")

    demo.step("5/8 replay the first days at full speed (a retrain follows)")
    speed = ["--max-speed"] if not args.speed else ["--speed", str(args.speed)]
    replay_started = time.monotonic()
    from streaming.aggregates.outputs import FeatureLog

    log = FeatureLog(demo.root / "feature-log")
    # The retrain's ALS needs 30 + 7 days of what has arrived; it leaves 5 days to serve the new
    # models. The replay stops there until the worker serves them: the stream and the worker keep
    # up with a replay at full speed, so a retrain run beside it would come after the last score.
    retrain_day = train_until + timedelta(days=9)
    demo.spawn("replay", "replay", "--logs", str(demo.logs), *speed, "--to", retrain_day.isoformat())
    _follow_replay(demo, "replay", log, days, until=retrain_day)
    demo.step(f"5/8 retrain on what has arrived (through {retrain_day}), promote, hot reload")
    arrived = _logs_until(demo.logs, retrain_day, demo.root / "logs-arrived")
    demo.run(
        "retrain",
        "batch",
        "retrain",
        "--logs",
        str(arrived),
        "--feature-log",
        str(demo.root / "feature-log"),
        "--rating-window-d",
        "16",
        "--force",
        "--promote",
        "always",
    )
    _wait_reload(demo, _served_versions(demo.root)["churn"])
    demo.step(f"5/8 replay the rest, {retrain_day + timedelta(days=1)} .. {last}")
    rest = (retrain_day + timedelta(days=1)).isoformat()
    demo.spawn("replay-rest", "replay", "--logs", str(demo.logs), *speed, "--from", rest)
    _follow_replay(demo, "replay-rest", log, days, until=last)
    demo.timings["replay + stream"] = time.monotonic() - replay_started - demo.timings["retrain"]

    demo.step("6/8 wait for the worker to score and recommend for the last day")
    _wait_worker(demo, last)
    demo.stop("worker")
    demo.stop("stream")

    demo.step("7/8 parity: streaming features vs batch")
    parity = demo.run(
        "parity", "parity", "--logs", str(demo.logs), "--feature-log", str(demo.root / "feature-log")
    )
    demo.step("8/8 report")
    demo.run("report", "batch", "report", "--logs", str(demo.logs))
    _summary(demo, first_versions, parity, days)
    return 0


def _follow_replay(demo: Demo, name: str, log: Any, days: list[date], until: date) -> None:
    """Until the replay `name` has ended and the stream has closed `until` in the feature `log`."""
    deadline = time.monotonic() + 1200
    with console.status("replaying...") as status:
        while time.monotonic() < deadline:
            closed = log.days()
            status.update(
                f"days closed by the stream: {len(closed)}/{len(days)}"
                + (f" (last {closed[-1]})" if closed else "")
            )
            if closed and closed[-1] >= until and demo.procs[name].poll() is not None:
                break
            demo.check_alive("stream", "worker")
            if demo.procs[name].poll() not in (None, 0):
                break
            time.sleep(1)
    replay_rc = demo.procs[name].wait()
    if replay_rc != 0:
        raise DemoError(f"the replay failed; see {demo.root / (name + '.log')}")
    closed = log.days()
    if not closed or closed[-1] < until:
        raise DemoError(
            f"the stream closed {len(closed)} of {len(days)} days in time (not {until}); "
            f"see {demo.root / 'stream.log'}"
        )


def _wait_reload(demo: Demo, version: str, timeout_s: float = 120) -> None:
    """Until the worker's metrics say it serves churn model `version` (it polls the registry)."""
    import urllib.request

    settings = demo.settings
    url = f"http://{settings.metrics_host}:{settings.worker_metrics_port}/metrics"
    wanted = f'musicbox_worker_model_info{{kind="churn",version="{version}"}} 1.0'
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for the worker to serve churn {version}"):
        while time.monotonic() < deadline:
            demo.check_alive("worker")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if wanted in response.read().decode():
                        console.print(f"the worker hot-reloaded churn {version}")
                        return
            except OSError:
                pass  # not serving yet
            time.sleep(1)
    raise DemoError(
        f"the worker did not switch to churn {version} in {timeout_s:.0f} s; see {demo.root / 'worker.log'}"
    )


def _served_versions(root: Path) -> dict[str, str]:
    out = {}
    for kind in ("churn", "als"):
        current = root / "models" / kind / "CURRENT"
        if current.exists():
            out[kind] = current.read_text().strip()
    return out


def _wait_worker(demo: Demo, last: date, timeout_s: float = 300) -> None:
    """Until the worker has scored and recommended for the last day and its outputs stop growing."""
    topics = Topics(demo.settings.topic_prefix)
    last_day = last.isoformat()
    # Read on from where the last look ended: re-reading both topics every time cost seconds
    # of CPU the worker being waited for could have used.
    tails = [
        _TopicTail(demo.settings, topics.churn_scores),
        _TopicTail(demo.settings, topics.recommendations),
    ]
    sizes, seen = [0, 0], [False, False]
    deadline = time.monotonic() + timeout_s
    previous = [-1, -1]
    try:
        while time.monotonic() < deadline:
            demo.check_alive("worker")
            for i, tail in enumerate(tails):
                new = tail.read()
                sizes[i] += len(new)
                seen[i] = seen[i] or any(r.get("as_of") == last_day for r in new)
            scored, recommended = seen
            if scored and recommended and sizes == previous:
                return
            console.print(
                f"  {time.monotonic() - demo.started:.0f} s: scores {sizes[0]:,} (of {last_day}: "
                f"{'yes' if scored else 'not yet'}), recommendations {sizes[1]:,} (of {last_day}: "
                f"{'yes' if recommended else 'not yet'})"
            )
            previous = list(sizes)
            time.sleep(5)
    finally:
        for tail in tails:
            tail.close()
    raise DemoError(
        f"the worker did not score and recommend {last} within {timeout_s:.0f} s; "
        f"see {demo.root / 'worker.log'}"
    )


def _summary(demo: Demo, first_versions: dict[str, str], parity: str, days: list[date]) -> None:
    from streaming.scoring.quality import live_vs_offline

    settings = demo.settings
    topics = Topics(settings.topic_prefix)
    features = _consume(settings, topics.features)
    scores = _consume(settings, topics.churn_scores)
    recs = _consume(settings, topics.recommendations)
    quality = _consume(settings, topics.model_quality)
    dead = _consume(settings, topics.dead_letters)
    manifest = json.loads((demo.logs / "manifest.json").read_text())
    reconciled = [
        next((ln.strip() for ln in text.splitlines() if "reconciles" in ln), f"see {name}.log")
        for name in ("replay", "replay-rest")
        for text in [(demo.root / f"{name}.log").read_text(errors="replace")]
    ]
    versions = Counter(s["model_version"] for s in scores)
    sources = Counter(r.get("source", "?") for r in recs)

    table = Table(title="musicbox demo", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row(
        "data set", f"{manifest['arguments']['users']:,} users x {len(days)} days, dirt on: {demo.logs}"
    )
    table.add_row("replay, to the retrain / the rest", " / ".join(reconciled))
    table.add_row(
        "dead letters", ", ".join(f"{k} {v:,}" for k, v in Counter(d["reason"] for d in dead).most_common())
    )
    table.add_row("feature rows", f"{len(features):,} over {len({f['as_of'] for f in features})} days")
    table.add_row(
        "parity",
        next(
            (ln.strip() for ln in parity.splitlines() if "zero differences" in ln or "days differ" in ln),
            "see parity.log",
        ),
    )
    table.add_row(
        "churn scores", f"{len(scores):,} ({', '.join(f'{v}: {n:,}' for v, n in versions.items())})"
    )
    table.add_row("recommendations", f"{len(recs):,} ({', '.join(f'{k} {v:,}' for k, v in sources.items())})")
    served = _served_versions(demo.root)
    reloaded = served.get("churn") != first_versions.get("churn")
    table.add_row(
        "models",
        f"first churn {first_versions.get('churn')} -> now {served.get('churn')}"
        + (" (hot-reloaded by the worker)" if reloaded and len(versions) > 1 else ""),
    )
    live = [q["roc_auc"] for q in quality if isinstance(q.get("roc_auc"), int | float)]
    if live:
        table.add_row(
            "live ROC AUC",
            f"{sum(live) / len(live):.3f} mean over {len(live)} (day, model) pairs "
            f"({min(live):.3f} .. {max(live):.3f} by day)",
        )
    tests = _offline_tests(demo.root)
    for pair in live_vs_offline(quality, tests):
        table.add_row(
            "live vs offline, same day",
            f"{pair.live:.3f} vs {pair.offline:.3f} (gap {pair.live - pair.offline:+.3f}): model "
            f"{pair.model_version} on {pair.as_of}, its offline test day",
        )
    if served.get("churn") in tests:
        day, auc = tests[served["churn"]]
        table.add_row(
            "offline test ROC AUC",
            f"{auc:.3f} (the served churn model's test, as of {day}; other days, maybe another model "
            "than the live figures: the same-day line compares like with like)",
        )
    table.add_row(
        "time",
        f"{time.monotonic() - demo.started:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in demo.timings.items()),
    )
    console.print(table)
    console.print(
        "where to look:\n"
        f"  Prometheus   http://127.0.0.1:{settings.prometheus_port} (musicbox_* metrics)\n"
        f"  report       {_latest_report(demo.root)}\n"
        f"  topics       {', '.join(topics.all())}\n"
        f"  scores       kcat -C -b {settings.kafka_bootstrap} -t {topics.churn_scores} -o beginning -e -c 5"
        "\n"
        f"  logs         {demo.root}/*.log"
    )


def _offline_tests(root: Path) -> dict[str, tuple[str, float]]:
    """Every churn model's offline test: version -> (test as-of day, ROC AUC)."""
    out = {}
    for meta_file in (root / "models" / "churn").glob("*/metadata.json"):
        meta = json.loads(meta_file.read_text())
        metrics = meta.get("metrics")
        if isinstance(metrics, dict) and isinstance(metrics.get("roc_auc"), int | float):
            out[str(meta.get("version"))] = (str(metrics.get("test_as_of")), float(metrics["roc_auc"]))
    return out


def _latest_report(root: Path) -> str:
    reports = sorted((root / "reports").glob("*/report.html")) if (root / "reports").is_dir() else []
    return str(reports[-1]) if reports else "(none)"
