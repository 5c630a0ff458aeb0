"""The recommender experiment of `musicbox batch train-als` and `retrain`: ratings windows, ALS
chosen on a validation window, evaluated on a later window against popularity, Spark beside it.

Windows around the as-of day D (W = the evaluation window, 7 days by default):

    selection: ratings of the 30 days ending D-W  ->  validation: days D-W+1..D   (grid search)
    final:     ratings of the 30 days ending D    ->  test:       days D+1..D+W   (the figures)

The test window never overlaps anything the served model or its hyperparameters saw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
from pyspark.sql import SparkSession

from batch.errors import TrainingError
from batch.promotion import ServedScore
from batch.steps import Steps, quiet_steps
from models.als import DEFAULT_PARAMS, AlsModel, AlsParams, train_als
from models.als_evaluation import (
    AUC_USERS,
    AlsSelection,
    SegmentResult,
    Trial,
    evaluate_recommenders,
    select_als,
)
from models.errors import ModelError
from models.metadata import TrainingInfo, fingerprint
from models.popularity import PopularityModel
from models.ranking_metrics import RankingMetrics, mean_metrics, relevant_items
from models.ratings import DEFAULT_WINDOW_D, RatingAccumulator
from models.registry import current_version, load_als, read_metadata

DEFAULT_EVAL_WINDOW_D = 7
PROMOTION_METRIC = "ndcg"  # NDCG@k of every test user, served as the worker serves them


@dataclass(frozen=True)
class AlsWindows:
    as_of: date  # last day of the final training window
    eval_window_d: int = DEFAULT_EVAL_WINDOW_D
    rating_window_d: int = DEFAULT_WINDOW_D

    def _span(self, last: date, days: int) -> tuple[date, date]:
        return last - timedelta(days=days - 1), last

    @property
    def train(self) -> tuple[date, date]:
        return self._span(self.as_of, self.rating_window_d)

    @property
    def test(self) -> tuple[date, date]:
        return self._span(self.as_of + timedelta(days=self.eval_window_d), self.eval_window_d)

    @property
    def selection_train(self) -> tuple[date, date]:
        return self._span(self.as_of - timedelta(days=self.eval_window_d), self.rating_window_d)

    @property
    def validation(self) -> tuple[date, date]:
        return self._span(self.as_of, self.eval_window_d)

    @property
    def needed(self) -> tuple[date, date]:
        """The days of events the four windows read."""
        return self.selection_train[0], self.test[1]

    def to_dict(self) -> dict[str, list[str]]:
        names = ("train", "test", "selection_train", "validation")
        return {n: [d.isoformat() for d in getattr(self, n)] for n in names}


def default_windows(
    first_day: date,
    last_day: date,
    eval_window_d: int = DEFAULT_EVAL_WINDOW_D,
    rating_window_d: int = DEFAULT_WINDOW_D,
    as_of: date | None = None,
) -> AlsWindows:
    """The windows ending with the data (as-of = last day - W), or around `as_of`; refused when
    the logs do not cover them."""
    windows = AlsWindows(as_of or last_day - timedelta(days=eval_window_d), eval_window_d, rating_window_d)
    first, last = windows.needed
    if first < first_day or last > last_day:
        need = (last - first).days + 1
        raise TrainingError(
            f"the ALS windows need events of {first}..{last} ({need} days) but the logs hold "
            f"{first_day}..{last_day}: choose another --as-of, or shorter --eval-window-d / --rating-window-d"
        )
    return windows


@dataclass(frozen=True)
class AlsRatings:
    selection_train: pd.DataFrame
    validation: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {"pairs": len(f), "users": int(f["uid"].nunique()), "songs": int(f["song_id"].nunique())}
            for name, f in asdict_frames(self).items()
        }


def asdict_frames(ratings: AlsRatings) -> dict[str, pd.DataFrame]:
    return {n: getattr(ratings, n) for n in ("selection_train", "validation", "train", "test")}


def build_ratings(event_days: Iterable[pd.DataFrame], windows: AlsWindows) -> AlsRatings:
    """The four ratings frames, folding the events in day by day (memory: per-day counts only)."""
    long = RatingAccumulator(windows.rating_window_d)
    for frame in event_days:
        long.add(frame)
    short = RatingAccumulator(windows.eval_window_d).merge(long)
    return AlsRatings(
        selection_train=long.ratings(windows.selection_train[1].isoformat()),
        validation=short.ratings(windows.validation[1].isoformat()),
        train=long.ratings(windows.train[1].isoformat()),
        test=short.ratings(windows.test[1].isoformat()),
    )


def system_metrics(
    als: AlsModel, popularity: PopularityModel, train: pd.DataFrame, test: pd.DataFrame, k: int = 10
) -> RankingMetrics:
    """@k metrics over EVERY test user, each served as the worker serves: ALS for users it knows,
    popularity (minus the songs they rated) for the others. Comparable between two models."""
    relevant = relevant_items(train, test)
    seen = train.groupby("uid")["song_id"].agg(set)
    warm = [u for u in relevant if als.knows(u)]
    lists = als.recommend_many(warm, k) if warm else {}
    for u in relevant:
        if u not in lists:
            lists[u] = [s for s, _ in popularity.recommend(k, seen.get(u, set()))]
    return mean_metrics(lists, relevant, k)


@dataclass(frozen=True)
class AlsConfig:
    grid: Mapping[str, Sequence[Any]] | None = None  # None: no search, `base` as it is
    base: AlsParams = DEFAULT_PARAMS
    k: int = 10
    auc_users: int = AUC_USERS
    spark_out: Path | None = None  # where Spark's top-K goes; None: Spark ALS is not run
    seed: int = 0


@dataclass
class AlsExperiment:
    windows: AlsWindows
    ratings: AlsRatings
    model: AlsModel
    popularity: PopularityModel
    fit_time_s: float
    segments: list[SegmentResult]
    system: RankingMetrics
    selection: AlsSelection | None = None
    spark: dict[str, Any] | None = None
    config: AlsConfig = field(default_factory=AlsConfig)

    def metrics(self) -> dict[str, Any]:
        return {
            PROMOTION_METRIC: self.system.ndcg,
            "k": self.config.k,
            "system": asdict(self.system),
            "segments": [asdict(s) for s in self.segments],
            "params": asdict(self.model.params),
            "fit_time_s": self.fit_time_s,
            "windows": self.windows.to_dict(),
            "ratings": self.ratings.counts(),
            "selection": None
            if self.selection is None
            else {
                "best": asdict(self.selection.best),
                "trials": [
                    {**asdict(t.params), "ndcg": t.ndcg, "precision": t.precision, "fit_time_s": t.fit_time_s}
                    for t in self.selection.trials
                ],
            },
            "spark": self.spark,
            "cold_start": "users without training ratings get popularity: the songs with the most "
            "distinct listeners in the training window (ALS has no factors for them)",
        }

    def training_info(self, metrics: dict[str, Any]) -> TrainingInfo:
        first, last = self.windows.train
        return TrainingInfo((first.isoformat(), last.isoformat()), fingerprint(self.ratings.train), metrics)


def run_als_experiment(
    ratings: AlsRatings,
    windows: AlsWindows,
    config: AlsConfig,
    *,
    spark: SparkSession | None = None,
    steps: Steps | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> AlsExperiment:
    steps = steps or quiet_steps()
    params, selection = config.base, None
    if config.grid:
        with steps.step("ALS hyperparameters on the validation window", f"{_points(config.grid)} fits"):

            def shown(i: int, points: int, trial: Trial) -> None:
                fit = f"{trial.fit_time_s:.1f} s fit"
                steps.note(f"{i}/{points} {trial.params}: NDCG@{config.k} {trial.ndcg:.4f} ({fit})")

            selection = select_als(
                ratings.selection_train,
                ratings.validation,
                config.grid,
                config.base,
                k=config.k,
                clock=clock,
                on_trial=shown,
            )
            params = selection.best
            steps.note(f"best: {params}")
    with steps.step("implicit ALS on the training window", f"{len(ratings.train):,} ratings"):
        model, fit_s = train_als(ratings.train, params, clock)
        popularity = PopularityModel.fit(ratings.train)
    with steps.step("evaluation on the test window", f"{len(ratings.test):,} ratings"):
        segments = evaluate_recommenders(
            model,
            popularity,
            ratings.train,
            ratings.test,
            k=config.k,
            auc_users=config.auc_users,
            seed=config.seed,
        )
        system = system_metrics(model, popularity, ratings.train, ratings.test, config.k)
    experiment = AlsExperiment(
        windows, ratings, model, popularity, fit_s, segments, system, selection, None, config
    )
    if config.spark_out is not None:
        if spark is None:
            raise TrainingError("Spark ALS needs a SparkSession")
        from batch.spark_als import run_spark_als, spark_reg_param

        with steps.step("Spark MLlib ALS on the same matrix"):
            run = run_spark_als(spark, model, params, config.spark_out, k=config.k, clock=clock)
            spark_segments = evaluate_recommenders(
                cast(AlsModel, run.recommender),
                popularity,
                ratings.train,
                ratings.test,
                k=config.k,
                auc_users=config.auc_users,
                seed=config.seed,
            )
            warm = next(s for s in spark_segments if s.model == "als")
            experiment.spark = {
                "fit_time_s": run.fit_time_s,
                "reg_param": spark_reg_param(model, params),
                "recommend_time_s": run.recommend_time_s,
                "fit_time_ratio_spark_over_implicit": run.fit_time_s / fit_s if fit_s > 0 else None,
                "warm": asdict(warm.metrics),
                "out": str(run.out),
            }
    return experiment


def served_als_score(root: Path, ratings: AlsRatings, k: int = 10) -> ServedScore | None:
    """The served ALS (+ its popularity fallback) measured like the new one on the new test window."""
    version = current_version(root, "als")
    if version is None:
        return None
    try:
        recorded = read_metadata(root, "als", version).metrics.get(PROMOTION_METRIC)
        loaded = load_als(root, version)
    except ModelError as exc:
        return ServedScore(version, None, None, str(exc))
    value = system_metrics(loaded.als, loaded.popularity, ratings.train, ratings.test, k).ndcg
    return ServedScore(version, value, recorded)


def _points(grid: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(values) for values in grid.values())
