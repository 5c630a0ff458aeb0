"""Training benchmark at the study-sample scale (64,746 users, 44 days, ~11.5 M events).

    .venv/bin/python -m bench.train [--logs var/data/study-sample] [--skip-features] [--one-row 200]

1. batch features: the events table (raw logs -> Parquet, in a fresh cache) and the Spark feature
   job for the study's snapshot, for the four snapshots train-churn uses, and for all 44 days.
2. ALS: implicit vs Spark MLlib ALS on the same ratings matrix (the 30 days train-als trains on),
   same rank, iterations and alpha; fit times and their ratio, and Spark's top-10 time.
3. churn scoring: each family (trained on the time-based split) scores the test snapshot in
   batches and one row at a time: rows/s, ms a row, and the ratio.
The logs are generated (`musicbox generate --profile study-sample`) when absent. Figures and
ratios are printed; they go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy / implicit load OpenBLAS

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
from pyspark.sql import SparkSession
from rich.console import Console
from rich.table import Table

from batch.als_training import build_ratings, default_windows
from batch.events_table import events_table
from batch.features import feature_table
from batch.spark_als import run_spark_als
from batch.training_data import churn_snapshot_days, features_from_logs, rating_event_days
from models.als import DEFAULT_PARAMS, train_als
from models.churn import FAMILIES, split_bots
from models.churn_experiment import train_churn
from models.churn_splits import time_split
from musicbox.settings import REPO_ROOT, Settings
from musicbox.spark import build_spark

T = TypeVar("T")
DEFAULT_LOGS = REPO_ROOT / "var" / "data" / "study-sample"
STUDY_AS_OF = date(2017, 4, 28)


class Rows(list[tuple[str, str, str]]):
    """The result rows, each also printed as it arrives (a long run shows its figures as it goes)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def append(self, row: tuple[str, str, str]) -> None:
        super().append(row)
        self.console.print("   " + " | ".join(row))


def ensure_logs(logs: Path, console: Console) -> None:
    if (logs / "manifest.json").is_file():
        return
    console.print(f"generating the study sample into {logs} (a few minutes) ...")
    subprocess.run(
        [sys.executable, "-m", "musicbox", "generate", "--profile", "study-sample", "--out", str(logs)],
        check=True,
    )


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def bench_features(
    settings: Settings, logs: Path, spark: SparkSession, rows: list[tuple[str, str, str]]
) -> None:
    table, read_s = timed(lambda: events_table(settings, logs))
    s = table.summary
    rows.append(
        (
            "events table (raw logs -> Parquet)",
            f"{read_s:.1f} s",
            f"{s.rows:,} events, {s.rows / read_s:,.0f} events/s",
        )
    )
    assert table.last_day is not None
    events = spark.read.parquet(str(table.path))
    first = table.first_day
    assert first is not None
    cases = {
        "study snapshot (1 day)": [STUDY_AS_OF],
        "train-churn snapshots (4 days)": churn_snapshot_days(STUDY_AS_OF, first),
        f"every day ({(table.last_day - first).days + 1} days)": [
            first + timedelta(days=i) for i in range((table.last_day - first).days + 1)
        ],
    }
    for name, days in cases.items():
        frame = feature_table(
            events,
            days,
            bot_plays_30d=settings.bot_plays_30d,
            label_window_d=settings.label_window_d,
            last_day=table.last_day,
        )
        out = Path(tempfile.mkdtemp(prefix="bench-features-", dir=settings.var_dir))
        started = time.perf_counter()
        frame.write.mode("overwrite").parquet(str(out / "f"))
        spark_s = time.perf_counter() - started
        n = spark.read.parquet(str(out / "f")).count()
        rows.append((f"batch features: {name}", f"{spark_s:.1f} s", f"{n:,} rows, {n / spark_s:,.0f} rows/s"))


