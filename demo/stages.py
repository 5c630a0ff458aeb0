"""The per-stage table of a run, pure: what each stage did (lines, events, rows), in how many
seconds, at what rate.

Counts come from what the processes reported (the generator's manifest, each replay's summary,
the stream job's state store, the topics read back, parity's results, the registry's metadata);
seconds from when each process ran, and, for the stages that run beside the replay (the stream
and the worker), from the timeline: from each replay part's start to the stage's last progress
in that part (`timeline.caught_up_s`), so their rate is what they did from when their input began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from demo.timeline import FEATURE_ROWS, RECOMMENDATIONS, SCORES, Sample, caught_up_s
from musicbox.replay_summary import ReplaySummary

Span = tuple[float, float]


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float | None  # None: did not run (a cached data set), or never progressed
    lines: int | None = None
    events: int | None = None
    rows: int | None = None
    rate_of: str = "lines"  # the count its rate is of: lines, events or rows
    note: str = ""

    @property
    def rate(self) -> float | None:
        count = {"lines": self.lines, "events": self.events, "rows": self.rows}[self.rate_of]
        if count is None or not self.seconds:
            return None
        return count / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate}


@dataclass(frozen=True)
class StageFacts:
    """What the table is built from."""

    lines_by_day: Mapping[str, int]  # the data set's lines per day (its manifest)
    generated: bool  # False: the data set came from the cache
    spans_s: Mapping[str, Span]  # process name -> (start, end), seconds since the demo started
    train_until: str  # last day of the first models' logs
    retrain_until: str  # last day of the retrain's logs
    train_rows: Mapping[str, int | None]  # "train" / "retrain" -> the churn model's training rows
    replays: Mapping[str, ReplaySummary]  # by process name, in the order they ran
    events_by_type: Mapping[str, int]  # every replay's events, added up
    feature_rows: int
    scores: int
    recommendations: int
    parity_rows: int
    samples: Sequence[Sample]
    worker_done_s: float | None = None  # when the last day was scored and recommended


def _seconds(spans: Mapping[str, Span], *names: str) -> float | None:
    found = [spans[n][1] - spans[n][0] for n in names if n in spans]
    return sum(found) if found else None


def _lines_through(lines_by_day: Mapping[str, int], last_day: str) -> int:
    return sum(n for day, n in lines_by_day.items() if day <= last_day)


def replay_windows(spans: Mapping[str, Span], replays: Sequence[str], end_s: float) -> list[Span]:
    """One window per replay part: from its start to the next part's start; the last to `end_s`
    (when the demo stopped waiting for the worker)."""
    starts = sorted(spans[name][0] for name in replays if name in spans)
    return list(zip(starts, [*starts[1:], end_s], strict=False))


def stages(f: StageFacts) -> list[Stage]:
    total_lines = sum(f.lines_by_day.values())
    end_s = f.worker_done_s if f.worker_done_s is not None else (f.samples[-1].t_s if f.samples else 0.0)
    windows = replay_windows(f.spans_s, list(f.replays), end_s)
    events = sum(f.events_by_type.values())
    plays_downloads = f.events_by_type.get("play", 0) + f.events_by_type.get("download", 0)
    out = [
        Stage(
            "generate",
            _seconds(f.spans_s, "generate") if f.generated else None,
            lines=total_lines,
            note="" if f.generated else "cached: generation skipped",
        ),
        Stage(
            "train (first models)",
            _seconds(f.spans_s, "train-churn", "train-als"),
            lines=_lines_through(f.lines_by_day, f.train_until),
            rows=f.train_rows.get("train"),
            note=f"logs through {f.train_until}; rows: the churn model's training rows",
        ),
    ]
    out += [
        Stage(f"replay ({name})", _seconds(f.spans_s, name), lines=r.lines, events=r.events)
        for name, r in f.replays.items()
    ]
    out += [
        Stage(
            "stream",
            caught_up_s(f.samples, FEATURE_ROWS, windows),
            events=events,
            rows=f.feature_rows,
            rate_of="events",
            note="events in, feature rows out; seconds beside the replay",
        ),
        Stage(
            "worker (scores)",
            caught_up_s(f.samples, SCORES, windows),
            rows=f.scores,
            rate_of="rows",
            note="seconds beside the replay",
        ),
        Stage(
            "worker (recommendations)",
            caught_up_s(f.samples, RECOMMENDATIONS, windows),
            events=plays_downloads,
            rows=f.recommendations,
            rate_of="events",
            note="play and download events in; seconds beside the replay",
        ),
        Stage(
            "retrain",
            _seconds(f.spans_s, "retrain"),
            lines=_lines_through(f.lines_by_day, f.retrain_until),
            rows=f.train_rows.get("retrain"),
            note=f"logs through {f.retrain_until} and the feature log",
        ),
        Stage("parity", _seconds(f.spans_s, "parity"), lines=total_lines, rows=f.parity_rows),
        Stage("report", _seconds(f.spans_s, "report"), lines=total_lines),
    ]
    return out
