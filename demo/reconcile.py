"""The reconciliation of every count a run produced, each a pass/fail line; pure.

- each replay: lines read = events + dead letters (+ lines an earlier replay had committed);
- the stream: feature rows on the topic = the stream job's own count = parity's rows, and
  parity found no difference;
- the worker's churn side: every non-bot feature row scored exactly once (one score, one model
  version, per (uid, as_of); no bot scored), and each day's day-complete markers on every
  partition of the scores topic count that day's scores there;
- the worker's recommendation side: every user with a play or a download on a closed day has a
  recommendation stamped with that day or later.
A failed line makes the demo exit 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.parity import DayParity
from demo.records import FeatureKey, Recommended, ScoreKey
from musicbox.replay_summary import ReplaySummary

EXAMPLES = 3  # keys named in a failed line


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


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


def _some(keys: set[Any] | list[Any]) -> str:
    return ", ".join(str(tuple(k)) for k in sorted(keys)[:EXAMPLES])


def replay_checks(replays: Mapping[str, ReplaySummary]) -> list[Check]:
    out = []
    for name, r in replays.items():
        equation = (
            f"lines {r.lines:,} {'=' if r.reconciles else '!='} events {r.events:,} + dead letters "
            f"{r.dead_letters:,}"
            + (f" + already in Kafka {r.already_in_kafka:,}" if r.already_in_kafka else "")
        )
        out.append(Check(f"replay {name}", r.reconciles, equation))
    return out


def feature_check(features: Sequence[FeatureKey], stream_rows: int | None, parity: ParityTotals) -> Check:
    """Feature rows (distinct (uid, as_of) on the topic: a republished row counts once) = the
    stream job's own count = the rows parity matched, and parity found no difference."""
    keys = len({(f.uid, f.as_of) for f in features})
    counts = [keys, parity.matched] + ([stream_rows] if stream_rows is not None else [])
    same = len(set(counts)) == 1
    detail = (
        f"feature rows {keys:,}"
        + (f", stream's count {stream_rows:,}" if stream_rows is not None else "")
        + f", parity's rows {parity.matched:,} over {parity.days} days"
    )
    if parity.days == 0:
        return Check("feature rows = parity", False, f"{detail}: no closed day to check")
    if parity.days_differing:
        return Check(
            "feature rows = parity",
            False,
            f"{detail}: {len(parity.days_differing)} days differ (differing {parity.differing:,}, "
            f"missing {parity.missing:,}, extra {parity.extra:,}, duplicate {parity.duplicate:,}; "
            f"first {parity.days_differing[0]})",
        )
    return Check(
        "feature rows = parity", same, f"{detail}, zero differences" if same else f"{detail}: unequal"
    )


def scores_check(features: Sequence[FeatureKey], scores: Sequence[ScoreKey]) -> Check:
    """Every non-bot feature row scored, by one model version, and nothing else scored."""
    wanted = {(f.uid, f.as_of) for f in features if not f.is_bot}
    scored = Counter((uid, as_of) for uid, as_of, _ in {(s.uid, s.as_of, s.model_version) for s in scores})
    unscored = wanted - set(scored)
    extra = set(scored) - wanted
    twice = {k for k, n in scored.items() if n > 1}
    detail = f"{len(wanted):,} non-bot feature rows, {len(scored):,} scored ({len(scores):,} score records)"
    problems = []
    if unscored:
        problems.append(f"{len(unscored):,} not scored ({_some(unscored)})")
    if extra:
        problems.append(f"{len(extra):,} scored without a non-bot feature row ({_some(extra)})")
    if twice:
        problems.append(f"{len(twice):,} scored by two model versions ({_some(twice)})")
    ok = not problems
    return Check("every non-bot row scored once", ok, detail + ("" if ok else ": " + "; ".join(problems)))


def markers_check(
    features: Sequence[FeatureKey],
    scores: Sequence[ScoreKey],
    markers: Sequence[Mapping[str, Any]],
    partitions: int,
) -> Check:
    """Every day with non-bot feature rows has its marker on every partition of the scores
    topic, and each counts the distinct scores of its day on its partition."""
    days = sorted({f.as_of for f in features if not f.is_bot})
    scored_on = Counter((day, p) for day, p, _ in {(s.as_of, s.partition, s.uid) for s in scores})
    marked: dict[tuple[str, int], int] = {}
    for m in markers:
        marked[(str(m["as_of"]), int(m["partition"]))] = int(m["scored"])
    missing = [(day, p) for day in days for p in range(partitions) if (day, p) not in marked]
    wrong = [
        (day, p, marked[(day, p)], scored_on.get((day, p), 0))
        for day in days
        for p in range(partitions)
        if (day, p) in marked and marked[(day, p)] != scored_on.get((day, p), 0)
    ]
    detail = f"{len(days)} days x {partitions} partitions"
    problems = []
    if missing:
        problems.append(f"{len(missing)} without a marker ({_some(missing)})")
    if wrong:
        problems.append(
            f"{len(wrong)} count other than their scores ((day, partition, marker, scores): {_some(wrong)})"
        )
    ok = not problems
    return Check(
        "score markers count the scores",
        ok,
        f"{detail}: every marker there, each counting its scores"
        if ok
        else f"{detail}: " + "; ".join(problems),
    )


def recommendations_check(features: Sequence[FeatureKey], recommendations: Sequence[Recommended]) -> Check:
    """Every user with a play or download on a closed day (its feature row's 1-day counts, which
    parity holds equal to the logs) has a recommendation as of that day or later."""
    latest: dict[int, str] = {}
    for r in recommendations:
        if r.as_of > latest.get(r.uid, ""):
            latest[r.uid] = r.as_of
    active = {(f.uid, f.as_of) for f in features if f.active}
    lacking = {(uid, day) for uid, day in active if latest.get(uid, "") < day}
    detail = f"{len(active):,} active user-days, {len(latest):,} users recommended"
    if not active:
        return Check("every active user recommended", False, f"{detail}: no play or download in the features")
    if lacking:
        return Check(
            "every active user recommended",
            False,
            f"{detail}: {len(lacking):,} lack a recommendation as of that day or later ({_some(lacking)})",
        )
    return Check("every active user recommended", True, f"{detail}: each as of that day or later")


def reconcile(
    replays: Mapping[str, ReplaySummary],
    parity: ParityTotals,
    features: Sequence[FeatureKey],
    stream_rows: int | None,
    scores: Sequence[ScoreKey],
    score_markers: Sequence[Mapping[str, Any]],
    partitions: int,
    recommendations: Sequence[Recommended],
) -> list[Check]:
    return [
        *replay_checks(replays),
        feature_check(features, stream_rows, parity),
        scores_check(features, scores),
        markers_check(features, scores, score_markers, partitions),
        recommendations_check(features, recommendations),
    ]
