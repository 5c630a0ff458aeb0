"""Ranking metrics on small examples computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.ranking_metrics import (
    average_precision_at_k,
    mean_metrics,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    relevant_items,
    user_auc,
)

LOG2_3, LOG2_5 = math.log2(3), math.log2(5)


@pytest.mark.parametrize(
    ("recommended", "relevant", "k", "precision", "recall", "ndcg", "ap"),
    [
        # Hits at ranks 2 and 4 of 4, three relevant: P 2/4, R 2/3,
        # NDCG (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/log2 4), AP (1/2 + 2/4) / 3.
        ([1, 2, 3, 4], {2, 4, 9}, 4, 0.5, 2 / 3, (1 / LOG2_3 + 1 / LOG2_5) / (1 + 1 / LOG2_3 + 0.5), 1 / 3),
        # A perfect list scores 1 everywhere.
        ([2, 4, 9], {2, 4, 9}, 3, 1.0, 1.0, 1.0, 1.0),
        # Only the top k counts: the hit at rank 2 is outside k = 1.
        ([5, 2], {2}, 1, 0.0, 0.0, 0.0, 0.0),
        # A hit at rank 1 with one relevant song: everything 1 except precision (1 of k = 2).
        ([7, 8], {7}, 2, 0.5, 1.0, 1.0, 1.0),
        # A list shorter than k is not rewarded for it: 1 hit over k = 10.
        ([3], {3, 4}, 10, 0.1, 0.5, 1 / (1 + 1 / LOG2_3), 0.5),
        # Nothing recommended: zeros.
        ([], {1}, 10, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_metrics_at_k(
    recommended: list[int],
    relevant: set[int],
    k: int,
    precision: float,
    recall: float,
    ndcg: float,
    ap: float,
) -> None:
    assert precision_at_k(recommended, relevant, k) == pytest.approx(precision)
    assert recall_at_k(recommended, relevant, k) == pytest.approx(recall)
    assert ndcg_at_k(recommended, relevant, k) == pytest.approx(ndcg)
    assert average_precision_at_k(recommended, relevant, k) == pytest.approx(ap)


@pytest.mark.parametrize(
    ("scores", "positive", "candidate", "expected"),
    [
        # Pairs (pos, neg): 0.9 beats 0.8 and 0.1; 0.5 beats 0.1 but not 0.8: 3 of 4.
        ([0.9, 0.8, 0.1, 0.5], [1, 0, 0, 1], None, 0.75),
        # Ties count half.
        ([1.0, 1.0], [1, 0], None, 0.5),
        # A relevant song ranked first of all: 1.
        ([0.2, 0.9, 0.1], [0, 1, 0], None, 1.0),
        # Items outside the candidates (seen in training) are not ranked: only 0.8 vs 0.1 is left.
        ([0.9, 0.8, 0.1, 0.95], [0, 1, 0, 0], [False, True, True, False], 1.0),
        # No relevant candidate: undefined, not 0.
        ([0.5, 0.4], [0, 0], None, None),
    ],
)
def test_user_auc(scores: list[float], positive: list[int], candidate: list[bool] | None, expected) -> None:
    mask = None if candidate is None else np.array(candidate)
    assert user_auc(np.array(scores), np.array(positive, dtype=bool), mask) == expected


def test_relevant_items_leave_out_songs_seen_in_training() -> None:
    train = pd.DataFrame({"uid": [1, 1, 2], "song_id": [10, 11, 10]})
    test = pd.DataFrame({"uid": [1, 1, 2, 3], "song_id": [10, 12, 10, 10]})
    # User 2 only replays a song it had: nothing new to find, so it is not evaluated.
    assert relevant_items(train, test) == {1: {12}, 3: {10}}
    assert relevant_items(train, test, exclude_seen=False) == {1: {10, 12}, 2: {10}, 3: {10}}


def test_mean_metrics_average_over_users_and_count_missing_lists_as_misses() -> None:
    relevant = {1: {5}, 2: {6}, 3: set()}
    metrics = mean_metrics({1: [5, 9]}, relevant, k=2, aucs=[1.0, 0.5])
    # User 1: P 1/2, R 1, NDCG 1, AP 1. User 2 got no list: zeros. User 3 has nothing to find.
    assert metrics.users == 2
    assert (metrics.precision, metrics.recall, metrics.ndcg, metrics.map) == (0.25, 0.5, 0.5, 0.5)
    assert (metrics.auc, metrics.auc_users) == (0.75, 2)
    assert math.isnan(mean_metrics({}, {}, k=10).ndcg)
