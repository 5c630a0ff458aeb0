"""Batch feature rows (+ the churn label where its window is in the data) for a range of as-of days.

events table -> Spark -> daily buckets -> rolling features and labels -> one output file or
folder. The transforms are `streaming.aggregates`', shared with the streaming job, which is
what keeps batch and streaming rows equal (DESIGN 5, parity invariant).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from rich.console import Console
from rich.table import Table

from batch.errors import FeaturesJobError, cause
from batch.events_table import EventsTable, Progress, events_table
from batch.options import add_as_of, add_logs, add_out, add_sample_pct
from musicbox.cli_args import iso_day
from musicbox.events import day_start_ms
from musicbox.features import AS_OF, FEATURE_ROW_COLUMNS, IS_BOT, LABEL, LOOKBACK_D, UID
from musicbox.settings import Settings
from musicbox.spark import build_spark
from streaming.aggregates.buckets import daily_buckets
from streaming.aggregates.labels import churn_labels
from streaming.aggregates.rolling import rolling_features
from streaming.aggregates.schema import feature_row_schema

# The user sample: Spark's xxhash64 (seed 42) of the uid as a 64-bit integer, modulo 100 (pmod:
# never negative). Deterministic across runs, machines and Spark versions.
SAMPLE_HASH_SQL = f"pmod(xxhash64(CAST({UID} AS BIGINT)), 100)"
SUCCESS_MARKER = "_SUCCESS"  # what Spark leaves in a finished output folder


def in_sample(sample_pct: int) -> Column:
    """True for the users of a `sample_pct` % sample: `pmod(xxhash64(uid), 100) < sample_pct`."""
    return F.expr(SAMPLE_HASH_SQL) < F.lit(sample_pct)


def select_events(
    events: DataFrame, as_of_days: list[date], *, label_window_d: int, sample_pct: int | None = None
) -> DataFrame:
    """The events that can matter: from the first window's start to the last label's end, sampled."""
    first_ms = day_start_ms(min(as_of_days) - timedelta(days=LOOKBACK_D - 1))
    end_ms = day_start_ms(max(as_of_days) + timedelta(days=label_window_d + 1))
    events = events.filter((F.col("event_time_ms") >= first_ms) & (F.col("event_time_ms") < end_ms))
    return events if sample_pct is None else events.filter(in_sample(sample_pct))


def feature_table(
    events: DataFrame,
    as_of_days: list[date],
    *,
    bot_plays_30d: int,
    label_window_d: int,
    last_day: date,
    sample_pct: int | None = None,
) -> DataFrame:
    """Feature rows of every as-of day with their `churn` (null where the label window is incomplete).

    `events` needs `type, uid, event_time_ms, device, play_time_s` (the events table has them).
    """
    events = select_events(events, as_of_days, label_window_d=label_window_d, sample_pct=sample_pct)
    return table_from_buckets(
        daily_buckets(events),
        as_of_days,
        bot_plays_30d=bot_plays_30d,
        label_window_d=label_window_d,
        last_day=last_day,
    )


def table_from_buckets(
    buckets: DataFrame, as_of_days: list[date], *, bot_plays_30d: int, label_window_d: int, last_day: date
) -> DataFrame:
    """`feature_table` from daily buckets, which it reads twice (features, labels): persist them first
    when they are expensive to recompute."""
    features = rolling_features(buckets, as_of_days, bot_plays_30d)
    labels = churn_labels(buckets, as_of_days, label_window_d, last_day)
    return features.join(labels, [UID, AS_OF], "left").select(*FEATURE_ROW_COLUMNS, LABEL)


def output_format(out: Path) -> str:
    """`csv` (one file with a header), `parquet` (one file) or `parquet-dir`, from the path."""
    suffix = out.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix == "" or out.is_dir():
        return "parquet-dir"
    raise FeaturesJobError(f"--out {out}: use a .csv or .parquet file name, or a folder name without suffix")


def write_table(table: DataFrame, out: Path) -> None:
    """Write rows sorted by (as_of, uid) (within each file): one file for .csv/.parquet, else a folder.

    Spark writes into a temporary sibling folder first; the result then replaces `out`, so a
    failed run leaves any previous output intact.
    """
    fmt = output_format(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeaturesJobError(f"--out {out}: cannot create its folder ({cause(exc)})") from exc
    work = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if fmt == "parquet-dir":
            table.sortWithinPartitions(AS_OF, UID).write.parquet(str(work))
            _replace_folder(work, out)
            return
        # One partition then a local sort: the upstream stages stay parallel (unlike coalesce),
        # and no sampling pass recomputes the whole plan (unlike a global orderBy).
        writer = table.repartition(1).sortWithinPartitions(AS_OF, UID).write
        if fmt == "csv":
            writer.option("header", True).csv(str(work))
        else:
            writer.parquet(str(work))
        parts = sorted(p for p in work.iterdir() if p.name.startswith("part-"))
        if len(parts) != 1:
            raise FeaturesJobError(f"Spark wrote {len(parts)} part files for {out}, expected 1")
        os.replace(parts[0], out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace_folder(work: Path, out: Path) -> None:
    if out.exists():
        if not (out / SUCCESS_MARKER).is_file():
            raise FeaturesJobError(
                f"--out {out} exists and is not a Spark output folder: choose another path"
            )
        shutil.rmtree(out)
    os.rename(work, out)


def read_table(spark: SparkSession, path: Path) -> DataFrame:
    """Read back what `write_table` wrote, with the feature row types (CSV is read with the schema)."""
    if output_format(path) == "csv":
        schema = feature_row_schema(with_label=True)
        return spark.read.schema(schema).option("header", True).csv(str(path))
    return spark.read.parquet(str(path))


@dataclass(frozen=True)
class DaySummary:
    as_of: date
    rows: int
    labelled: int  # rows with a churn label (0 when the label window is not in the data)
    churned: int
    bots: int

    @property
    def churn_share(self) -> float | None:
        return self.churned / self.labelled if self.labelled else None


def summarize(table: DataFrame) -> list[DaySummary]:
    """Rows, labelled rows, churners and bots per as-of day."""
    per_day = (
        table.groupBy(AS_OF)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(LABEL).alias("labelled"),
            F.coalesce(F.sum(LABEL), F.lit(0)).alias("churned"),
            F.sum(F.col(IS_BOT).cast("int")).alias("bots"),
        )
        .orderBy(AS_OF)
        .collect()
    )
    return [DaySummary(r[AS_OF], r["rows"], r["labelled"], r["churned"], r["bots"]) for r in per_day]


@dataclass
class FeaturesReport:
    """What one run did: the events table used, the rows written per day, and the time taken."""

    table: EventsTable
    out: Path
    days: list[DaySummary] = field(default_factory=list)
    read_s: float = 0.0
    spark_s: float = 0.0


def check_as_of_days(as_of_days: list[date], table: EventsTable) -> None:
    """Refuse as-of days outside the logs: their features would read missing days as inactivity."""
    first, last = table.first_day, table.last_day
    assert first is not None and last is not None  # an events table always holds events
    outside = [d for d in as_of_days if not first <= d <= last]
    if outside:
        raise FeaturesJobError(
            f"as-of day(s) {', '.join(map(str, outside[:3]))} are outside the logs ({first}..{last}): "
            "choose days within them"
        )


def run_features(
    settings: Settings,
    logs_dir: Path,
    as_of_days: list[date],
    out: Path,
    *,
    sample_pct: int | None = None,
    progress: Progress | None = None,
    spark_factory: Callable[[], SparkSession] | None = None,
) -> FeaturesReport:
    """The whole job: events table (read or reused), features and labels, written to `out`."""
    output_format(out)  # refuse a bad --out before the long work
    started = time.monotonic()
    table = events_table(settings, logs_dir, progress=progress)
    check_as_of_days(as_of_days, table)
    report = FeaturesReport(table, out, read_s=time.monotonic() - started)

    spark = spark_factory() if spark_factory else build_spark(settings, "musicbox-batch-features")
    started = time.monotonic()
    assert table.last_day is not None
    events = select_events(
        spark.read.parquet(str(table.path)),
        as_of_days,
        label_window_d=settings.label_window_d,
        sample_pct=sample_pct,
    )
    buckets = daily_buckets(events).persist()  # small (users x active days), read by features and labels
    try:
        rows = table_from_buckets(
            buckets,
            as_of_days,
            bot_plays_30d=settings.bot_plays_30d,
            label_window_d=settings.label_window_d,
            last_day=table.last_day,
        )
        write_table(rows, out)
    finally:
        buckets.unpersist()
    report.days = summarize(read_table(spark, out))
    report.spark_s = time.monotonic() - started
    return report


# ---------------------------------------------------------------- `musicbox batch features`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_logs(parser, "folder holding the raw log files", required=True)
    days = parser.add_mutually_exclusive_group(required=True)
    add_as_of(days, "one as-of day (YYYY-MM-DD)")
    days.add_argument(
        "--from", dest="from_day", type=iso_day, metavar="DATE", help="first as-of day (with --to)"
    )
    parser.add_argument("--to", dest="to_day", type=iso_day, metavar="DATE", help="last as-of day, inclusive")
    add_out(parser, "FILE.csv (one file, header), FILE.parquet, or a folder (Parquet)", required=True)
    add_sample_pct(parser)


def as_of_days_of(as_of: date | None, from_day: date | None, to_day: date | None) -> list[date]:
    """The as-of days the options name: one day, or every day of from..to inclusive."""
    if as_of is not None:
        if to_day is not None:
            raise FeaturesJobError("--to goes with --from, not with --as-of: give one or the other")
        return [as_of]
    if from_day is None or to_day is None:
        raise FeaturesJobError("give --as-of DATE, or both --from DATE and --to DATE")
    if to_day < from_day:
        raise FeaturesJobError(f"--to {to_day} is before --from {from_day}: swap them")
    return [from_day + timedelta(days=i) for i in range((to_day - from_day).days + 1)]


def run(args: argparse.Namespace, settings: Settings) -> int:
    days = as_of_days_of(args.as_of, args.from_day, args.to_day)
    err = Console(stderr=True)

    def progress(day: str, events: int, dead: int) -> None:
        err.print(f"read logs through {day}: {events:,} events, {dead:,} rejected lines", soft_wrap=True)

    err.print(f"events table for {args.logs} ...")
    report = run_features(settings, args.logs, days, args.out, sample_pct=args.sample_pct, progress=progress)
    print_report(report, Console(), sample_pct=args.sample_pct)
    return 0


def print_report(report: FeaturesReport, console: Console, *, sample_pct: int | None = None) -> None:
    """The end-of-run summary: rows per as-of day, churn share, bots, and where the time went."""
    table = Table(title=f"feature rows written to {report.out}")
    for name in ("as_of", "rows", "labelled", "churn share", "bots"):
        table.add_column(name, justify="left" if name == "as_of" else "right")
    for d in report.days:
        share = "-" if d.churn_share is None else f"{d.churn_share:.1%}"
        table.add_row(str(d.as_of), f"{d.rows:,}", f"{d.labelled:,}", share, f"{d.bots:,}")
    console.print(table)
    s = report.table.summary
    how = "reused" if report.table.from_cache else "read now"
    by_type = ", ".join(f"{n:,} {t}" for t, n in sorted(s.rows_by_type.items()))
    console.print(
        f"events: {s.rows:,} ({by_type}) on {s.first_day}..{s.last_day}, {s.dead_letters:,} rejected lines; "
        f"table {how}: {report.table.path}",
        soft_wrap=True,
    )
    rows = sum(d.rows for d in report.days)
    labelled = sum(d.labelled for d in report.days)
    churned = sum(d.churned for d in report.days)
    share = f"{churned / labelled:.1%}" if labelled else "no label (window past the data)"
    sample = f", sample {sample_pct}% of users" if sample_pct is not None else ""
    console.print(
        f"{rows:,} rows over {len(report.days)} as-of day(s){sample}; churn share {share}; "
        f"bots flagged {sum(d.bots for d in report.days):,}; "
        f"time: logs {report.read_s:.1f} s + Spark {report.spark_s:.1f} s",
        soft_wrap=True,
    )
