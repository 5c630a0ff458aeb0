"""Live model quality: how good were the scores issued, once their 14-day labels are known.

Labels come from the feature rows themselves: user u is active on day D' when its feature row
of D' counts an event of that day (plays_1d + downloads_1d + searches_1d > 0); a score of
(u, D) is a churn when u is active on none of D+1..D+label_window_d (DESIGN 5's label). A user
without a feature row on D' did nothing that day.

"All rows of day X have arrived" is known per partition from `computed_at_ms`: the streaming
job publishes each micro-batch's closed days in one write, stamped with one computed_at_ms, and
starts a write only after the previous one ended. So once a row with a later computed_at_ms
arrives on a partition, every row of the earlier writes is in that partition before it. A
worker resolves as-of day D when that holds for D + label_window_d on every partition it reads.

State, in a changelog-backed store co-partitioned with the feature topic (keys):
- `s|<as_of>|<partition>|<offset>`: a batch's scores {v: version, t: threshold, u: uids, p: probs};
- `a|<day>|<partition>|<offset>`: the uids active on that day, from the same batch;
- `c|<partition>`: {c: latest computed_at_ms, days: its as-of days, through: last complete day}.
A resolved day's entries are deleted. A re-read batch (restart) may store a user twice; the
later score wins. With several workers, each reports on the users of its own partitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from streaming.scoring.messages import finite_or_none
from streaming.scoring.state import PartitionedStore


def plus_days(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


@dataclass(frozen=True)
class QualityReport:
    """One `musicbox.model-quality` value: the scores of one model on one as-of day."""

    as_of: str
    model_version: str
    users: int
    roc_auc: float | None  # None when every user churned, or none did
    precision: float | None  # None when no user was flagged
    recall: float | None  # None when no user churned
    threshold: float
    churn_rate: float

    def value(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(as_of: str, version: str, threshold: float, y: np.ndarray, p: np.ndarray) -> QualityReport:
    """ROC AUC from probabilities; precision and recall of the decisions at the served threshold."""
    flagged = p >= threshold
    hits = int(np.sum(flagged & (y == 1)))
    positives = int(np.sum(y == 1))
    auc = float(roc_auc_score(y, p)) if 0 < positives < len(y) else None
    return QualityReport(
        as_of=as_of,
        model_version=version,
        users=len(y),
        roc_auc=finite_or_none(auc),
        precision=hits / int(flagged.sum()) if flagged.any() else None,
        recall=hits / positives if positives else None,
        threshold=threshold,
        churn_rate=positives / len(y) if len(y) else 0.0,
    )


@dataclass(frozen=True)
class SameDay:
    """A model's live ROC AUC on the day its offline test was taken, beside that test's."""

    model_version: str
    as_of: str
    live: float
    offline: float


def live_vs_offline(
    reports: Iterable[Mapping[str, Any]], tests: Mapping[str, tuple[str, float]]
) -> list[SameDay]:
    """Pairs each model's offline test (version -> (test as-of day, ROC AUC)) with the live report
    of the same model on the same as-of day, where there is one. Live and offline scores of one
    day are the same rows (the parity check), so the two should agree but for train/serve skew;
    averages over other days need not (their users and churn rates differ)."""
    out = []
    for report in reports:
        version, live = report.get("model_version"), report.get("roc_auc")
        if not isinstance(version, str) or version not in tests or not isinstance(live, int | float):
            continue
        test_day, offline = tests[version]
        if report.get("as_of") == test_day:
            out.append(SameDay(version, test_day, float(live), float(offline)))
    return sorted(out, key=lambda pair: (pair.as_of, pair.model_version))


@dataclass(frozen=True)
class Resolution:
    reports: list[QualityReport]
    stale: list[tuple[int, str]]  # (partition, key) of the state the reports used up


class LiveQuality:
    def __init__(self, store: PartitionedStore, label_window_d: int) -> None:
        self.store = store
        self.label_window_d = label_window_d

    def _settled(self, as_of: str) -> bool:
        """True when as_of's label window is complete already: its activity may be dropped,
        so scores of it read again now (a restart re-reading old rows) cannot be judged."""
        through = self.complete_through()
        return through is not None and plus_days(as_of, self.label_window_d) <= through

    def record_scores(
        self,
        partition: int,
        offset: int,
        as_of: str,
        version: str,
        threshold: float,
        uids: Sequence[int],
        probabilities: Sequence[float],
    ) -> None:
        if self._settled(as_of):
            return
        value = {
            "v": version,
            "t": threshold,
            "u": list(uids),
            "p": np.round(np.asarray(probabilities, dtype=np.float64), 6).tolist(),
        }
        self.store.put(partition, f"s|{as_of}|{partition}|{offset}", value)

    def record_active(self, partition: int, offset: int, day: str, uids: Sequence[int]) -> None:
        if self._settled(plus_days(day, -1)):  # no label window that is still open contains it
            return
        self.store.put(partition, f"a|{day}|{partition}|{offset}", list(uids))

    def observe_writes(self, partition: int, marks: Sequence[tuple[int, str]]) -> None:
        """Fold in (computed_at_ms, as_of) of a partition's rows, in offset order."""
        key = f"c|{partition}"
        state = self.store.get(key) or {"c": -1, "days": [], "through": None}
        latest, days, through = state["c"], set(state["days"]), state["through"]
        for computed_at_ms, as_of in marks:
            if computed_at_ms > latest:
                if days:
                    through = max(through or "", max(days))
                latest, days = computed_at_ms, {as_of}
            elif computed_at_ms == latest:
                days.add(as_of)
            # an earlier stamp: a re-published write, already counted
        new = {"c": latest, "days": sorted(days), "through": through}
        if new != state:
            self.store.put(partition, key, new)

    def complete_through(self) -> str | None:
        """The last day whose rows have all arrived on every partition seen, or None."""
        marks = [v["through"] for k, v in self.store.items() if k.startswith("c|")]
        if not marks or any(m is None for m in marks):
            return None
        return min(marks)

    def resolve(self) -> Resolution:
        """Reports for every as-of day whose label window is complete, and the state they make
        obsolete: publish the reports, then `forget(resolution)` (a crash in between repeats them)."""
        through = self.complete_through()
        if through is None:
            return Resolution([], [])
        last_as_of = plus_days(through, -self.label_window_d)
        last_active = plus_days(last_as_of, 1)  # active days up to here serve no open label window
        scores: dict[str, list[tuple[tuple[int, int], str, dict[str, Any]]]] = defaultdict(list)
        stale: list[tuple[int, str]] = []
        active_keys: list[tuple[str, str]] = []
        for key, value in self.store.items():
            kind, day, *where = key.split("|")
            if kind == "s" and day <= last_as_of:
                scores[day].append(((int(where[0]), int(where[1])), key, value))
                stale.append((int(where[0]), key))
            elif kind == "a":
                active_keys.append((day, key))
                if day <= last_active:
                    stale.append((int(where[0]), key))
        if not scores:  # the common case, once per batch: no need to gather who was active
            return Resolution([], stale)
        active: dict[str, set[int]] = defaultdict(set)
        for day, key in active_keys:
            active[day].update(self.store.get(key) or [])
        reports = []
        for as_of in sorted(scores):
            reports += self._reports(as_of, sorted(scores[as_of], key=lambda s: s[0]), active)
        return Resolution(reports, stale)

    def forget(self, resolution: Resolution) -> None:
        for partition, key in resolution.stale:
            self.store.delete(partition, key)

    def _reports(
        self,
        as_of: str,
        chunks: list[tuple[tuple[int, int], str, dict[str, Any]]],
        active: dict[str, set[int]],
    ) -> list[QualityReport]:
        latest: dict[int, tuple[float, str, float]] = {}
        for _, _, chunk in chunks:  # in (partition, offset) order: a re-scored user keeps its later score
            for uid, p in zip(chunk["u"], chunk["p"], strict=True):
                latest[uid] = (p, chunk["v"], chunk["t"])
        later: set[int] = set()
        for n in range(1, self.label_window_d + 1):
            later |= active.get(plus_days(as_of, n), set())
        by_version: dict[tuple[str, float], list[tuple[int, float]]] = defaultdict(list)
        for uid, (p, version, threshold) in latest.items():
            by_version[(version, threshold)].append((int(uid not in later), p))
        out = []
        for (version, threshold), pairs in sorted(by_version.items()):
            y = np.array([label for label, _ in pairs], dtype=np.int64)
            p = np.array([prob for _, prob in pairs], dtype=np.float64)
            out.append(evaluate(as_of, version, threshold, y, p))
        return out
