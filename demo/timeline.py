"""The demo's timeline: every second or so, how far each stage has got and how much memory every
process holds, sampled on a thread beside the run.

A sample is cheap on purpose (the stack needs both cores): one walk over /proc, two small HTTP
reads of metrics endpoints while the replay and the worker run, one JSON file of the stream job's
state store and a listing of the feature log. The pure parts: `metric_total` (a series from
Prometheus text) and `caught_up_s` (a stage's seconds, from the samples).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

REPLAY_LINES = "replay lines"  # lines acknowledged by Kafka: events + dead letters
FEATURE_ROWS = "feature rows"  # the stream job's, from its state store
DAYS_CLOSED = "days closed"  # days in the feature log
SCORES = "scores"  # published by the worker (its metrics)
RECOMMENDATIONS = "recommendations"
SERIES = (REPLAY_LINES, FEATURE_ROWS, DAYS_CLOSED, SCORES, RECOMMENDATIONS)


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the demo started
    progress: dict[str, int]  # series -> done so far
    rss_bytes: dict[str, int]  # process name -> resident bytes, children included

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 2), "progress": self.progress, "rss_bytes": self.rss_bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(float(data["t_s"]), dict(data["progress"]), dict(data["rss_bytes"]))


def metric_total(text: str, name: str) -> float | None:
    """The sum of every sample of `name` (all label sets) in a Prometheus text exposition, or
    None when there is none (`musicbox_x_total` for a counter `musicbox_x`)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] == name:
            total, found = total + float(value), True
    return total if found else None


def caught_up_s(
    samples: Sequence[Sample], series: str, windows: Sequence[tuple[float, float]]
) -> float | None:
    """A stage's seconds beside the replay: in each window (a replay part and what follows it),
    from its start to the last sample in it where `series` grew, summed over the windows; None
    when it never grew. So a stage waiting for the replay counts as busy, and its rate is never
    above its input's: the time the rows took to be done, from when their input started."""
    total, grew = 0.0, False
    for start, end in windows:
        last: float | None = None
        before: int | None = None
        for s in samples:
            value = s.progress.get(series, 0)
            if start <= s.t_s <= end and before is not None and value > before:
                last = s.t_s
            before = value
        if last is not None:
            total, grew = total + last - start, True
    return total if grew else None


@dataclass
class Sampler:
    """Calls `read_progress` and `read_memory` every `interval_s` on a thread of its own."""

    read_progress: Callable[[], dict[str, int]]
    read_memory: Callable[[], dict[str, int]]
    started: float  # the demo's start on `clock`
    interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def tick(self) -> Sample:
        sample = Sample(self.clock() - self.started, self.read_progress(), self.read_memory())
        self.samples.append(sample)
        return sample

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="demo-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.samples

    def _loop(self) -> None:
        failed = False
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a sample lost is no reason to lose the run
                if not failed:
                    log.exception("the demo's sampler failed once; it goes on")
                failed = True
            self._stop.wait(self.interval_s)