def bench_als(settings: Settings, logs: Path, spark: SparkSession, rows: list[tuple[str, str, str]]) -> None:
    table = events_table(settings, logs)
    assert table.first_day is not None and table.last_day is not None
    windows = default_windows(table.first_day, table.last_day)
    ratings, ratings_s = timed(lambda: build_ratings(rating_event_days(table, *windows.needed), windows))
    train = ratings.train
    rows.append(
        (
            "ratings (4 windows, events folded day by day)",
            f"{ratings_s:.1f} s",
            f"train: {len(train):,} pairs, {train['uid'].nunique():,} users, "
            f"{train['song_id'].nunique():,} songs",
        )
    )
    model, implicit_s = train_als(train, DEFAULT_PARAMS)
    p = DEFAULT_PARAMS
    rows.append(
        (
            f"implicit ALS fit (rank {p.factors}, {p.iterations} it, 1 thread)",
            f"{implicit_s:.1f} s",
            f"{implicit_s / p.iterations:.2f} s an iteration",
        )
    )
    out = Path(tempfile.mkdtemp(prefix="bench-spark-als-", dir=settings.var_dir))
    run = run_spark_als(spark, model, p, out / "top", k=10)
    rows.append(
        (
            "Spark MLlib ALS fit (same matrix, local[2])",
            f"{run.fit_time_s:.1f} s",
            f"{run.fit_time_s / implicit_s:.1f}x implicit's time",
        )
    )
    rows.append(
        (
            "Spark top-10 per user, seen removed, to Parquet",
            f"{run.recommend_time_s:.1f} s",
            f"{len(run.recommender.top):,} users",
        )
    )


def bench_scoring(
    settings: Settings, logs: Path, spark: SparkSession, one_row: int, rows: list[tuple[str, str, str]]
) -> None:
    table = events_table(settings, logs)
    assert table.first_day is not None
    days = churn_snapshot_days(STUDY_AS_OF, table.first_day)
    frame, _ = features_from_logs(settings, table, days, lambda: spark)
    split = time_split(frame, STUDY_AS_OF)
    test, _ = split_bots(split.test, True)
    for family in FAMILIES:
        trained = train_churn(split.train, family)
        model = trained.model
        started = time.perf_counter()
        model.predict_proba(test)
        batch_s = time.perf_counter() - started
        one = []
        for i in range(min(one_row, len(test))):
            row = test.iloc[i : i + 1]
            started = time.perf_counter()
            model.predict_proba(row)
            one.append(time.perf_counter() - started)
        per_row_ms = float(np.median(one)) * 1000
        batched = len(test) / batch_s
        rows.append(
            (
                f"churn {family}: fit on {trained.fit_rows:,} rows",
                f"{trained.train_time_s:.1f} s",
                f"batched {batched:,.0f} rows/s; one row {per_row_ms:.2f} ms "
                f"({1000 / per_row_ms:,.0f} rows/s): batched is {batched * per_row_ms / 1000:,.0f}x faster",
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    parser.add_argument("--skip-features", action="store_true", help="skip part 1 (the longest)")
    parser.add_argument("--one-row", type=int, default=200, help="rows scored one at a time per family")
    args = parser.parse_args(argv)
    console = Console()
    ensure_logs(args.logs, console)
    rows = Rows(console)
    with tempfile.TemporaryDirectory(prefix="bench-train-", dir=REPO_ROOT / "var") as var:
        settings = Settings(var_dir=Path(var))  # a fresh cache: the events table is built, not reused
        spark = build_spark(settings, "bench-train")
        if not args.skip_features:
            console.print("1. batch features ...")
            bench_features(settings, args.logs, spark, rows)
        console.print("2. ALS: implicit vs Spark MLlib ...")
        bench_als(settings, args.logs, spark, rows)
        console.print("3. churn scoring throughput ...")
        bench_scoring(settings, args.logs, spark, args.one_row, rows)
        spark.stop()
    out = Table(
        title=f"bench/train.py on {args.logs.name}: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    for c in ("what", "time", "figures"):
        out.add_column(c)
    for r in rows:
        out.add_row(*r)
    Console(width=160).print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
