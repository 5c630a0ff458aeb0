"""The demo's steps, in order, from a generated data set to the facts its summary is built from.

Generate 44 days (dirt on), or take them from the cache -> train the first churn and ALS models
on the first 30 -> start the stream job and the worker -> replay the first 39 days at full speed
-> retrain on what has arrived and promote -> wait until the worker serves it -> replay the rest
-> wait until the last day is scored and recommended -> parity -> report. Commands that run
beside the demo (the replay, the stream job, the worker) are processes, and the replay tells its
counts in a JSON file; the rest (parity, registry reads) runs here and is used by its return
values.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from batch.parity import DayParity
from batch.parity_command import check
from demo.datasets import DatasetSpec, cached
from demo.processes import Processes
from demo.records import feature_key, reason, recommended, score_key
from demo.summary import RunFacts, offline_tests, training_rows
from demo.timeouts import WORKER_STALL_S, Timeouts
from demo.topic_watch import TopicTail, consume
from demo.waits import follow_replay, wait_reload, wait_worker
from models.registry import KINDS, current_version, list_versions, read_metadata
from musicbox.rawlogs import find_log_files
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from musicbox.spark import build_spark
from musicbox.topics import Topics
from streaming.aggregates.outputs import FeatureLog
from streaming.aggregates.store import StateStore

TRAIN_DAYS = 30
RETRAIN_AFTER_D = 9  # the retrain's ALS needs 30 + 7 days; it leaves 5 days to serve the new models


@dataclass
class Demo:
    """One run: its settings (var dir = the demo's own), options, data set, processes and clock."""

    settings: Settings
    args: argparse.Namespace
    spec: DatasetSpec
    procs: Processes
    console: Console
    started: float = field(default_factory=time.monotonic)
    # Filled in as the run goes, for its facts.
    generated: bool = False
    worker_done: float | None = None  # when the last day was scored and recommended

    @property
    def root(self) -> Path:
        return self.settings.var_dir

    @property
    def logs(self) -> Path:
        return self.root / "datasets" / self.spec.key()

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts.for_users(self.spec.users)

    def step(self, title: str) -> None:
        self.console.rule(f"[bold]{title}[/]  ({time.monotonic() - self.started:.0f} s)")

    def run(self, name: str, *args: str) -> None:
        with self.console.status(f"musicbox {' '.join(args)}"):
            self.procs.run(name, *args)

    def spans_s(self) -> dict[str, tuple[float, float]]:
        """When each process ran, in seconds since the demo started (one still running: until now)."""
        now = time.monotonic()
        return {
            name: (start - self.started, (now if end is None else end) - self.started)
            for name, (start, end) in self.procs.spans.items()
        }

    def served(self) -> dict[str, str | None]:
        return {kind: current_version(self.settings.models_dir, kind) for kind in KINDS}


def logs_until(logs: Path, last_day: date, into: Path) -> Path:
    """A folder of links to the log files up to `last_day`: "what has arrived so far"."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for log in find_log_files(logs):
        if log.date <= last_day:
            (into / log.path.name).symlink_to(log.path)
    return into


def generate(demo: Demo) -> None:
    """The data set, generated, or taken from the cache when one with the same arguments is there."""
    spec = demo.spec
    demo.step(
        f"2/8 the data set: {spec.users:,} users x {spec.days} days, dirt on, bot share {spec.bot_share:g}"
    )
    if cached(demo.logs, spec):
        demo.console.print(
            f"generation skipped: {demo.logs} holds these logs already (same generator arguments)"
        )
        return
    demo.run("generate", *spec.argv(demo.logs))
    demo.generated = True


def run(demo: Demo) -> RunFacts:
    generate(demo)
    days = sorted({log.date for log in find_log_files(demo.logs)})
    train_until = days[0] + timedelta(days=TRAIN_DAYS - 1)
    retrain_day = train_until + timedelta(days=RETRAIN_AFTER_D)
    first_models = _train_first(demo, train_until)

    demo.step("4/8 start the streaming job and the worker")
    demo.procs.spawn("stream", "stream", "--reset")
    demo.procs.spawn("worker", "worker")
    replays = _replay_retrain_replay(demo, days, retrain_day)

    demo.step("6/8 wait for the worker to score and recommend for the last day")
    wait_worker(
        demo.console,
        demo.procs,
        demo.settings,
        days[-1],
        demo.started,
        demo.timeouts.worker_s,
        WORKER_STALL_S,
    )
    demo.worker_done = time.monotonic()
    demo.procs.done_with("worker", "stream")  # their CPU goes to parity, unless --keep-running

    demo.step("7/8 parity: streaming features vs batch")
    parity_started = time.monotonic()
    spark = build_spark(demo.settings, "musicbox-demo-parity")
    try:
        feature_log = FeatureLog(demo.settings.feature_log_dir)
        parity = check(spark, demo.settings, demo.logs, feature_log, feature_log.days())
    finally:
        spark.stop()
    demo.procs.timings["parity"] = time.monotonic() - parity_started
    demo.procs.spans["parity"] = (parity_started, time.monotonic())

    demo.step("8/8 report")
    demo.run("report", "batch", "report", "--logs", str(demo.logs), "--out", str(demo.root / "report"))
    return _facts(demo, days, replays, parity, first_models, (train_until, retrain_day))


def _train_first(demo: Demo, train_until: date) -> dict[str, str | None]:
    demo.step(f"3/8 train the first models through {train_until}")
    early = logs_until(demo.logs, train_until, demo.root / "logs-early")
    test_as_of = train_until - timedelta(days=demo.settings.label_window_d)
    demo.run(
        "train-churn", "batch", "train-churn", "--logs", str(early), "--as-of", test_as_of.isoformat(),
        "--stride-d", "3", "--families", "logreg,hist_gradient_boosting", "--spark-families", "none",
        "--cv-folds", "0", "--promote", "always",
    )  # fmt: skip
    # 16 + 7 + 7 days: the rating, validation and test windows fit in the first 30 days.
    als_args = ["--no-spark", "--grid", "none", "--rating-window-d", "16", "--eval-window-d", "7"]
    demo.run("train-als", "batch", "train-als", "--logs", str(early), *als_args, "--promote", "always")
    served = demo.served()
    demo.console.print(f"serving churn {served['churn']} and ALS {served['als']}")
    return served


def _replay_retrain_replay(demo: Demo, days: list[date], retrain_day: date) -> dict[str, ReplaySummary]:
    """Replay up to `retrain_day`, retrain and wait for the hot reload, replay the rest; returns
    each replay's summary. The replay pauses for the retrain: the stream and the worker keep up
    with a replay at full speed, so a retrain run beside it would come after the last score."""
    speed = ["--max-speed"] if not demo.args.speed else ["--speed", str(demo.args.speed)]
    log = FeatureLog(demo.settings.feature_log_dir)
    started = time.monotonic()
    demo.step("5/8 replay the first days at full speed (a retrain follows)")
    _replay(demo, "replay", log, len(days), retrain_day, *speed, "--to", retrain_day.isoformat())

    demo.step(f"5/8 retrain on what has arrived (through {retrain_day}), promote, hot reload")
    arrived = logs_until(demo.logs, retrain_day, demo.root / "logs-arrived")
    demo.run(
        "retrain", "batch", "retrain", "--logs", str(arrived), "--feature-log", str(log.root),
        "--rating-window-d", "16", "--force", "--promote", "always",
    )  # fmt: skip
    new_churn = demo.served()["churn"]
    if new_churn is not None:
        wait_reload(demo.console, demo.procs, demo.settings, new_churn, demo.timeouts.reload_s)

    rest = retrain_day + timedelta(days=1)
    demo.step(f"5/8 replay the rest, {rest} .. {days[-1]}")
    _replay(demo, "replay-rest", log, len(days), days[-1], *speed, "--from", rest.isoformat())
    demo.procs.timings["replay + stream"] = time.monotonic() - started - demo.procs.timings["retrain"]
    return {name: ReplaySummary.read(summary_file(demo, name)) for name in ("replay", "replay-rest")}


def summary_file(demo: Demo, name: str) -> Path:
    return demo.root / f"{name}-summary.json"


def _replay(demo: Demo, name: str, log: FeatureLog, days: int, until: date, *args: str) -> None:
    summary = summary_file(demo, name)
    summary.unlink(missing_ok=True)
    demo.procs.spawn(name, "replay", "--logs", str(demo.logs), "--summary-json", str(summary), *args)
    follow_replay(demo.console, demo.procs, name, log, days, until, demo.timeouts.replay_s)


def _facts(
    demo: Demo,
    days: list[date],
    replays: dict[str, ReplaySummary],
    parity: list[DayParity],
    first_models: dict[str, str | None],
    windows: tuple[date, date],
) -> RunFacts:
    """Read back what the run produced: the topics, the registry, the stream job's state store,
    the data set's manifest."""
    settings, models = demo.settings, demo.settings.models_dir
    topics = Topics(settings.topic_prefix)
    report = demo.root / "report" / "report.html"
    manifest = json.loads((demo.logs / "manifest.json").read_text())
    lines_by_day: Counter[str] = Counter()
    for f in manifest["files"]:
        lines_by_day[str(f["date"])] += int(f["lines"])
    served = demo.served()
    trained = {"train": first_models.get("churn"), "retrain": served.get("churn")}
    if trained["retrain"] == trained["train"]:
        trained["retrain"] = None  # no retrained model was promoted
    score_tail = TopicTail(settings, topics.churn_scores, score_key)
    try:
        scores, partitions = score_tail.read(), len(score_tail.parts)
    finally:
        score_tail.close()
    now = time.monotonic()
    return RunFacts(
        logs=demo.logs,
        users=int(manifest["arguments"]["users"]),
        days=[d.isoformat() for d in days],
        replays=replays,
        parity=parity,
        features=consume(settings, topics.features, feature_key),
        scores=scores,
        recommendations=consume(settings, topics.recommendations, recommended),
        quality=consume(settings, topics.model_quality),
        dead_letters=consume(settings, topics.dead_letters, reason),
        first_models=first_models,
        served_models=served,
        offline_tests=offline_tests(
            read_metadata(models, "churn", v) for v in list_versions(models, "churn")
        ),
        report=str(report) if report.exists() else None,
        timings_s=dict(demo.procs.timings),
        elapsed_s=now - demo.started,
        profile=demo.spec.profile,
        lines_by_day=dict(lines_by_day),
        generated=demo.generated,
        spans_s=demo.spans_s(),
        train_until=windows[0].isoformat(),
        retrain_until=windows[1].isoformat(),
        train_rows={
            step: training_rows(read_metadata(models, "churn", version)) if version else None
            for step, version in trained.items()
        },
        stream_rows=StateStore(settings.stream_dir).progress_before(sys.maxsize).feature_rows,
        score_markers=score_tail.markers,
        partitions=partitions,
        worker_done_s=None if demo.worker_done is None else demo.worker_done - demo.started,
    )
