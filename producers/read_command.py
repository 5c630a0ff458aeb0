"""`musicbox read`: read raw logs end to end and report what they hold.

Counts (lines = events + dead letters), repairs by field, dead letters by reason, and the
data-quality table of the days read. Dirty data is the normal case, so it exits 0, a damaged
file included (read up to the damage, reported); only a folder without log files is an error.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from musicbox.cli_args import iso_day
from musicbox.events import DeadLetter
from musicbox.rawlogs.names import TYPE_ORDER
from musicbox.rawlogs.quality import TRUNCATED_MIN_ROWS, QualityReport, quality_report
from musicbox.rawlogs.read import group_by_day, iter_day, select_logs
from musicbox.rawlogs.stats import ReadStats
from musicbox.settings import Settings

_PROGRESS_EVERY = 20_000  # lines between progress refreshes: cheap next to parsing them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logs", type=Path, required=True, help="folder of YYYYMMDD_<k>_<type>.log[.gz|.tar.gz]"
    )
    parser.add_argument("--from", dest="from_day", type=iso_day, help="first day to read (YYYY-MM-DD)")
    parser.add_argument("--to", dest="to_day", type=iso_day, help="last day to read (YYYY-MM-DD), inclusive")
    parser.add_argument(
        "--dead-letters",
        type=Path,
        metavar="FILE.jsonl",
        help="also write every dead letter here, one JSON a line",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    stats = ReadStats()
    days = group_by_day(select_logs(args.logs, args.from_day, args.to_day, stats))
    console = Console()
    started_s = time.monotonic()
    with ExitStack() as stack:
        dead_out = None
        if args.dead_letters is not None:
            args.dead_letters.parent.mkdir(parents=True, exist_ok=True)
            dead_out = stack.enter_context(open(args.dead_letters, "wb"))
        progress = stack.enter_context(_progress(Console(stderr=True)))
        task = progress.add_task("reading", total=len(days), lines=0)
        lines = 0
        for day, logs in days:
            progress.update(task, description=day.isoformat())
            for item in iter_day(logs, stats):
                lines += 1
                if dead_out is not None and isinstance(item, DeadLetter):
                    dead_out.write(item.to_json() + b"\n")
                if lines % _PROGRESS_EVERY == 0:
                    progress.update(task, lines=lines)
            progress.update(task, advance=1, lines=lines)
    elapsed_s = time.monotonic() - started_s
    report = quality_report(stats.fingerprints())
    console.print(summary_table(stats))
    console.print(quality_table(report))
    for warning in report.warnings:
        console.print(
            Text(f"warning {warning.date} {warning.file_type}: {warning.message}", style="bold yellow")
        )
    if report.not_judged_for_truncation:
        console.print(Text(not_judged_line(report), style="dim"), soft_wrap=True)
    for skipped in stats.skipped:
        console.print(Text(f"skipped {skipped.path}: {skipped.reason}", style="dim"), soft_wrap=True)
    rate = stats.lines / elapsed_s if elapsed_s > 0 else 0.0
    console.print(
        f"Read {stats.lines:,} lines = {stats.events:,} events + {stats.dead_letters:,} dead letters "
        f"from {len(stats.files)} files over {len(days)} days in {elapsed_s:.1f} s ({rate:,.0f} lines/s); "
        f"data-quality warnings: {len(report.warnings)}."
        + (f" Dead letters written to {args.dead_letters}." if args.dead_letters else ""),
        soft_wrap=True,
    )
    return 0


def summary_table(stats: ReadStats) -> Table:
    """lines = events + dead letters, with the breakdowns (indented rows) under each total."""
    table = Table(title="What the logs hold", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, count in stats.summary_rows():
        table.add_row(Text(label, style="" if label.startswith(" ") else "bold"), f"{count:,}")
    return table


def quality_table(report: QualityReport) -> Table:
    """One row per day, one cell per type: shards, rows, (dead letters); a cell with a warning in colour."""
    types = sorted({row.file_type for row in report.rows}, key=TYPE_ORDER.__getitem__)
    table = Table(title="Data quality by day: shards present, rows, (dead letters)")
    table.add_column("day", no_wrap=True)
    for file_type in types:
        table.add_column(file_type, justify="right", no_wrap=True)
    cells = {(row.date, row.file_type): row for row in report.rows}
    for day in sorted({row.date for row in report.rows}):
        values: list[Text] = [Text(day.isoformat())]
        for file_type in types:
            row = cells[(day, file_type)]
            shards = ",".join(map(str, row.shards)) or "none"
            text = f"[{shards}] {row.rows:,} ({row.dead_letters:,})"
            values.append(Text(text, style="bold yellow" if row.warnings else ""))
        table.add_row(*values)
    return table


def not_judged_line(report: QualityReport) -> str:
    """Which shards the truncation check left alone, and why: a blind spot said out loud."""
    by_type: dict[str, list[str]] = {}
    for file_type, shard in report.not_judged_for_truncation:
        by_type.setdefault(file_type, []).append(str(shard))
    shards = "; ".join(f"{file_type} {', '.join(shards)}" for file_type, shards in by_type.items())
    return (
        f"truncation not judged for shards ({shards}) whose median day holds under "
        f"{TRUNCATED_MIN_ROWS:,} rows: at that size a few heavy users make most of a shard, "
        "so a quiet day and a cut file look alike"
    )


class _LinesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        lines = task.fields.get("lines", 0)
        elapsed_s = task.elapsed or 0.0
        rate = lines / elapsed_s if elapsed_s > 0 else 0.0
        return Text(f"{lines:,} lines, {rate:,.0f} lines/s")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        _LinesPerSecond(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
