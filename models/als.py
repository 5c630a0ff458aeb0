"""Implicit-feedback ALS (the `implicit` library, CPU) over the ratings of `models.ratings`.

Users x items CSR; the confidence handed to implicit is the paper's `1 + alpha * r` (implicit
uses the values it is given as confidences, so its own alpha stays 1). OpenBLAS must run one
thread (callers set OPENBLAS_NUM_THREADS=1; fit and recalculation also limit it here).
Saved with implicit's own npz format plus npz/JSON id maps: no pickle anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from models.errors import ModelInputError, UnknownUserError

Recommendation = tuple[int, float]  # (song_id, score), best first
FILES = ("als.npz", "ids.npz", "user_ratings.npz", "als.json")
_FILTERED = float(np.finfo(np.float32).min)  # the score implicit gives filtered-out items


@dataclass(frozen=True)
class AlsParams:
    factors: int = 32
    regularization: float = 1.0  # 0.1 overfitted a small checkerboard at 8+ factors
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0
    num_threads: int = 1  # implicit's own threads; two cores here are shared with the stack


DEFAULT_PARAMS = AlsParams()


def rating_matrix(ratings: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(users x items CSR of ratings, row -> uid, column -> song_id) from a uid/song_id/rating frame."""
    missing = [c for c in ("uid", "song_id", "rating") if c not in ratings.columns]
    if missing:
        raise ModelInputError(f"the ratings frame lacks columns {missing}: build it with models.ratings")
    if ratings.empty:
        raise ModelInputError("no ratings to train on: the training window holds no plays or downloads")
    user_ids, rows = np.unique(ratings["uid"].to_numpy(dtype=np.int64), return_inverse=True)
    item_ids, cols = np.unique(ratings["song_id"].to_numpy(dtype=np.int64), return_inverse=True)
    matrix = sp.csr_matrix(
        (ratings["rating"].to_numpy(dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    matrix.sum_duplicates()
    return matrix, user_ids, item_ids


def confidence(ratings: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """The paper's confidence 1 + alpha * r on the observed pairs (unobserved pairs stay at 1 in ALS)."""
    out = ratings.astype(np.float32, copy=True)
    out.data = 1.0 + alpha * out.data
    return out


class AlsModel:
    """A fitted ALS with its id maps and the training ratings (for "seen" filtering)."""

    def __init__(
        self,
        als: AlternatingLeastSquares,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        user_ratings: sp.csr_matrix,
        params: AlsParams,
    ) -> None:
        self.als, self.params = als, params
        self.user_ids, self.item_ids, self.user_ratings = user_ids, item_ids, user_ratings.tocsr()
        self._user_index = {int(u): i for i, u in enumerate(user_ids)}
        self._item_index = {int(s): i for i, s in enumerate(item_ids)}

    def knows(self, uid: int) -> bool:
        return int(uid) in self._user_index

    def _results(self, ids: np.ndarray, scores: np.ndarray, seen: set[int]) -> list[Recommendation]:
        return [
            (int(self.item_ids[i]), float(s))
            for i, s in zip(ids, scores, strict=True)
            if i >= 0 and s > _FILTERED and int(i) not in seen
        ]

    def recommend(self, uid: int, n: int = 10, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-n songs for a user of the training set, from its trained factors."""
        if not self.knows(uid):
            raise UnknownUserError(
                f"user {uid} is not in the ALS training set: use recommend_from_ratings or popularity"
            )
        row = self._user_index[int(uid)]
        seen = self.user_ratings[row]
        ids, scores = self.als.recommend(
            row, seen, N=min(n + seen.nnz, len(self.item_ids)), filter_already_liked_items=exclude_seen
        )
        return self._results(ids, scores, set(seen.indices) if exclude_seen else set())[:n]

    def recommend_many(
        self, uids: Sequence[int], n: int = 10, exclude_seen: bool = True
    ) -> dict[int, list[int]]:
        """Top-n song ids for many known users in one batched call (evaluation)."""
        unknown = [int(u) for u in uids if not self.knows(u)]
        if unknown:
            raise UnknownUserError(
                f"{len(unknown)} users are not in the ALS training set, e.g. {unknown[:3]}"
            )
        rows = np.array([self._user_index[int(u)] for u in uids], dtype=np.int64)
        if len(rows) == 0:
            return {}
        seen = self.user_ratings[rows]
        width = min(n + int(np.diff(seen.indptr).max()), len(self.item_ids))
        ids, scores = self.als.recommend(rows, seen, N=width, filter_already_liked_items=exclude_seen)
        out = {}
        for k, uid in enumerate(uids):
            done = set(seen[k].indices) if exclude_seen else set()
            out[int(uid)] = [s for s, _ in self._results(ids[k], scores[k], done)[:n]]
        return out

    def _ratings_row(self, ratings: Mapping[int, float]) -> sp.csr_matrix:
        known = [
            (self._item_index[int(s)], r) for s, r in ratings.items() if int(s) in self._item_index and r > 0
        ]
        cols = np.array([c for c, _ in known], dtype=np.int32)
        vals = np.array([r for _, r in known], dtype=np.float32)
        return sp.csr_matrix(
            (vals, (np.zeros(len(cols), dtype=np.int32), cols)), shape=(1, len(self.item_ids))
        )

    def recommend_from_ratings(
        self, ratings: Mapping[int, float], n: int = 10, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """Top-n songs for a user described by fresh ratings (song_id -> rating): a user unknown
        to the model, or one with new activity. Empty when no rated song is in the model."""
        row = self._ratings_row(ratings)
        if row.nnz == 0:
            return []
        with threadpool_limits(1, "blas"):
            ids, scores = self.als.recommend(
                0,
                confidence(row, self.params.alpha),
                N=min(n + row.nnz, len(self.item_ids)),
                filter_already_liked_items=exclude_seen,
                recalculate_user=True,
            )
        return self._results(ids, scores, set(row.indices) if exclude_seen else set())[:n]

    def item_scores(self, uid: int) -> np.ndarray:
        """The model's score of every item (column order) for a known user: per-user AUC."""
        return np.asarray(self.als.item_factors @ self.als.user_factors[self._user_index[int(uid)]])

    def save(self, directory: Path) -> list[str]:
        """Write FILES into `directory` (which must exist); returns their names."""
        with open(directory / "als.npz", "wb") as f:
            self.als.save(f)
        np.savez(directory / "ids.npz", user_ids=self.user_ids, item_ids=self.item_ids)
        sp.save_npz(directory / "user_ratings.npz", self.user_ratings)
        (directory / "als.json").write_text(json.dumps(asdict(self.params), indent=2) + "\n")
        return list(FILES)

    @classmethod
    def load(cls, directory: Path) -> AlsModel:
        """Read what `save` wrote; np.load refuses pickled objects (allow_pickle=False)."""
        params = AlsParams(**json.loads((directory / "als.json").read_text()))
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares.load(str(directory / "als.npz"))
        with np.load(directory / "ids.npz", allow_pickle=False) as ids:
            user_ids, item_ids = ids["user_ids"], ids["item_ids"]
        user_ratings = sp.load_npz(directory / "user_ratings.npz").tocsr()
        return cls(als, user_ids, item_ids, user_ratings, params)


def train_als(
    ratings: pd.DataFrame, params: AlsParams = DEFAULT_PARAMS, clock: Callable[[], float] = time.perf_counter
) -> tuple[AlsModel, float]:
    """(fitted model, fit time in seconds) on a uid/song_id/rating frame."""
    matrix, user_ids, item_ids = rating_matrix(ratings)
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=1.0,  # the confidence below already holds alpha
            iterations=params.iterations,
            random_state=params.seed,
            num_threads=params.num_threads,
        )
        started = clock()
        als.fit(confidence(matrix, params.alpha), show_progress=False)
        elapsed_s = clock() - started
    return AlsModel(als, user_ids, item_ids, matrix, params), elapsed_s
