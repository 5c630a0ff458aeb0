"""Top-k lists for many users of an implicit ALS model, in blocks of users with similar histories.

`models.als.AlsModel.recommend_many` asks implicit, for EVERY user of a call, for k + (the most
songs any user of the call rated) items, so that k remain after the rated ones are removed. One
bot with 39 K rated songs among 20 K users made that 39 K items per user: 108 s for 2,000 users
at the study-sample scale, hours for a hyperparameter grid. Calling it on blocks of users sorted
by how many songs they rated keeps each block's list length near its own users' needs; the lists
are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.als import AlsModel

ENTRIES_PER_BLOCK = 2_000_000  # users x list length of one call: bounds its time and memory


def blocks_by_width(rated: np.ndarray, k: int, budget: int = ENTRIES_PER_BLOCK) -> list[np.ndarray]:
    """Positions of users (by ascending `rated` count) cut into blocks whose size x (k + the
    block's largest count) stays within `budget`; a user over budget on its own gets a block."""
    order = np.argsort(rated, kind="stable")
    blocks, start = [], 0
    for end in range(1, len(order) + 1):
        # `order` ascends, so the block's widest user is its last one.
        if end - start > 1 and (end - start) * (k + int(rated[order[end - 1]])) > budget:
            blocks.append(order[start : end - 1])
            start = end - 1
    if start < len(order):
        blocks.append(order[start:])
    return blocks


def recommend_blocked(model: AlsModel, uids: Sequence[int], k: int = 10) -> dict[int, list[int]]:
    """`model.recommend_many(uids, k)` (seen songs excluded), one block of similar users at a time."""
    users = [int(u) for u in uids]
    rows = np.searchsorted(model.user_ids, np.array(users, dtype=np.int64))  # ids are sorted (np.unique)
    rated = np.diff(model.user_ratings.indptr)[rows] if len(rows) else np.array([], dtype=np.int64)
    out: dict[int, list[int]] = {}
    for block in blocks_by_width(rated, k, ENTRIES_PER_BLOCK):
        out.update(model.recommend_many([users[i] for i in block], k))
    return out


class BlockedAls:
    """An AlsModel whose `recommend_many` goes block by block (for models.als_evaluation)."""

    def __init__(self, model: AlsModel) -> None:
        self.model = model
        self.item_ids = model.item_ids

    def knows(self, uid: int) -> bool:
        return self.model.knows(uid)

    def item_scores(self, uid: int) -> np.ndarray:
        return self.model.item_scores(uid)

    def recommend_many(
        self, uids: Sequence[int], n: int = 10, exclude_seen: bool = True
    ) -> dict[int, list[int]]:
        if not exclude_seen:
            return self.model.recommend_many(uids, n, exclude_seen)
        return recommend_blocked(self.model, uids, n)
