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
from demo.processes import Kept
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
    features: Sequence[Record]
    scores: Sequence[Record]
    recommendations: Sequence[Record]
    quality: Sequence[Record]
    dead_letters: Sequence[Record]
    first_models: dict[str, str | None]  # kind -> version served when the stream started
    served_models: dict[str, str | None]  # kind -> version served at the end
    offline_tests: dict[str, tuple[str, float]]  # churn version -> (test as-of day, ROC AUC)
    report: str | None
    timings_s: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class ParityTotals:
    days: int
    matched: int
    differing: int
    missing: int
    extra: int
    duplicate: int
    days_differing: list[str]

    @property
    def ok(self) -> bool:
        return self.days > 0 and not self.days_differing


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
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def parity_totals(results: Sequence[DayParity]) -> ParityTotals:
    return ParityTotals(
        days=len(results),
        matched=sum(r.matched for r in results),
        differing=sum(r.differing for r in results),
        missing=sum(r.missing for r in results),
        extra=sum(r.extra for r in results),
        duplicate=sum(r.duplicate for r in results),
        days_differing=[r.as_of.isoformat() for r in results if not r.ok],
    )


def offline_tests(metadata: Iterable[ModelMetadata]) -> dict[str, tuple[str, float]]:
    """Every churn model's offline test, from its registry metadata: version -> (day, ROC AUC)."""
    out = {}
    for meta in metadata:
        auc = meta.metrics.get("roc_auc")
        if isinstance(auc, int | float):
            out[meta.version] = (str(meta.metrics.get("test_as_of")), float(auc))
    return out


def problems(replays: Mapping[str, ReplaySummary], parity: ParityTotals) -> list[str]:
    """Every invariant the run broke, in words; none for a good run."""
    found = [
        f"replay {name}: lines read {r.lines:,} != events {r.events:,} + dead letters "
        f"{r.dead_letters:,} + already in Kafka {r.already_in_kafka:,}"
        for name, r in replays.items()
        if not r.reconciles
    ]
    if parity.days == 0:
        found.append("parity: the feature log has no closed day to check")
    elif parity.days_differing:
        found.append(
            f"parity: {len(parity.days_differing)} of {parity.days} days differ (differing "
            f"{parity.differing:,}, missing {parity.missing:,}, extra {parity.extra:,}, "
            f"duplicate {parity.duplicate:,}; first {parity.days_differing[0]})"
        )
    return found


def summarize(facts: RunFacts, left_running: LeftRunning) -> DemoSummary:
    parity = parity_totals(facts.parity)
    versions = Counter(str(s["model_version"]) for s in facts.scores)
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
        dead_letters_by_reason=dict(Counter(str(d.get("reason")) for d in facts.dead_letters).most_common()),
        feature_rows=len(facts.features),
        feature_keys=len({(f["uid"], f["as_of"]) for f in facts.features}),
        feature_days=len({f["as_of"] for f in facts.features}),
        parity=parity,
        scores=len(facts.scores),
        scores_by_version=dict(sorted(versions.items())),
        recommendations=len(facts.recommendations),
        recommendations_by_source=dict(Counter(str(r.get("source")) for r in facts.recommendations)),
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
        problems=problems(facts.replays, parity),
    )
