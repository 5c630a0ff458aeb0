"""What the training commands share besides their options (batch.options): a lazily built
SparkSession and the printed promotion table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console

from batch.promotion import SUMMARY_COLUMNS, PromotionDecision, summary_row
from batch.report_tables import rich_table
from musicbox.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
