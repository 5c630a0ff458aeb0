"""The top-K kernel of the Spark ALS path: each user's best unseen items, against brute force."""

from __future__ import annotations

import numpy as np

from batch.spark_als import top_k_unseen


def brute_force(users: np.ndarray, items: np.ndarray, seen: list[np.ndarray], k: int) -> list[list[int]]:
    out = []
    for u, s in zip(users, seen, strict=True):
        scores = items @ u
        candidates = [i for i in range(len(items)) if i not in set(s.tolist())]
        out.append(sorted(candidates, key=lambda i: (-scores[i], i))[:k])
    return out


def test_top_k_equals_brute_force_with_seen_items_removed() -> None:
    rng = np.random.default_rng(3)
    users, items = rng.normal(size=(40, 6)), rng.normal(size=(120, 6))
    seen = [rng.choice(120, size=rng.integers(0, 30), replace=False) for _ in range(40)]
    top, best = top_k_unseen(users, items, seen, 10)
    assert top.tolist() == brute_force(users, items, seen, 10)
    assert np.all(np.diff(best, axis=1) <= 0)  # best first
    assert not any(set(t) & set(s.tolist()) for t, s in zip(top.tolist(), seen, strict=True))


def test_ties_go_to_the_smaller_item_and_short_lists_are_marked() -> None:
    users = np.ones((1, 2))
    items = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])  # scores 1, 1, 2, 0
    top, best = top_k_unseen(users, items, [np.array([2])], 3)
    assert top.tolist() == [[0, 1, 3]]  # item 2 is seen; 0 and 1 tie: 0 first
    top, best = top_k_unseen(users, items, [np.array([0, 1, 2])], 3)
    assert top[0, 0] == 3 and np.isinf(best[0, 1:]).all()  # one unseen item left: the rest flagged
