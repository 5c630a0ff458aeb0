"""Ranking metrics of recommendations against a FUTURE window's interactions.

Relevant songs of a user = the songs with a rating in the test window that the user had NOT
rated in the training window (the study-like setting, `exclude_seen=True`: re-recommending a
user's own favourites is easy and not what we measure); with `exclude_seen=False`, all test
songs. Songs the model never saw still count as relevant: missing them is a real cost.
Users with no relevant song are left out (there is nothing to find). Relevance is binary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def precision_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Hits in the top k over k (a list shorter than k is not rewarded for it)."""
    return sum(1 for s in recommended[:k] if s in relevant) / k


def recall_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Hits in the top k over the number of relevant songs."""
    return sum(1 for s in recommended[:k] if s in relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """DCG of the top k (gain 1 / log2(rank + 1)) over the DCG of a perfect list."""
    dcg = sum(1.0 / np.log2(rank + 2) for rank, s in enumerate(recommended[:k]) if s in relevant)
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return float(dcg / ideal)


def average_precision_at_k(recommended: Sequence[int], relevant: set[int], k: int = 10) -> float:
    """Mean of precision@rank at each hit in the top k, over min(k, number relevant)."""
    hits, total = 0, 0.0
    for rank, s in enumerate(recommended[:k], start=1):
        if s in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def user_auc(scores: np.ndarray, positive: np.ndarray, candidate: np.ndarray | None = None) -> float | None:
    """The study's per-user AUC: the chance that a relevant item outscores an irrelevant one,
    over the candidate items (ties count half). None when either side is empty."""
    if candidate is not None:
        scores, positive = scores[candidate], positive[candidate]
    n_pos = int(positive.sum())
    n_neg = len(scores) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def relevant_items(train: pd.DataFrame, test: pd.DataFrame, exclude_seen: bool = True) -> dict[int, set[int]]:
    """uid -> songs rated in `test` (minus those the user rated in `train` when exclude_seen)."""
    future = test.groupby("uid")["song_id"].agg(set)
    if exclude_seen and not train.empty:
        past = train.groupby("uid")["song_id"].agg(set)
        future = pd.Series({u: songs - past.get(u, set()) for u, songs in future.items()}, dtype=object)
    return {int(u): {int(s) for s in songs} for u, songs in future.items() if songs}


@dataclass(frozen=True)
class RankingMetrics:
    """Means over users of the @k metrics, and of the per-user AUC where it could be computed."""

    users: int
    k: int
    precision: float
    recall: float
    ndcg: float
    map: float
    auc: float | None = None
    auc_users: int = 0


def mean_metrics(
    recommendations: Mapping[int, Sequence[int]],
    relevant: Mapping[int, set[int]],
    k: int = 10,
    aucs: Sequence[float] = (),
) -> RankingMetrics:
    """Average every @k metric over the users of `relevant` (a user with no list gets zeros)."""
    users = [u for u, songs in relevant.items() if songs]
    if not users:
        return RankingMetrics(0, k, float("nan"), float("nan"), float("nan"), float("nan"))
    per_user = np.array(
        [
            [f(recommendations.get(u, []), relevant[u], k) for f in (precision_at_k, recall_at_k, ndcg_at_k)]
            + [average_precision_at_k(recommendations.get(u, []), relevant[u], k)]
            for u in users
        ]
    )
    p, r, n, m = per_user.mean(axis=0)
    auc = float(np.mean(aucs)) if len(aucs) else None
    return RankingMetrics(len(users), k, float(p), float(r), float(n), float(m), auc, len(aucs))
