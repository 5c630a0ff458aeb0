"""What the demo's sampler reads, from what the processes report: the replay's and the worker's
metrics endpoints while they run, each replay's summary JSON once it has ended, the stream job's
state store (through its API) and feature log, and /proc for memory."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from demo.memory import read_table, usage_by_root
from demo.processes import Processes
from demo.timeline import (
    DAYS_CLOSED,
    FEATURE_ROWS,
    RECOMMENDATIONS,
    REPLAY_LINES,
    SCORES,
    metric_total,
)
from musicbox.replay_summary import ReplaySummary, ReplaySummaryError
from musicbox.settings import Settings
from streaming.aggregates.outputs import FeatureLog
from streaming.aggregates.store import StateStore


def fetch_metrics(url: str) -> str | None:
    """A metrics endpoint's text, or None when nothing answers (not started, or ended)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return str(response.read().decode())
    except OSError:
        return None


@dataclass
class StackProbe:
    """Reads the run's progress and memory; keeps the last value of what it could not read now
    (a replay that has ended takes its endpoint with it; a state file replaced while read)."""

    settings: Settings
    procs: Processes
    replay_summary: Callable[[str], Path]  # replay process name -> its --summary-json file
    stack_pids: dict[str, int]  # broker, Prometheus
    replays: tuple[str, ...] = ("replay", "replay-rest")
    proc: Path = Path("/proc")
    fetch: Callable[[str], str | None] = fetch_metrics
    _last: dict[str, int] = field(default_factory=dict)
    _replay_lines: dict[str, int] = field(default_factory=dict)

    def memory(self) -> dict[str, int]:
        roots = {"demo": os.getpid(), **self.stack_pids, **self.procs.running()}
        return usage_by_root(read_table(self.proc), roots)

    def progress(self) -> dict[str, int]:
        running = self.procs.running()
        self._replay(running)
        self._stream()
        if "worker" in running:
            self._worker()
        return dict(self._last)

    def _url(self, port: int) -> str:
        return f"http://{self.settings.metrics_host}:{port}/metrics"

    def _replay(self, running: dict[str, int]) -> None:
        for name in self.replays:
            if name in running:
                text = self.fetch(self._url(self.settings.replay_metrics_port))
                if text is not None:
                    events = metric_total(text, "musicbox_replay_events_total") or 0
                    dead = metric_total(text, "musicbox_replay_dead_letters_total") or 0
                    self._replay_lines[name] = int(events + dead)
            elif name in self.procs.spans:  # ended: its summary has the final count
                try:
                    summary = ReplaySummary.read(self.replay_summary(name))
                except ReplaySummaryError:
                    continue
                self._replay_lines[name] = summary.events + summary.dead_letters
        self._last[REPLAY_LINES] = sum(self._replay_lines.values())

    def _stream(self) -> None:
        try:
            progress = StateStore(self.settings.stream_dir).progress_before(sys.maxsize)
        except (OSError, ValueError, KeyError):  # a progress file replaced while listed
            return
        self._last[FEATURE_ROWS] = progress.feature_rows
        self._last[DAYS_CLOSED] = len(FeatureLog(self.settings.feature_log_dir).days())

    def _worker(self) -> None:
        text = self.fetch(self._url(self.settings.worker_metrics_port))
        if text is None:
            return
        for series, metric in ((SCORES, "musicbox_worker_scores_total"),
                               (RECOMMENDATIONS, "musicbox_worker_recommendations_total")):  # fmt: skip
            value = metric_total(text, metric)
            if value is not None:
                self._last[series] = int(value)
