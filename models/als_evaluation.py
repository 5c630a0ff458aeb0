"""ALS against the popularity baseline on a future window, per user segment, and grid selection.

Segments: `warm` users have training ratings (ALS serves them from their factors), `cold` users
have none (what they get is popularity; ALS has nothing to say about them). Hyperparameters
are chosen on a VALIDATION window by NDCG@10 of the warm users, never on the test window.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from models.als import DEFAULT_PARAMS, AlsModel, AlsParams, train_als
from models.errors import ModelInputError
from models.popularity import PopularityModel
from models.ranking_metrics import RankingMetrics, mean_metrics, relevant_items, user_auc

DEFAULT_GRID: dict[str, Sequence[Any]] = {
    "factors": (16, 64),
    "regularization": (0.1, 1.0),
    "alpha": (1.0, 10.0, 40.0),
    "iterations": (15,),
}
AUC_USERS = 1_000  # per-user AUC ranks the whole catalogue per user: a bounded, seeded sample


@dataclass(frozen=True)
class SegmentResult:
    segment: str  # "warm" | "cold"
    model: str  # "als" | "popularity"
    metrics: RankingMetrics


def _auc_sample(users: list[int], max_users: int, seed: int) -> list[int]:
    if len(users) <= max_users:
        return users
    return sorted(np.random.default_rng(seed).choice(users, size=max_users, replace=False).tolist())


def evaluate_recommenders(
    als: AlsModel,
    popularity: PopularityModel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    k: int = 10,
    exclude_seen: bool = True,
    auc_users: int = AUC_USERS,
    seed: int = 0,
) -> list[SegmentResult]:
    """@k metrics and per-user AUC of ALS and popularity for warm users, of popularity for cold ones."""
    relevant = relevant_items(train, test, exclude_seen)
    warm = sorted(u for u in relevant if als.knows(u))
    cold = sorted(u for u in relevant if not als.knows(u))
    seen = train.groupby("uid")["song_id"].agg(set) if exclude_seen else pd.Series(dtype=object)
    catalogue = als.item_ids
    popular_scores = popularity.item_scores(catalogue)

    def aucs(users: list[int], scores_of: Callable[[int], np.ndarray]) -> list[float]:
        out = []
        for u in _auc_sample(users, auc_users, seed):
            positive = np.isin(catalogue, list(relevant[u]))
            candidate = ~np.isin(catalogue, list(seen.get(u, set()))) if exclude_seen else None
            value = user_auc(scores_of(u), positive, candidate)
            if value is not None:
                out.append(value)
        return out

    warm_relevant = {u: relevant[u] for u in warm}
    cold_relevant = {u: relevant[u] for u in cold}
    als_recs = als.recommend_many(warm, k, exclude_seen)
    pop_warm = {u: [s for s, _ in popularity.recommend(k, seen.get(u, set()))] for u in warm}
    pop_cold_list = [s for s, _ in popularity.recommend(k)]
    return [
        SegmentResult("warm", "als", mean_metrics(als_recs, warm_relevant, k, aucs(warm, als.item_scores))),
        SegmentResult(
            "warm",
            "popularity",
            mean_metrics(pop_warm, warm_relevant, k, aucs(warm, lambda _: popular_scores)),
        ),
        SegmentResult(
            "cold",
            "popularity",
            mean_metrics(
                {u: pop_cold_list for u in cold}, cold_relevant, k, aucs(cold, lambda _: popular_scores)
            ),
        ),
    ]


@dataclass(frozen=True)
class Trial:
    params: AlsParams
    ndcg: float
    precision: float
    fit_time_s: float


@dataclass(frozen=True)
class AlsSelection:
    best: AlsParams
    trials: list[Trial]  # in grid order


def select_als(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    grid: Mapping[str, Sequence[Any]] = DEFAULT_GRID,
    base: AlsParams = DEFAULT_PARAMS,
    *,
    k: int = 10,
    exclude_seen: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    on_trial: Callable[[int, int, Trial], None] | None = None,
) -> AlsSelection:
    """Fit one ALS per grid point on `train`; the best NDCG@k of warm users on `validation` wins
    (the first in grid order on ties). `on_trial(i, points, trial)` after each fit (progress)."""
    relevant = relevant_items(train, validation, exclude_seen)
    names = list(grid)
    unknown = [n for n in names if n not in AlsParams.__dataclass_fields__]
    if unknown:
        raise ModelInputError(f"unknown ALS parameters in the grid: {unknown}")
    trials: list[Trial] = []
    points = list(itertools.product(*(grid[n] for n in names)))
    for values in points:
        params = replace(base, **dict(zip(names, values, strict=True)))
        model, fit_s = train_als(train, params, clock)
        warm = {u: songs for u, songs in relevant.items() if model.knows(u)}
        metrics = mean_metrics(model.recommend_many(list(warm), k, exclude_seen), warm, k)
        trials.append(Trial(params, metrics.ndcg, metrics.precision, fit_s))
        if on_trial is not None:
            on_trial(len(trials), len(points), trials[-1])
    if not trials or all(np.isnan(t.ndcg) for t in trials):
        raise ModelInputError("no warm user has a new song in the validation window: widen the window")
    best = max(trials, key=lambda t: -np.inf if np.isnan(t.ndcg) else t.ndcg)
    return AlsSelection(best.params, trials)
