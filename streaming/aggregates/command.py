"""`musicbox stream`: the Spark Structured Streaming feature job (see `job` for what a batch does)."""

from __future__ import annotations

import argparse
import shutil
import signal
import threading
import time
from collections import Counter
from types import FrameType

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

from musicbox.metrics import serve
from musicbox.settings import Settings
from musicbox.spark import build_spark
from musicbox.topics import Topics
from streaming.aggregates.job import (
    BatchReport,
    FeatureBatchProcessor,
    event_partitions,
    kafka_source,
    partition_count,
)
from streaming.aggregates.metrics import ProgressListener, StreamMetrics
from streaming.aggregates.outputs import FeatureLog
from streaming.aggregates.store import StateStore

console = Console(stderr=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what Kafka holds now (in batches of MUSICBOX_STREAM_MAX_OFFSETS), then stop",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="forget the checkpoint, bucket store and feature log (start again from the earliest offsets)",
    )
    parser.add_argument("--no-metrics", action="store_true", help="do not serve Prometheus metrics")


class _Tally:
    """Accumulates batch reports for the progress lines and the final summary."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics
        self.batches = 0
        self.messages = 0
        self.events = 0
        self.dead: Counter[str] = Counter()
        self.late = 0
        self.days: list[str] = []
        self.rows = 0
        self.busy_s = 0.0
        self.stage_s: Counter[str] = Counter()

    def __call__(self, report: BatchReport) -> None:
        self.metrics.record(report)
        self.batches += 1
        self.messages += report.messages
        self.events += report.events
        self.dead.update(report.dead_letters_by_reason)
        self.late += report.late_events
        self.days += report.closed_days
        self.rows += report.feature_rows
        self.busy_s += report.duration_s
        self.stage_s.update(report.stage_s)
        closed = (
            f", closed {', '.join(report.closed_days)} ({report.feature_rows:,} rows)"
            if report.closed_days
            else ""
        )
        console.print(
            f"batch {report.batch_id}: {report.messages:,} messages, {report.events:,} events"
            f"{closed} in {report.duration_s:.1f} s"
        )


def reset_state(settings: Settings) -> None:
    for path in (settings.stream_dir, settings.feature_log_dir):
        shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.reset:
        reset_state(settings)
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    if not args.no_metrics:
        serve(registry, settings.metrics_host, settings.stream_metrics_port)
    partitions = event_partitions(settings)
    tally = _Tally(metrics)
    processor = FeatureBatchProcessor(
        settings,
        partitions,
        StateStore(settings.stream_dir),
        FeatureLog(settings.feature_log_dir),
        tally,
        feature_partitions=partition_count(settings, Topics(settings.topic_prefix).features),
    )
    with console.status("starting Spark..."):
        spark = build_spark(settings, "musicbox-stream", with_kafka=True)
    listener = ProgressListener(metrics)
    spark.streams.addListener(listener)
    writer = (
        kafka_source(spark, settings)
        .writeStream.foreachBatch(processor)
        .option("checkpointLocation", str(settings.stream_dir / "checkpoint"))
    )
    writer = (
        writer.trigger(availableNow=True)
        if args.available_now
        else writer.trigger(processingTime=f"{settings.stream_trigger_s} seconds")
    )
    started = time.monotonic()
    query = writer.queryName("musicbox-features").start()
    console.print(
        f"streaming {len(partitions)} partitions from {settings.kafka_bootstrap}; feature log "
        f"{settings.feature_log_dir}; metrics on {settings.metrics_host}:{settings.stream_metrics_port}"
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    while query.isActive and not stop.is_set():
        query.awaitTermination(1)
    if query.isActive:
        query.stop()
    error = query.exception()
    spark.streams.removeListener(listener)  # before the Python side goes away
    spark.stop()
    _print_summary(tally, time.monotonic() - started)
    if error is not None:
        console.print(f"[red]the streaming query failed: {error}")
        return 1
    return 0


def _print_summary(tally: _Tally, elapsed_s: float) -> None:
    table = Table(title="stream summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("micro-batches", f"{tally.batches:,}")
    table.add_row("messages read", f"{tally.messages:,}")
    table.add_row("events bucketed", f"{tally.events:,}")
    table.add_row("dead letters", f"{sum(tally.dead.values()) + tally.late:,}")
    for reason, n in sorted(tally.dead.items()):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("  late (still bucketed)", f"{tally.late:,}")
    first_last = f"{tally.days[0]} .. {tally.days[-1]}" if tally.days else "-"
    table.add_row("days closed", f"{len(tally.days)} ({first_last})")
    table.add_row("feature rows", f"{tally.rows:,}")
    table.add_row("time", f"{elapsed_s:,.1f} s ({tally.busy_s:,.1f} s in batches)")
    for stage, stage_s in tally.stage_s.most_common():
        table.add_row(f"  {stage}", f"{stage_s:,.1f} s ({stage_s / max(tally.busy_s, 1e-9):.0%})")
    table.add_row("throughput", f"{tally.messages / max(elapsed_s, 1e-9):,.0f} messages/s")
    Console().print(table)
