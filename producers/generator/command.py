"""`musicbox generate`: synthetic logs in the real raw format, with progress and a summary table."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from musicbox.cli_args import iso_day
from musicbox.profiles import DEFAULT_PROFILE, PROFILES, STUDY_START
from musicbox.settings import Settings
from producers.generator.dirt import ALL_CLASSES, parse_classes
from producers.generator.errors import GeneratorError
from producers.generator.generate import DayDone, GeneratorConfig, generate
from producers.generator.profiles import Targets
from producers.generator.stats import GenerationStats
from producers.generator.writer import COMPRESSIONS

MAY_FIRST = date(2017, 5, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="named size: demo (3,000 users), study-sample (64,746), full (600,000); "
        "44 days from 2017-03-30 (default: %(default)s); the flags below override it",
    )
    parser.add_argument("--users", type=int, help="number of users, bots included")
    parser.add_argument("--days", type=int, help="number of days")
    parser.add_argument("--start", type=iso_day, help="first day, YYYY-MM-DD")
    parser.add_argument(
        "--seed", type=int, default=42, help="same seed and arguments -> same bytes (default: 42)"
    )
    parser.add_argument("--out", type=Path, help="output directory (default: var/logs/<profile>)")
    parser.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default="gz",
        help="none, gz, or tar.gz (a tarball holding one .log, as the real dumps) (default: gz)",
    )
    parser.add_argument(
        "--dirt",
        default="all",
        metavar="CLASSES",
        help=f"comma-separated dirt classes to inject, or all / none; classes: {', '.join(ALL_CLASSES)}",
    )
    parser.add_argument("--no-dirt", action="store_true", help="clean data: same as --dirt none")
    parser.add_argument(
        "--bot-share", type=float, default=0.01, help="share of users that are bots (default: 0.01)"
    )
    parser.add_argument("--force", action="store_true", help="replace log files already in --out")


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    profile = PROFILES[args.profile]
    return GeneratorConfig(
        users=args.users if args.users is not None else profile.users,
        days=args.days if args.days is not None else profile.days,
        start=args.start or profile.start,
        seed=args.seed,
        compression=args.compression,
        dirt=frozenset() if args.no_dirt else parse_classes(args.dirt),
        bot_share=args.bot_share,
    )


def summary_table(stats: GenerationStats, config: GeneratorConfig) -> Table:
    table = Table(title="generated data beside the study (volumes scaled to the number of users)")
    for name, justify in (("figure", "left"), ("generated", "right"), ("study", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    may = (MAY_FIRST - config.start).days if config.start == STUDY_START else None
    for row in stats.summary_rows(Targets.for_users(config.users), may):
        table.add_row(row.figure, row.generated, row.study)
    return table


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = config_from_args(args)
    out: Path = args.out or settings.var_dir / "logs" / args.profile
    # Wide enough for the summary table when the output goes to a file or a CI log.
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    console.print(
        f"generating {config.users:,} users x {config.days} days from {config.start} "
        f"(seed {config.seed}) into {out}"
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[lines]:>12,} lines  {task.fields[rate]:>9,.0f} lines/s"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("days", total=config.days, lines=0, rate=0.0)

        def on_day(done: DayDone) -> None:
            progress.update(
                task,
                completed=done.index + 1,
                description=str(done.day),
                lines=done.lines,
                rate=done.lines / max(done.elapsed_s, 1e-9),
            )

        try:
            stats = generate(config, out, force=args.force, on_day=on_day)
        except OSError as exc:
            raise GeneratorError(f"cannot write into {out}: {exc}") from exc
    console.print(summary_table(stats, config))
    on_disk = sum((out / f.name).stat().st_size for f in stats.files)
    copies = [f.name for f in stats.files if f.copy_of]
    console.print(
        f"{len(stats.files)} files ({on_disk / 1e6:,.1f} MB on disk, {stats.lines:,} lines), "
        f"{stats.unwritten['missing_shard']:,} generated lines lost to missing shards, "
        f"{len(copies)} near-copy files; manifest: {out / 'manifest.json'}"
    )
    console.print(
        f"done in {stats.elapsed_s:,.1f} s: {stats.lines / max(stats.elapsed_s, 1e-9):,.0f} lines/s"
    )
    return 0
