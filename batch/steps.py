"""Progress of a long batch command: one line when a step starts, one when it ends, with its time.

The trainers call `steps.step(...)` around each long piece of work; the durations are kept so
that the end-of-run summary (and the registry metadata) can say where the time went.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console


@dataclass
class Steps:
    """Prints progress to `console` (stderr by default) and records each step's duration."""

    console: Console = field(default_factory=lambda: Console(stderr=True))
    clock: Callable[[], float] = time.perf_counter
    durations_s: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        """Announce `name`, run the block, then print and record how long it took."""
        self.console.print(f"[bold]→[/bold] {name}{f' ({detail})' if detail else ''} ...")
        started = self.clock()
        yield
        elapsed_s = self.clock() - started
        self.durations_s[name] = self.durations_s.get(name, 0.0) + elapsed_s
        self.console.print(f"  [green]done[/green] {name} in {elapsed_s:.1f} s")

    def note(self, text: str) -> None:
        """A progress line inside a step (e.g. one model of several)."""
        self.console.print(f"    {text}")

    def reading_logs(self, day: str, events: int, dead_letters: int) -> None:
        """`batch.events_table`'s progress callback: one line a day of raw logs read."""
        self.note(f"logs read through {day}: {events:,} events, {dead_letters:,} rejected lines")


def quiet_steps() -> Steps:
    """Steps that print nothing (library use and tests that only want the durations)."""
    return Steps(console=Console(quiet=True))
