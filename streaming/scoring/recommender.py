"""Top-N songs for users from their recent ratings, with the served ALS model or the fallback.

The ALS model folds the users in from their fresh ratings (`AlsModel.recommend_rows`: the
users' factors are recomputed, already-heard songs filtered), which serves users the model was
trained on and new users alike, as long as they rated a song the model knows. A user none of
whose songs the model knows gets the documented fallback: the most popular songs (distinct
listeners in the served model's training window, shipped with it) that it has not heard,
with `source` = "popularity-fallback" in the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.registry import LoadedAls
from streaming.scoring.listening import UserRatings
from streaming.scoring.messages import encode, key_of, recommendation_value
from streaming.scoring.reload import Served

ALS = "als"
FALLBACK = "popularity-fallback"


@dataclass
class CloseTimes:
    """Where the day closes' time goes, summed over the closes (seconds)."""

    users: int = 0
    select_s: float = 0.0  # due users and their ratings from the listening state
    fold_in_s: float = 0.0  # the users' ALS factors from their ratings
    top_n_s: float = 0.0  # the best items of each user over the item factors
    messages_s: float = 0.0  # fallbacks and message values
    publish_s: float = 0.0  # sent and acknowledged

    def total_s(self) -> float:
        return self.select_s + self.fold_in_s + self.top_n_s + self.messages_s + self.publish_s

    def add(self, other: CloseTimes) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Recommendations:
    """A close's messages for `musicbox.recommendations`, keyed by uid, and their sources."""

    records: list[tuple[bytes, bytes]]
    sources: list[str]


class Recommender:
    def __init__(
        self,
        als: Callable[[], Served[LoadedAls] | None],
        top_n: int,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        perf_s: Callable[[], float] = time.perf_counter,
        candidate_songs: int = 0,
    ) -> None:
        self._als = als
        self.top_n = top_n
        self._clock_ms = clock_ms
        self._perf_s = perf_s
        self.candidate_songs = candidate_songs
        self._candidates: tuple[str, np.ndarray | None] | None = None  # (model version, item columns)

    def served(self) -> Served[LoadedAls] | None:
        """The model to use for a whole day close (read once, so a reload falls between closes)."""
        return self._als()

    def candidates(self, served: Served[LoadedAls]) -> np.ndarray | None:
        """The songs ranked: every song the model knows (None), or with `candidate_songs` the
        most popular of its training window (popularity shipped with it), once per version."""
        if not self.candidate_songs:
            return None
        if self._candidates is None or self._candidates[0] != served.version:
            popular = served.model.popularity.song_ids[: self.candidate_songs]
            self._candidates = (served.version, served.model.als.candidates(popular))
        return self._candidates[1]

    def recommend(
        self, served: Served[LoadedAls], as_of: str, ratings: UserRatings, times: CloseTimes | None = None
    ) -> Recommendations:
        """One recommendation per user of `ratings`, in order; the users fold in together (one
        least-squares call for all of them, then one top-k call a group, see AlsModel.top_items)."""
        times = times if times is not None else CloseTimes()
        model, clock = served.model.als, self._perf_s
        started = clock()
        rows = model.rated_rows(ratings.indptr, ratings.song, ratings.rating)
        factors = model.fold_in(rows)
        folded = clock()
        top = model.top_items(factors, rows, n=self.top_n, candidates=self.candidates(served))
        ranked = clock()
        times.fold_in_s += folded - started
        times.top_n_s += ranked - folded
        now_ms = self._clock_ms()
        records, sources = [], []
        for i, (uid, items) in enumerate(zip(ratings.users.tolist(), top.lists(), strict=True)):
            source = ALS
            if not items:
                items = served.model.popularity.recommend(self.top_n, exclude=set(ratings.of(i)))
                source = FALLBACK
            value = recommendation_value(uid, as_of, items, served.version, source, now_ms)
            records.append((key_of(uid), encode(value)))
            sources.append(source)
        times.messages_s += clock() - ranked
        return Recommendations(records, sources)
