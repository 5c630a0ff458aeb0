"""`musicbox replay --logs DIR [--speed X | --max-speed] [--from DATE] [--to DATE] [--resume]`.

`--summary-json FILE` also writes the summary's counts as JSON (musicbox.replay_summary), for
whoever runs the replay as a process: the demo reads the numbers, not the printed table.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from musicbox.metrics import serve
from musicbox.rawlogs import ReadStats, group_by_day, select_logs
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from musicbox.topics import Topics
from producers.replay.core import Replay, ReplayCounts
from producers.replay.errors import ReplayError
from producers.replay.metrics import ReplayMetrics
from producers.replay.pacing import Pacer
from producers.replay.sink import KafkaSink
from producers.replay.state import StateFile, logs_fingerprint

console = Console(stderr=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logs", required=True, help="folder of day files YYYYMMDD_<k>_{play,down,search}.log[.gz]"
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=86_400.0,
        help="event seconds per wall second (86400 = a day a second; default)",
    )
    pace.add_argument("--max-speed", action="store_true", help="as fast as Kafka acknowledges")
    parser.add_argument("--from", dest="from_day", help="first day to replay (YYYY-MM-DD)")
    parser.add_argument("--to", dest="to_day", help="last day to replay (YYYY-MM-DD)")
    parser.add_argument("--resume", action="store_true", help="continue from the last acknowledged position")
    parser.add_argument("--checkpoint-every", type=int, default=50_000, help="events between checkpoints")
    parser.add_argument("--no-metrics", action="store_true", help="do not serve Prometheus metrics")
    parser.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the summary's counts to FILE as JSON (for scripts)",
    )


class _Progress:
    """Progress bar by day with events/s, plus the metrics observer."""

    def __init__(self, progress: Progress, task: TaskID, metrics: ReplayMetrics) -> None:
        self._progress, self._task, self._metrics = progress, task, metrics
        self._started = time.monotonic()
        self._events = 0

    def acknowledged(self, events: Counter[str], dead: Counter[str], nbytes: int, flush_s: float) -> None:
        self._metrics.acknowledged(events, dead, nbytes, flush_s)
        self._events += sum(events.values()) + sum(dead.values())
        rate = self._events / max(time.monotonic() - self._started, 1e-9)
        self._progress.update(self._task, rate=f"{rate:,.0f} events/s", acked=f"{self._events:,}")

    def day_started(self, day: str) -> None:
        self._metrics.day_started(day)
        self._progress.update(self._task, day=day)

    def day_done(self, day: str, ticks: int) -> None:
        self._metrics.day_done(day, ticks)
        self._progress.advance(self._task)


def run(args: argparse.Namespace, settings: Settings) -> int:
    stats = ReadStats()
    logs = select_logs(args.logs, args.from_day, args.to_day, stats)
    days = group_by_day(logs)
    state = StateFile(settings.var_dir / "replay" / "state.json", logs_fingerprint(logs))
    start = state.load() if args.resume else None
    if args.resume and start is None:
        console.print("no resume point for these logs: replaying from the start")
    elif start is not None:
        console.print(f"resuming at {start.day}, item {start.items:,} (everything before was acknowledged)")

    registry = CollectorRegistry()
    metrics = ReplayMetrics(registry, stats)
    if not args.no_metrics:
        serve(registry, settings.metrics_host, settings.replay_metrics_port)
    sink = KafkaSink(settings.kafka_bootstrap, on_wait=lambda msg: console.print(f"[yellow]{msg}"))
    topics = Topics(settings.topic_prefix)
    try:
        sink.require_topics([*topics.events, topics.dead_letters])
    except ReplayError:
        sink.close()
        raise
    pacer = Pacer(None if args.max_speed else args.speed)
    columns = (
        TextColumn("replay {task.fields[day]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days  {task.fields[acked]} acked  {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("replay", total=len(days), day="-", acked="0", rate="-")
            replay = Replay(
                sink,
                topics,
                pacer,
                state=state,
                observer=_Progress(progress, task, metrics),
                checkpoint_every=args.checkpoint_every,
            )
            counts = replay.run(days, stats, start)
    finally:
        sink.close()
    summary = ReplaySummary(
        lines=stats.lines,
        events_by_type=dict(counts.events_by_type),
        dead_letters_by_reason=dict(counts.dead_letters_by_reason),
        skipped_on_resume=counts.skipped_on_resume,
        possible_duplicates=counts.possible_duplicates,
        days_completed=counts.days_completed,
        ticks=counts.ticks,
    )
    _print_summary(counts, stats, summary, time.monotonic() - started, pacer)
    if args.summary_json is not None:
        summary.write(args.summary_json)
    return 0


def _print_summary(
    counts: ReplayCounts, stats: ReadStats, summary: ReplaySummary, elapsed_s: float, pacer: Pacer
) -> None:
    out = Console()
    table = Table(title="replay summary (acknowledged by Kafka)", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("lines read", f"{stats.lines:,}")
    table.add_row("events sent", f"{counts.events:,}")
    for kind, n in sorted(counts.events_by_type.items()):
        table.add_row(f"  {kind}", f"{n:,}")
    table.add_row("dead letters sent", f"{counts.dead_letters:,}")
    for reason, n in sorted(counts.dead_letters_by_reason.items()):
        table.add_row(f"  {reason}", f"{n:,}")
    if counts.skipped_on_resume:
        table.add_row("already sent before the resume", f"{counts.skipped_on_resume:,}")
    repairs = stats.repairs_by_field
    table.add_row("fields repaired to null", f"{sum(repairs.values()):,}")
    for name, n in sorted(repairs.items()):
        table.add_row(f"  {name}", f"{n:,}")
    table.add_row("days completed (ticks sent)", f"{counts.days_completed} ({counts.ticks} ticks)")
    table.add_row("value bytes", f"{counts.bytes:,}")
    table.add_row("time", f"{elapsed_s:,.1f} s ({pacer.slept_s:,.1f} s pacing)")
    table.add_row(
        "throughput", f"{(counts.events + counts.dead_letters) / max(elapsed_s, 1e-9):,.0f} lines/s"
    )
    out.print(table)
    verdict = "reconciles" if summary.reconciles else "DOES NOT reconcile"
    out.print(
        f"lines read {stats.lines:,} = events {counts.events:,} + dead letters {counts.dead_letters:,}"
        + (f" + sent before resume {counts.skipped_on_resume:,}" if counts.skipped_on_resume else "")
        + f": {verdict}"
    )
    if counts.possible_duplicates:
        out.print(
            f"resumed run: up to {counts.possible_duplicates:,} messages sent just before the interruption "
            "may appear twice; duplicates are identical (same key, same event_id): consumers can drop them"
        )
