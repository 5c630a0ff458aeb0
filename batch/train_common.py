"""What the training commands share: option types, the promotion options, a lazily built
SparkSession, and the printed promotion table."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console

from batch.promotion import DEFAULT_TOLERANCE, MODES, SUMMARY_COLUMNS, PromotionDecision, summary_row
from batch.report_tables import rich_table
from musicbox.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def percent(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole percentage in 1..100")
    return int(text)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def name_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An option type for a comma-separated subset of `allowed` ("none" for the empty list)."""

    def parse(text: str) -> tuple[str, ...]:
        if text.strip().lower() == "none":
            return ()
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}: choose from {', '.join(allowed)}")
        return names

    return parse


def add_promotion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote",
        choices=MODES,
        default="auto",
        help="auto: serve the new model unless the served one, scored on the same test data, is "
        "better by more than --tolerance; always / never override the comparison (default: auto)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"how much worse the new model may score and still be served (default: {DEFAULT_TOLERANCE})",
    )


@dataclass
class LazySpark:
    """Builds the SparkSession on first use only: a command that needs no Spark starts none."""

    settings: Settings
    app_name: str
    factory: Callable[[], SparkSession] | None = None
    _session: SparkSession | None = field(default=None, init=False)

    def __call__(self) -> SparkSession:
        if self._session is None:
            if self.factory is not None:
                self._session = self.factory()
            else:
                from musicbox.spark import build_spark

                self._session = build_spark(self.settings, self.app_name)
        return self._session


def summary_console() -> Console:
    """stdout at the terminal's width, or 140 columns in a pipe or log (rich's 80 would fold tables)."""
    console = Console()
    return console if console.is_terminal else Console(width=140)


def print_decisions(console: Console, decisions: Sequence[tuple[PromotionDecision, str]]) -> None:
    rows = [list(summary_row(d, version)) for d, version in decisions]
    console.print(rich_table((list(SUMMARY_COLUMNS), rows), "registry"))
