"""The popularity recommender: the fallback for users ALS does not know, and the baseline it must beat.

Popularity = the number of distinct users who rated the song in the TRAINING ratings only (the
study's baseline saw the test pairs). Distinct users, not summed ratings, so one bot replaying a
song cannot make it popular. Ties go to the smaller song_id, so the ranking is deterministic.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import ModelInputError

FILE = "popularity.npz"


@dataclass(frozen=True)
class PopularityModel:
    song_ids: np.ndarray  # best first
    users: np.ndarray  # distinct users per song, same order

    @classmethod
    def fit(cls, ratings: pd.DataFrame) -> PopularityModel:
        if ratings.empty or not {"uid", "song_id"} <= set(ratings.columns):
            raise ModelInputError(
                "popularity needs a non-empty uid/song_id ratings frame from the training window"
            )
        counts = ratings.groupby("song_id")["uid"].nunique()
        order = np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))
        return cls(counts.index.to_numpy(dtype=np.int64)[order], counts.to_numpy(dtype=np.int64)[order])

    def recommend(self, n: int = 10, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The n most popular songs not in `exclude` (e.g. the songs the user already has)."""
        head = self.song_ids[: n + len(exclude)]
        keep = ~np.isin(head, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        chosen = np.flatnonzero(keep)[:n]
        return [(int(self.song_ids[i]), float(self.users[i])) for i in chosen]

    def item_scores(self, item_ids: np.ndarray) -> np.ndarray:
        """Popularity of each song of a catalogue (0 for songs it never saw): per-user AUC."""
        lookup = pd.Series(self.users, index=self.song_ids)
        return lookup.reindex(item_ids).fillna(0).to_numpy(dtype=np.float64)

    def save(self, directory: Path) -> str:
        np.savez(directory / FILE, song_ids=self.song_ids, users=self.users)
        return FILE

    @classmethod
    def load(cls, directory: Path) -> PopularityModel:
        with np.load(directory / FILE, allow_pickle=False) as data:
            return cls(data["song_ids"], data["users"])
