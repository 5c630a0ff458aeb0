"""Block-wise top-k lists: the same lists as one recommend_many call, with short lists per block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch.als_recommend import blocks_by_width, recommend_blocked
from models.als import AlsParams, train_als

# (rated counts, k, budget, expected blocks as positions)
BLOCKS = [
    # everyone fits in one block: 4 users x (2 + 3) = 20 <= 20
    ([1, 3, 2, 0], 2, 20, [[3, 0, 2, 1]]),
    # the heavy user (100) gets its own block; the light ones stay together
    ([1, 100, 2, 0], 2, 20, [[3, 0, 2], [1]]),
    # a tight budget cuts by width: [0, 1] -> 2 x 3 = 6, then [2] -> 4, then [3] -> 5
    ([0, 1, 2, 3], 2, 6, [[0, 1], [2], [3]]),
    # no users, no blocks
    ([], 10, 100, []),
]


@pytest.mark.parametrize(("rated", "k", "budget", "expected"), BLOCKS)
def test_blocks_by_width(rated: list[int], k: int, budget: int, expected: list[list[int]]) -> None:
    blocks = blocks_by_width(np.array(rated, dtype=np.int64), k, budget)
    assert [b.tolist() for b in blocks] == expected
    assert sorted(i for b in blocks for i in b.tolist()) == list(range(len(rated)))  # each user once


def test_blocked_lists_equal_one_big_call() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for uid in range(1, 61):
        songs = rng.choice(200, size=150 if uid == 7 else int(rng.integers(1, 12)), replace=False)
        rows += [(uid, int(s) + 1, float(rng.uniform(0.1, 2))) for s in songs]  # uid 7: a "bot"
    ratings = pd.DataFrame(rows, columns=["uid", "song_id", "rating"])
    model, _ = train_als(ratings, AlsParams(factors=8, iterations=5))
    uids = list(range(1, 61))
    whole = model.recommend_many(uids, 10)
    calls: list[int] = []
    original = model.recommend_many

    def spy(users: list[int], n: int = 10, exclude_seen: bool = True) -> dict[int, list[int]]:
        calls.append(len(users))
        return original(users, n, exclude_seen)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("batch.als_recommend.ENTRIES_PER_BLOCK", 200)  # force many blocks
        mp.setattr(model, "recommend_many", spy)
        blocked = recommend_blocked(model, uids, 10)
    assert len(calls) > 3 and sum(calls) == 60  # many blocks, each user once
    assert calls[-1] == 1  # the bot, alone at the end
    assert blocked == whole
