"""Spark MLlib ALS (`implicitPrefs=True`) on the same matrix as implicit's: the distributed path.

Same users x songs ratings, same rank, iterations and alpha (Spark's confidence is 1 + alpha * r,
as ours). The regularization differs in kind: Spark multiplies it by each user's and song's
number of ratings (ALS-WR), implicit does not. Passing the same value over-regularized Spark
(P@10 0.015 vs 0.077 on a 600-user set, its top-K lists checked equal to numpy's from its own
factors), so Spark gets lambda / (mean ratings per user): a typical user is then regularized
as in implicit.

Top-K per user with the songs the user already rated removed is computed in Spark tasks (users
partitioned, the item factors broadcast, one BLAS product per block of users) and written to
Parquet (uid, rank, song_id, score). Not `recommendForAllUsers`: removing rated songs means
asking it for k + (songs rated) items per user, and it merges lists that long across every item
block; at the study-sample scale (~50 K users x 300 K songs) one run had not finished after
40 minutes on two cores. `SparkRecommender` gives the result the calls `models.als_evaluation` makes of an
AlsModel, so both are measured by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models.als import AlsModel, AlsParams

# Users scored at once in a task: 64 x 300 K songs x 4 bytes = 77 MB of scores.
USERS_PER_BLOCK = 64


def spark_reg_param(base: AlsModel, params: AlsParams) -> float:
    """implicit's lambda divided by the mean number of ratings per user (see the module docstring)."""
    per_user = base.user_ratings.nnz / max(1, base.user_ratings.shape[0])
    return params.regularization / max(per_user, 1.0)


class SparkRecommender:
    """Spark ALS factors and top-K lists, with AlsModel's id maps."""

    def __init__(
        self, base: AlsModel, user_factors: np.ndarray, item_factors: np.ndarray, top: dict[int, list[int]]
    ) -> None:
        self.item_ids, self.user_ids = base.item_ids, base.user_ids
        self._user_index = {int(u): i for i, u in enumerate(base.user_ids)}
        self.user_factors, self.item_factors, self.top = user_factors, item_factors, top

    def knows(self, uid: int) -> bool:
        return int(uid) in self._user_index

    def recommend_many(
        self, uids: Sequence[int], n: int = 10, exclude_seen: bool = True
    ) -> dict[int, list[int]]:
        return {int(u): self.top.get(int(u), [])[:n] for u in uids}

    def item_scores(self, uid: int) -> np.ndarray:
        return np.asarray(self.item_factors @ self.user_factors[self._user_index[int(uid)]])


@dataclass(frozen=True)
class SparkAlsRun:
    recommender: SparkRecommender
    fit_time_s: float
    recommend_time_s: float  # top-K with seen songs removed, written to Parquet, collected
    out: Path


def _factors(frame: DataFrame, n: int, rank: int) -> np.ndarray:
    """Spark's (id, features) factor table as an (n, rank) matrix indexed by id (zeros if absent)."""
    rows = cast(pd.DataFrame, frame.toPandas())
    out = np.zeros((n, rank), dtype=np.float32)
    if len(rows):
        out[rows["id"].to_numpy()] = np.vstack(rows["features"].to_numpy())
    return out


def top_k_unseen(
    user_factors: np.ndarray, item_factors: np.ndarray, seen: list[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores), each (users, k): every user's k best items outside its `seen` ones, best
    first, ties to the smaller item index; -inf scores where fewer than k items are left."""
    scores = user_factors @ item_factors.T
    for row, items in enumerate(seen):
        scores[row, items] = -np.inf
    kk = min(k, scores.shape[1])
    top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    best = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -best), axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(best, order, axis=1)


def _scorer(
    items: Broadcast[np.ndarray], k: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: a block of users at a time against the broadcast item factors."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        item_factors = items.value
        for batch in batches:
            for start in range(0, len(batch), USERS_PER_BLOCK):
                part = batch.iloc[start : start + USERS_PER_BLOCK]
                users = np.vstack(part["features"].to_numpy()).astype(np.float32)
                seen = [np.asarray(s if s is not None else [], dtype=np.int64) for s in part["seen"]]
                top, best = top_k_unseen(users, item_factors, seen, k)
                keep = np.isfinite(best).ravel()
                yield pd.DataFrame(
                    {
                        "user": np.repeat(part["id"].to_numpy(dtype=np.int32), top.shape[1])[keep],
                        "item": top.ravel().astype(np.int32)[keep],
                        "score": best.ravel().astype(np.float32)[keep],
                        "rank": np.tile(np.arange(1, top.shape[1] + 1, dtype=np.int32), len(part))[keep],
                    }
                )

    return score


def _top_k(
    spark: SparkSession, model: ALSModel, ratings: DataFrame, n_items: int, rank: int, k: int
) -> DataFrame:
    """Every user's top k unseen items, scored in Spark tasks (users partitioned, items broadcast)."""
    items = spark.sparkContext.broadcast(_factors(model.itemFactors, n_items, rank))
    seen = ratings.groupBy("user").agg(F.collect_list("item").alias("seen"))
    users = model.userFactors.join(seen, model.userFactors["id"] == seen["user"], "left").select(
        "id", "features", "seen"
    )
    return users.mapInPandas(_scorer(items, k), "user int, item int, score float, rank int")


def run_spark_als(
    spark: SparkSession,
    base: AlsModel,
    params: AlsParams,
    out: Path,
    *,
    k: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> SparkAlsRun:
    """Fit Spark ALS on `base`'s training ratings, write every user's top-k to `out` (Parquet)."""
    coo = base.user_ratings.tocoo()
    ratings = spark.createDataFrame(
        pd.DataFrame(
            {
                "user": coo.row.astype(np.int32),
                "item": coo.col.astype(np.int32),
                "rating": coo.data.astype(np.float32),
            }
        )
    ).cache()
    ratings.count()  # materialised before the clock starts, as implicit gets its matrix in memory
    als = ALS(
        rank=params.factors,
        maxIter=params.iterations,
        regParam=spark_reg_param(base, params),
        alpha=params.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=params.seed,
        coldStartStrategy="drop",
    )
    started = clock()
    model = als.fit(ratings)
    model.userFactors.count()
    fit_s = clock() - started

    started = clock()
    top = _top_k(spark, model, ratings, len(base.item_ids), params.factors, k)
    users = spark.createDataFrame(
        pd.DataFrame({"user": np.arange(len(base.user_ids), dtype=np.int32), "uid": base.user_ids})
    )
    items = spark.createDataFrame(
        pd.DataFrame({"item": np.arange(len(base.item_ids), dtype=np.int32), "song_id": base.item_ids})
    )
    named = (
        top.join(F.broadcast(users), "user")
        .join(F.broadcast(items), "item")
        .select("uid", "rank", "song_id", F.col("score").cast("double").alias("score"))
    )
    named.write.mode("overwrite").parquet(str(out))
    lists = cast(pd.DataFrame, spark.read.parquet(str(out)).toPandas()).sort_values(["uid", "rank"])
    top_lists = {int(u): g["song_id"].astype(int).tolist() for u, g in lists.groupby("uid", sort=False)}
    recommend_s = clock() - started

    recommender = SparkRecommender(
        base,
        _factors(model.userFactors, len(base.user_ids), params.factors),
        _factors(model.itemFactors, len(base.item_ids), params.factors),
        top_lists,
    )
    ratings.unpersist()
    return SparkAlsRun(recommender, fit_s, recommend_s, out)
