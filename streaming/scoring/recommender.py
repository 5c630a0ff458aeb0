"""Top-N songs for a user from its recent ratings, with the served ALS model or the fallback.

The ALS model folds the user in from its fresh ratings (`recommend_from_ratings`: the user's
factors are recomputed, already-heard songs filtered), which serves users the model was
trained on and new users alike, as long as they rated a song the model knows. A user none of
whose songs the model knows gets the documented fallback: the most popular songs (distinct
listeners in the served model's training window, shipped with it) that it has not heard,
with `source` = "popularity-fallback" in the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.registry import LoadedAls
from streaming.scoring.messages import recommendation_value
from streaming.scoring.reload import Served

ALS = "als"
FALLBACK = "popularity-fallback"


@dataclass(frozen=True)
class Recommendation:
    value: dict[str, Any]  # the `musicbox.recommendations` value
    source: str


class Recommender:
    def __init__(
        self,
        als: Callable[[], Served[LoadedAls] | None],
        top_n: int,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._als = als
        self.top_n = top_n
        self._clock_ms = clock_ms

    def served(self) -> Served[LoadedAls] | None:
        """The model to use for a whole day close (read once, so a reload falls between closes)."""
        return self._als()

    def recommend(
        self, served: Served[LoadedAls], as_of: str, users: Sequence[tuple[int, Mapping[int, float]]]
    ) -> list[Recommendation]:
        """One recommendation per (uid, ratings), in order; the users of a call fold in together
        (one implicit call for all of them, see AlsModel.recommend_from_ratings_many)."""
        lists = served.model.als.recommend_from_ratings_many([r for _, r in users], n=self.top_n)
        out = []
        for (uid, ratings), items in zip(users, lists, strict=True):
            source = ALS
            if not items:
                items = served.model.popularity.recommend(self.top_n, exclude=set(ratings))
                source = FALLBACK
            out.append(
                Recommendation(
                    recommendation_value(uid, as_of, items, served.version, source, self._clock_ms()), source
                )
            )
        return out
