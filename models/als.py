"""Implicit-feedback ALS (the `implicit` library, CPU) over the ratings of `models.ratings`.

Users x items CSR; the confidence handed to implicit is the paper's `1 + alpha * r` (implicit
uses the values it is given as confidences, so its own alpha stays 1). OpenBLAS must run one
thread (callers set OPENBLAS_NUM_THREADS=1; fit and recalculation also limit it here).
Saved with implicit's own npz format plus npz/JSON id maps: no pickle anywhere.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.topk import topk
from threadpoolctl import threadpool_limits

from models.errors import ModelInputError, UnknownUserError

Recommendation = tuple[int, float]  # (song_id, score), best first
FILES = ("als.npz", "ids.npz", "user_ratings.npz", "als.json")
# implicit's top-k gives items it filtered this score (they rank last): never recommended.
_FILTERED = float(np.finfo(np.float32).min)


@dataclass(frozen=True)
class TopItems:
    """Ranked songs of many users: user i's are song_ids[indptr[i]:indptr[i+1]], best first."""

    indptr: np.ndarray
    song_ids: np.ndarray  # int64
    scores: np.ndarray  # float32

    def lists(self) -> list[list[Recommendation]]:
        songs, scores = self.song_ids.tolist(), self.scores.tolist()
        bounds = self.indptr.tolist()
        return [list(zip(songs[a:b], scores[a:b], strict=True)) for a, b in itertools.pairwise(bounds)]


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
        self._item_order = np.argsort(item_ids, kind="stable")
        self._sorted_item_ids = np.asarray(item_ids, dtype=np.int64)[self._item_order]
        self._candidates_cache: tuple[np.ndarray, np.ndarray] | None = None

    def knows(self, uid: int) -> bool:
        return int(uid) in self._user_index

    def _results(
        self, ids: np.ndarray, scores: np.ndarray, seen: set[int], n: int | None = None
    ) -> list[Recommendation]:
        """The first `n` (all when None) of implicit's ranked ids that are real, unfiltered, unseen."""
        out: list[Recommendation] = []
        for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
            if n is not None and len(out) == n:
                break
            if i >= 0 and s > _FILTERED and i not in seen:
                out.append((int(self.item_ids[i]), s))
        return out

    def recommend(self, uid: int, n: int = 10, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-n songs for a user of the training set, from its trained factors."""
        if not self.knows(uid):
            raise UnknownUserError(
                f"user {uid} is not in the ALS training set: use recommend_from_ratings or popularity"
            )
        row = self._user_index[int(uid)]
        seen = self.user_ratings[row]
        ids, scores = self.als.recommend(
            row, seen, N=min(n, len(self.item_ids)), filter_already_liked_items=exclude_seen
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
        ids, scores = self.als.recommend(
            rows, seen, N=min(n, len(self.item_ids)), filter_already_liked_items=exclude_seen
        )
        out = {}
        for k, uid in enumerate(uids):
            done = set(seen[k].indices) if exclude_seen else set()
            out[int(uid)] = [s for s, _ in self._results(ids[k], scores[k], done)[:n]]
        return out

    def rated_rows(self, indptr: np.ndarray, song_ids: np.ndarray, ratings: np.ndarray) -> sp.csr_matrix:
        """Users x items CSR from CSR-shaped ratings by song id (user i rated
        song_ids[indptr[i]:indptr[i+1]]): positive ratings of songs the model knows, others dropped."""
        song_ids = np.asarray(song_ids, dtype=np.int64)
        pos = np.searchsorted(self._sorted_item_ids, song_ids)
        clipped = np.minimum(pos, len(self._sorted_item_ids) - 1)
        known = (pos < len(self._sorted_item_ids)) & (self._sorted_item_ids[clipped] == song_ids)
        known &= np.asarray(ratings) > 0
        users = len(indptr) - 1
        owner = np.repeat(np.arange(users), np.diff(indptr))
        counts = np.bincount(owner[known], minlength=users)
        rows = sp.csr_matrix(
            (
                np.asarray(ratings, dtype=np.float32)[known],
                self._item_order[clipped[known]].astype(np.int32),
                np.concatenate([[0], np.cumsum(counts)]),
            ),
            shape=(users, len(self.item_ids)),
        )
        rows.sort_indices()
        return rows

    def _ratings_rows(self, users: Sequence[Mapping[int, float]]) -> sp.csr_matrix:
        """One CSR row per user of its positive ratings of songs the model knows (others dropped)."""
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in users])]).astype(np.int64)
        songs = np.fromiter((int(s) for r in users for s in r), dtype=np.int64, count=int(indptr[-1]))
        values = np.fromiter(
            (float(v) for r in users for v in r.values()), dtype=np.float64, count=len(songs)
        )
        return self.rated_rows(indptr, songs, values)

    def recommend_from_ratings(
        self, ratings: Mapping[int, float], n: int = 10, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """Top-n songs for a user described by fresh ratings (song_id -> rating): a user unknown
        to the model, or one with new activity. Empty when no rated song is in the model."""
        return self.recommend_from_ratings_many([ratings], n, exclude_seen)[0]

    def recommend_from_ratings_many(
        self, users: Sequence[Mapping[int, float]], n: int = 10, exclude_seen: bool = True
    ) -> list[list[Recommendation]]:
        """`recommend_from_ratings` for many users in one implicit call (their factors recomputed
        together, then one top-k over the item factors): the same lists, ~40x faster than a call a
        user. In order; an empty list for a user none of whose songs the model knows."""
        return self.recommend_rows(self._ratings_rows(users), n, exclude_seen)

    def recommend_rows(
        self, rows: sp.csr_matrix, n: int = 10, exclude_seen: bool = True
    ) -> list[list[Recommendation]]:
        """`recommend_from_ratings_many` for users given as rows of `rated_rows`."""
        return self.top_items(self.fold_in(rows), rows, n, exclude_seen).lists()

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """The factors of users described by `rated_rows` (implicit's `recalculate_user`: one least
        squares solve per user against the item factors); zeros for a user with no known song."""
        with threadpool_limits(1, "blas"):
            return np.asarray(
                self.als.recalculate_user(np.arange(rows.shape[0]), confidence(rows, self.params.alpha))
            )

    def candidates(self, song_ids: np.ndarray) -> np.ndarray:
        """The item columns of `song_ids` the model knows, sorted: a candidate set for `top_items`."""
        song_ids = np.asarray(song_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_item_ids, song_ids), len(self._sorted_item_ids) - 1)
        known = self._sorted_item_ids[pos] == song_ids
        return np.unique(self._item_order[pos[known]])

    def top_items(
        self,
        factors: np.ndarray,
        rows: sp.csr_matrix,
        n: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
    ) -> TopItems:
        """The n best items of each user by factors @ item factors, its rated items left out;
        none for a user with no known song (nothing to go by). Exact over the catalogue, or over
        `candidates` (sorted item columns, see `candidates`) when given: the cost of ranking is
        one dot product per user and item ranked.

        implicit's top-k filters rated items at ~100 us a user (10x the rest at a small
        catalogue), so instead users are grouped by how many items they rated (r < 2, < 4, < 8,
        ...), each group asks for n + its bound on r unfiltered, and the rated ones are dropped
        (with numpy, for the whole group): at least n stay. A heavy user widens only its own
        group's lists."""
        rows.sort_indices()
        counts = np.diff(rows.indptr)
        rated = np.flatnonzero(counts)
        skip = counts[rated] if exclude_seen else np.zeros(len(rated), dtype=np.int64)
        if candidates is not None and exclude_seen:  # only rated candidates can take a place
            at = np.minimum(np.searchsorted(candidates, rows.indices), len(candidates) - 1)
            owner = np.repeat(np.arange(rows.shape[0]), counts)
            skip = np.bincount(owner[candidates[at] == rows.indices], minlength=rows.shape[0])[rated]
        group = np.ceil(np.log2(skip + 1)).astype(np.int64)  # 2**group > r
        # (user row, item column) pairs rated, as sorted keys row * items + column.
        items = len(self.item_ids)
        rated_keys = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts) * items + rows.indices
        ranked = self.als.item_factors if candidates is None else self._candidate_factors(candidates)
        user_of, item_of, score_of = [], [], []
        with threadpool_limits(1, "blas"):
            for g in np.unique(group).tolist():
                users = rated[group == g]
                k = min(n + (2**g if exclude_seen else 0), len(ranked))
                ids, scores = topk(ranked, factors[users], k, num_threads=1)
                keep = (ids >= 0) & (scores > _FILTERED)
                if candidates is not None:
                    ids = candidates[np.maximum(ids, 0)]
                if exclude_seen and len(rated_keys):
                    keys = users[:, None] * items + np.maximum(ids, 0)
                    at = np.minimum(np.searchsorted(rated_keys, keys), len(rated_keys) - 1)
                    keep &= rated_keys[at] != keys
                keep &= np.cumsum(keep, axis=1) <= n
                r, c = np.nonzero(keep)
                user_of.append(users[r])
                item_of.append(ids[r, c])
                score_of.append(scores[r, c])
        user = np.concatenate(user_of) if user_of else np.zeros(0, dtype=np.int64)
        order = np.argsort(user, kind="stable")  # by user, each user's items best first
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=rows.shape[0]), out=indptr[1:])
        item = np.concatenate(item_of)[order] if item_of else np.zeros(0, dtype=np.int64)
        score = np.concatenate(score_of)[order] if score_of else np.zeros(0, dtype=np.float32)
        return TopItems(indptr, np.asarray(self.item_ids, dtype=np.int64)[item], score)

    def _candidate_factors(self, candidates: np.ndarray) -> np.ndarray:
        """The factors of a candidate set, kept for the next call with the same set."""
        cached = self._candidates_cache
        if cached is None or not np.array_equal(cached[0], candidates):
            cached = (candidates, np.ascontiguousarray(self.als.item_factors[candidates]))
            self._candidates_cache = cached
        return cached[1]

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
