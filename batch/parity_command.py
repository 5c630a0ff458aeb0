"""`musicbox parity --logs DIR`: the streaming feature log against `musicbox batch features`.

It lives beside the batch features it recomputes (streaming never imports batch); `check` is
what the command and the demo call, and its `DayParity` results are what they judge.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession
from rich.console import Console
from rich.table import Table

from batch.events_table import events_table
from batch.features import feature_table
from batch.parity import DayParity, compare
from musicbox.cli_args import iso_day
from musicbox.settings import Settings
from musicbox.spark import build_spark
from streaming.aggregates.errors import StreamError
from streaming.aggregates.outputs import FeatureLog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logs", required=True, type=Path, help="the logs that were replayed into the stream"
    )
    parser.add_argument(
        "--feature-log",
        type=Path,
        help="the streaming job's feature log (default: MUSICBOX_VAR_DIR/feature-log)",
    )
    parser.add_argument("--from", dest="from_day", type=iso_day, help="first as-of day to check")
    parser.add_argument("--to", dest="to_day", type=iso_day, help="last as-of day to check")


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    started = time.monotonic()
    log = FeatureLog(args.feature_log or settings.feature_log_dir)
    days = [
        d
        for d in log.days()
        if (args.from_day is None or d >= args.from_day) and (args.to_day is None or d <= args.to_day)
    ]
    if not days:
        raise StreamError(f"no closed day in the feature log {log.root}: run `musicbox stream` first")
    results = check(build_spark(settings, "musicbox-parity"), settings, args.logs, log, days)
    _print(console, results, time.monotonic() - started)
    return 0 if all(r.ok for r in results) else 1


def check(
    spark: SparkSession, settings: Settings, logs: Path, log: FeatureLog, days: list[date]
) -> list[DayParity]:
    """Compare the log's rows of `days` with batch rows computed from `logs` now."""
    table = events_table(settings, logs)
    if table.last_day is None:
        raise StreamError(f"the logs under {logs} hold no event")
    batch = feature_table(
        spark.read.parquet(str(table.path)),
        days,
        bot_plays_30d=settings.bot_plays_30d,
        label_window_d=settings.label_window_d,
        last_day=table.last_day,
    )
    return compare(log.read(spark, days), batch, days)


def _print(console: Console, results: list[DayParity], elapsed_s: float) -> None:
    table = Table(title="parity: streaming feature log vs batch features")
    for col in ("as_of", "matched", "differing", "missing", "extra", "duplicate", "verdict"):
        table.add_column(col, justify="right" if col not in ("as_of", "verdict") else "left")
    for r in results:
        verdict = "[green]equal" if r.ok else "[red]DIFFERENT"
        table.add_row(
            r.as_of.isoformat(),
            f"{r.matched:,}",
            str(r.differing),
            str(r.missing),
            str(r.extra),
            str(r.duplicate),
            verdict,
        )
    console.print(table)
    for r in results:
        for example in r.examples:
            console.print(f"  {r.as_of}: {example}")
    bad = [r for r in results if not r.ok]
    rows = sum(r.matched for r in results)
    if bad:
        console.print(
            f"[red]{len(bad)} of {len(results)} days differ[/] ({rows:,} rows matched) in {elapsed_s:.1f} s"
        )
    else:
        console.print(
            f"[green]parity: {len(results)} days, {rows:,} rows, zero differences[/] in {elapsed_s:.1f} s"
        )
