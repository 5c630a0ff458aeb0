"""The demo's summary, pure: the counts, parity and reconciliation a run produced, and its verdict.

`summarize` turns what the run gathered (`RunFacts`: records read back from the topics, the
replays' summaries, parity's `DayParity` results, registry reads) into numbers; `problems`
names every broken invariant, and the demo exits 1 when there is one. The same summary is
printed and written to `summary.json` beside the demo's logs, for tests and scripts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batch.parity import DayParity
from demo.memory import peaks
from demo.processes import Kept
from demo.reconcile import ParityTotals, parity_totals, reconcile
from demo.records import FeatureKey, Recommended, ScoreKey
from demo.stages import Span, StageFacts, stages
from demo.timeline import Sample
from models.metadata import ModelMetadata
from musicbox.replay_summary import ReplaySummary
from streaming.scoring.quality import live_vs_offline

Record = Mapping[str, Any]


@dataclass(frozen=True)
class RunFacts:
    """What a run gathered for its summary; no judgement yet."""

    logs: Path
    users: int
    days: list[str]  # the data set's days, in order
    replays: dict[str, ReplaySummary]  # by process name, in the order they ran
    parity: list[DayParity]
    features: Sequence[FeatureKey]
    scores: Sequence[ScoreKey]
    recommendations: Sequence[Recommended]
    quality: Sequence[Record]
    dead_letters: Sequence[str]  # the reason of each
    first_models: dict[str, str | None]  # kind -> version served when the stream started
    served_models: dict[str, str | None]  # kind -> version served at the end
    offline_tests: dict[str, tuple[str, float]]  # churn version -> (test as-of day, ROC AUC)
    report: str | None
    timings_s: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    profile: str = "demo"
    lines_by_day: dict[str, int] = field(default_factory=dict)  # the generator's manifest
    generated: bool = True  # False: the data set came from the cache
    spans_s: dict[str, Span] = field(default_factory=dict)  # process -> (start, end) since the start
    train_until: str = ""
    retrain_until: str = ""
    train_rows: dict[str, int | None] = field(default_factory=dict)  # "train" / "retrain"
    stream_rows: int | None = None  # the stream job's own count (its state store)
    score_markers: Sequence[Record] = ()
    partitions: int = 0  # of the scores topic
    samples: Sequence[Sample] = ()
    timeline_png: str | None = None
    worker_done_s: float | None = None  # when the demo saw the last day scored and recommended


@dataclass(frozen=True)
class LeftRunning:
    """What `--keep-running` left running, and how to stop it."""

    processes: list[Kept] = field(default_factory=list)
    stack: bool = False  # the demo started Kafka and Prometheus and left them up

    def how_to_stop(self) -> list[str]:
        lines = []
        if self.processes:
            pids = " ".join(str(k.pid) for k in self.processes)
            names = ", ".join(k.name for k in self.processes)
            lines.append(f"kill {pids}   ({names}; the next `musicbox demo` stops them too)")
        if self.stack:
            lines.append("musicbox down   (Kafka and Prometheus)")
        return lines


@dataclass(frozen=True)
class DemoSummary:
    logs: str
    users: int
    days: int
    first_day: str
    last_day: str
    replays: dict[str, dict[str, Any]]  # ReplaySummary.to_dict() by process name
    dead_letters_by_reason: dict[str, int]  # on the dead-letter topic: the replay's and the stream's
    feature_rows: int
    feature_keys: int  # distinct (uid, as_of): a republished row counts once
    feature_days: int
    parity: ParityTotals
    scores: int
    scores_by_version: dict[str, int]
    recommendations: int
    recommendations_by_source: dict[str, int]
    first_models: dict[str, str | None]
    served_models: dict[str, str | None]
    hot_reloaded: bool  # a new churn model was served, and scores carry both versions
    live_roc_auc: dict[str, float] | None  # mean, min, max over (day, model) pairs, and how many
    same_day: list[dict[str, Any]]  # each model's live AUC on its offline test day beside that test
    offline_test: dict[str, Any] | None  # the served churn model's offline test
    report: str | None
    timings_s: dict[str, float]
    elapsed_s: float
    left_running: LeftRunning
    profile: str
    stages: list[dict[str, Any]]  # Stage.to_dict(), in the order they ran
    reconciliation: list[dict[str, Any]]  # Check.to_dict(): name, ok, detail
    memory: dict[str, Any]  # MemoryPeaks.to_dict()
    timeline: str | None  # the PNG
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def offline_tests(metadata: Iterable[ModelMetadata]) -> dict[str, tuple[str, float]]:
    """Every churn model's offline test, from its registry metadata: version -> (day, ROC AUC)."""
    out = {}
    for meta in metadata:
        auc = meta.metrics.get("roc_auc")
        if isinstance(auc, int | float):
            out[meta.version] = (str(meta.metrics.get("test_as_of")), float(auc))
    return out


