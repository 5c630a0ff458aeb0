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

from musicbox.cli_args import iso_day
from musicbox.metrics import serve
from musicbox.rawlogs import ReadStats, group_by_day, select_logs
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from producers.replay.core import ReplayCounts
from producers.replay.errors import NotAcknowledgedError
from producers.replay.kafka_sink import CLIENTS, kafka_replay
from producers.replay.metrics import ReplayMetrics
from producers.replay.pacing import Pacer

console = Console(stderr=True)
MAX_ATTEMPTS = 10  # times the replay goes on after Kafka did not take a transaction


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
    parser.add_argument("--from", dest="from_day", type=iso_day, help="first day to replay (YYYY-MM-DD)")
    parser.add_argument("--to", dest="to_day", type=iso_day, help="last day to replay (YYYY-MM-DD)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="always on now: a replay skips what the topics already hold of these logs (kept for scripts)",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=50_000, help="most lines in one Kafka transaction"
    )
    parser.add_argument(
        "--senders",
        type=int,
        help="processes that send to Kafka, each owning a share of the partitions "
        "(default: MUSICBOX_REPLAY_SENDERS)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        help="Kafka client: kafka-python, or librdkafka's confluent-kafka (default: MUSICBOX_REPLAY_CLIENT)",
    )
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

    registry = CollectorRegistry()
    metrics = ReplayMetrics(registry, stats)
    if not args.no_metrics:
        serve(registry, settings.metrics_host, settings.replay_metrics_port)
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
    counts = ReplayCounts()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("replay", total=len(days), day="-", acked="0", rate="-")
        observer = _Progress(progress, task, metrics)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with kafka_replay(
                    settings,
                    pacer,
                    observer=observer,
                    checkpoint_every=args.checkpoint_every,
                    senders=args.senders or settings.replay_senders,
                    client=args.client or settings.replay_client,
                    on_wait=lambda msg: console.print(f"[yellow]{msg}"),
                ) as replay:
                    replay.counts = counts  # one tally over every attempt
                    held = len(replay.ledger.days())
                    if held:
                        console.print(f"the topics hold {held} days of earlier replays: not sent again")
                    replay.run(days, stats)
                break
            except NotAcknowledgedError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                console.print(
                    f"[yellow]{exc}\n[yellow]going on from the ledger once Kafka answers "
                    f"(attempt {attempt + 1} of {MAX_ATTEMPTS})"
                )
                progress.reset(task)  # the days done are skipped again at once
    summary = counts.summary()
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
    table.add_row("lines read", f"{counts.lines:,}")
    table.add_row("events sent", f"{counts.events:,}")
    for kind, n in sorted(counts.events_by_type.items()):
        table.add_row(f"  {kind}", f"{n:,}")
    table.add_row("dead letters sent", f"{counts.dead_letters:,}")
    for reason, n in sorted(counts.dead_letters_by_reason.items()):
        table.add_row(f"  {reason}", f"{n:,}")
    if counts.already_in_kafka:
        table.add_row("lines already in Kafka (an earlier run)", f"{counts.already_in_kafka:,}")
    if counts.days_already_done:
        table.add_row("days already in Kafka (not read)", f"{len(counts.days_already_done)}")
    if counts.aborted:
        table.add_row("lines read again after Kafka went away", f"{counts.aborted:,}")
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
    table.add_row("Kafka transactions", f"{counts.commits:,}")
    out.print(table)
    verdict = "reconciles" if summary.reconciles else "DOES NOT reconcile"
    out.print(
        f"lines read {counts.lines:,} = events {counts.events:,} + dead letters {counts.dead_letters:,}"
        + (f" + already in Kafka {counts.already_in_kafka:,}" if counts.already_in_kafka else "")
        + (f" + read again after Kafka went away {counts.aborted:,}" if counts.aborted else "")
        + f": {verdict}"
    )
    done = counts.days_already_done
    if done:
        span = done[0] if len(done) == 1 else f"{done[0]} .. {done[-1]}"
        out.print(f"already in Kafka whole, not read again: {len(done)} day(s), {span}")