def training_rows(meta: ModelMetadata) -> int | None:
    """The training rows of a churn model, from its metadata (the split it was chosen on)."""
    splits = meta.metrics.get("splits")
    setup = meta.metrics.get("setup")
    if not isinstance(splits, dict) or not isinstance(splits.get(setup), dict):
        return None
    rows = splits[setup].get("train_rows")
    return int(rows) if isinstance(rows, int) else None


def stage_facts(facts: RunFacts, parity: ParityTotals) -> StageFacts:
    events: Counter[str] = Counter()
    for r in facts.replays.values():
        events.update(r.events_by_type)
    return StageFacts(
        lines_by_day=facts.lines_by_day,
        generated=facts.generated,
        spans_s=facts.spans_s,
        train_until=facts.train_until,
        retrain_until=facts.retrain_until,
        train_rows=facts.train_rows,
        replays=facts.replays,
        events_by_type=dict(events),
        feature_rows=len({(f.uid, f.as_of) for f in facts.features}),
        scores=len(facts.scores),
        recommendations=len(facts.recommendations),
        parity_rows=parity.matched,
        samples=facts.samples,
        worker_done_s=facts.worker_done_s,
    )


def summarize(facts: RunFacts, left_running: LeftRunning) -> DemoSummary:
    parity = parity_totals(facts.parity)
    versions = Counter(s.model_version for s in facts.scores)
    checks = reconcile(
        facts.replays,
        parity,
        facts.features,
        facts.stream_rows,
        facts.scores,
        facts.score_markers,
        facts.partitions,
        facts.recommendations,
    )
    live = [float(q["roc_auc"]) for q in facts.quality if isinstance(q.get("roc_auc"), int | float)]
    served_churn = facts.served_models.get("churn")
    test = facts.offline_tests.get(served_churn) if served_churn else None
    return DemoSummary(
        logs=str(facts.logs),
        users=facts.users,
        days=len(facts.days),
        first_day=facts.days[0] if facts.days else "",
        last_day=facts.days[-1] if facts.days else "",
        replays={name: r.to_dict() for name, r in facts.replays.items()},
        dead_letters_by_reason=dict(Counter(facts.dead_letters).most_common()),
        feature_rows=len(facts.features),
        feature_keys=len({(f.uid, f.as_of) for f in facts.features}),
        feature_days=len({f.as_of for f in facts.features}),
        parity=parity,
        scores=len(facts.scores),
        scores_by_version=dict(sorted(versions.items())),
        recommendations=len(facts.recommendations),
        recommendations_by_source=dict(Counter(r.source for r in facts.recommendations)),
        first_models=dict(facts.first_models),
        served_models=dict(facts.served_models),
        hot_reloaded=served_churn != facts.first_models.get("churn") and len(versions) > 1,
        live_roc_auc=(
            {"mean": sum(live) / len(live), "min": min(live), "max": max(live), "pairs": len(live)}
            if live
            else None
        ),
        same_day=[
            {**asdict(pair), "gap": pair.live - pair.offline}
            for pair in live_vs_offline(facts.quality, facts.offline_tests)
        ],
        offline_test=(
            {"version": served_churn, "as_of": test[0], "roc_auc": test[1]} if test is not None else None
        ),
        report=facts.report,
        timings_s=dict(facts.timings_s),
        elapsed_s=facts.elapsed_s,
        left_running=left_running,
        profile=facts.profile,
        stages=[stage.to_dict() for stage in stages(stage_facts(facts, parity))],
        reconciliation=[c.to_dict() for c in checks],
        memory=peaks((s.t_s, s.rss_bytes) for s in facts.samples).to_dict(),
        timeline=facts.timeline_png,
        problems=[f"{c.name}: {c.detail}" for c in checks if not c.ok],
    )
