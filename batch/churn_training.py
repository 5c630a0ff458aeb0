"""The churn experiment of `musicbox batch train-churn` and `retrain`: every family on both setups,
cross-validated, with curves, and the model to serve.

Setups (models.churn_splits): `time` trains on earlier snapshots and tests on the test day;
`study` is the study's own 80/20 split of the test-day snapshot, for its table. The served
model is the `time` setup's model of the chosen family: what could have been trained on the
test day itself, so its recorded metrics describe exactly the artifact that is saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from batch.errors import TrainingError
from batch.promotion import ServedScore
from batch.steps import Steps, quiet_steps
from models.churn import FAMILIES, labels, limit_threads, split_bots
from models.churn_experiment import TrainedChurn, cross_validate_auc, train_churn
from models.churn_metrics import DEFAULT_RECALL_TARGET, ChurnEvaluation, evaluate_churn
from models.churn_splits import STUDY_SEED, Split, as_of_days, study_split, time_split
from models.errors import ModelError
from models.metadata import TrainingInfo, fingerprint
from models.registry import current_version, load_churn, read_metadata
from musicbox.features import LOOKBACK_D, UID

CURVE_POINTS = 101  # points kept per curve in the metadata: enough for a plot, small in JSON
CALIBRATION_BINS = 10
SCIKIT, SPARK = "scikit-learn", "spark-ml"


@dataclass(frozen=True)
class ChurnConfig:
    test_as_of: date
    families: Sequence[str] = FAMILIES
    spark_families: Sequence[str] = ()  # Spark ML twins to run too (needs a SparkSession)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    spark_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    setups: Sequence[str] = ("time", "study")
    serve: str | None = None  # None: the best time-setup ROC AUC of the scikit-learn families
    recall_target: float = DEFAULT_RECALL_TARGET
    cv_folds: int = 5  # 0: no cross-validation
    cv_max_rows: int = 50_000  # a user sample of at most this many rows is cross-validated
    exclude_bots: bool = True
    label_window_d: int = 14
    seed: int = 0


def _thin(*arrays: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    n = len(arrays[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int))
    return [[round(float(v), 6) for v in a[keep]] for a in arrays]


def curves(y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """ROC, precision-recall (with thresholds) and calibration points, thinned for the metadata."""
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, thresholds = precision_recall_curve(y, score)
    # precision/recall have one more point than thresholds (recall 0 at "flag nobody").
    pr_t, pr_p, pr_r = _thin(thresholds, precision[:-1], recall[:-1])
    roc_f, roc_t = _thin(fpr, tpr)
    frac, mean_p = calibration_curve(y, np.clip(score, 0, 1), n_bins=CALIBRATION_BINS, strategy="quantile")
    return {
        "roc": {"fpr": roc_f, "tpr": roc_t},
        "pr": {"threshold": pr_t, "precision": pr_p, "recall": pr_r},
        "calibration": {"mean_predicted": _thin(mean_p)[0], "fraction_churned": _thin(frac)[0]},
    }


def cv_sample(table: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most about `max_rows` rows, whole users chosen at random (CV folds keep users whole)."""
    if len(table) <= max_rows:
        return table
    uids = table[UID].unique()
    chosen = np.random.default_rng(seed).choice(
        uids, size=max(2, len(uids) * max_rows // len(table)), replace=False
    )
    return table.loc[table[UID].isin(chosen).to_numpy()]


@dataclass
class ChurnExperiment:
    served: TrainedChurn
    served_evaluation: ChurnEvaluation
    served_split: Split
    results: list[dict[str, Any]]  # one per (setup, library, family)
    splits: dict[str, dict[str, Any]]
    config: ChurnConfig

    def metrics(self) -> dict[str, Any]:
        """What goes into the registry metadata: the served model's headline metrics first (the
        promotion gate reads `roc_auc`), then every result the report draws."""
        ev = self.served_evaluation
        return {
            "roc_auc": ev.model.roc_auc,
            "pr_auc": ev.model.pr_auc,
            "brier": ev.model.brier,
            "threshold": self.served.model.threshold,
            "family": ev.family,
            "setup": ev.setup,
            "test_as_of": self.config.test_as_of.isoformat(),
            "recall_target": self.config.recall_target,
            "splits": self.splits,
            "results": self.results,
        }

    def training_info(self, metrics: dict[str, Any]) -> TrainingInfo:
        """Training window: from the first training snapshot's feature window to the last one's labels."""
        days = sorted(set(as_of_days(self.served_split.train)))
        first = date.fromisoformat(days[0]) - timedelta(days=LOOKBACK_D - 1)
        last = date.fromisoformat(days[-1]) + timedelta(days=self.config.label_window_d)
        return TrainingInfo(
            (first.isoformat(), last.isoformat()), fingerprint(self.served_split.train), metrics
        )


def _split(table: pd.DataFrame, setup: str, config: ChurnConfig) -> Split:
    if setup == "time":
        return time_split(table, config.test_as_of, config.label_window_d)
    if setup == "study":
        return study_split(table, config.test_as_of, seed=STUDY_SEED)
    raise TrainingError(f"unknown setup {setup!r}: use time or study")


def _result(
    trained: TrainedChurn, split: Split, library: str, config: ChurnConfig, clock: Callable[[], float]
) -> tuple[ChurnEvaluation, dict[str, Any]]:
    ev = evaluate_churn(
        trained.model,
        trained.validation,
        split.test,
        setup=split.name,
        train_time_s=trained.train_time_s,
        recall_target=config.recall_target,
        seed=config.seed,
        clock=clock,
    )
    rows, _ = split_bots(split.test, trained.model.exclude_bots)
    result = {"library": library, "fit_rows": trained.fit_rows, **ev.to_dict(), "cv": None}
    result["curves"] = curves(labels(rows), trained.model.predict_proba(rows))
    return ev, result


def run_churn_experiment(
    table: pd.DataFrame,
    config: ChurnConfig,
    *,
    spark: SparkSession | None = None,
    steps: Steps | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ChurnExperiment:
    """Train and evaluate every family on every setup; pick the served model (time setup)."""
    from batch.spark_ml import train_spark_churn  # Spark ML only when asked for

    steps = steps or quiet_steps()
    if "time" not in config.setups:
        raise TrainingError("the time setup is needed: the served model is trained on it")
    if config.serve is not None and config.serve not in config.families:
        raise TrainingError(f"--serve {config.serve} is not among --families {', '.join(config.families)}")
    results: list[dict[str, Any]] = []
    splits: dict[str, dict[str, Any]] = {}
    timed: dict[str, tuple[TrainedChurn, ChurnEvaluation]] = {}
    time_split_ = _split(table, "time", config)
    for setup in config.setups:
        split = time_split_ if setup == "time" else _split(table, setup, config)
        splits[setup] = {
            "description": split.description,
            "train_rows": len(split.train),
            "test_rows": len(split.test),
            "train_days": sorted(set(as_of_days(split.train))),
        }
        for family in config.families:
            with steps.step(f"{setup} setup: {family}", f"{len(split.train):,} training rows"):
                trained = train_churn(
                    split.train,
                    family,
                    config.params.get(family),
                    recall_target=config.recall_target,
                    exclude_bots=config.exclude_bots,
                    seed=config.seed,
                    clock=clock,
                )
                ev, result = _result(trained, split, SCIKIT, config, clock)
                if config.cv_folds > 1:
                    sample = cv_sample(split.train, config.cv_max_rows, config.seed)
                    # One native thread, as for the fits: OpenMP's spinning threads on two shared
                    # cores made HistGradientBoosting's folds 10x slower.
                    with limit_threads(trained.model.threads):
                        cv = cross_validate_auc(
                            sample,
                            family,
                            config.params.get(family),
                            folds=config.cv_folds,
                            exclude_bots=config.exclude_bots,
                            seed=config.seed,
                        )
                    result["cv"] = {
                        "folds": cv.folds,
                        "rows": len(sample),
                        "roc_auc": cv.roc_auc,
                        "mean": cv.mean,
                        "std": cv.std,
                    }
                steps.note(f"ROC AUC {ev.model.roc_auc:.3f}, PR AUC {ev.model.pr_auc:.3f}")
                results.append(result)
                if setup == "time":
                    timed[family] = (trained, ev)
        for family in config.spark_families:
            if spark is None:
                raise TrainingError("Spark ML families need a SparkSession")
            with steps.step(f"{setup} setup: {family} (Spark ML)", f"{len(split.train):,} training rows"):
                trained = train_spark_churn(
                    spark,
                    split.train,
                    family,
                    config.spark_params.get(family),
                    recall_target=config.recall_target,
                    exclude_bots=config.exclude_bots,
                    seed=config.seed,
                    clock=clock,
                )
                ev, result = _result(trained, split, SPARK, config, clock)
                steps.note(f"ROC AUC {ev.model.roc_auc:.3f}, PR AUC {ev.model.pr_auc:.3f}")
                results.append(result)
    if not timed:
        raise TrainingError("no scikit-learn family was trained: name at least one to serve")
    serve = config.serve or max(timed, key=lambda f: timed[f][1].model.roc_auc)
    trained, ev = timed[serve]
    return ChurnExperiment(trained, ev, time_split_, results, splits, config)


def served_churn_score(root: Path, test: pd.DataFrame) -> ServedScore | None:
    """The served churn model's ROC AUC on `test` (the new model's test rows); None if none is served."""
    version = current_version(root, "churn")
    if version is None:
        return None
    try:
        recorded = read_metadata(root, "churn", version).metrics.get("roc_auc")
        loaded = load_churn(root, version)
    except ModelError as exc:
        return ServedScore(version, None, None, str(exc))
    rows = test.loc[loaded.model.scorable(test)]
    y = labels(rows)
    if len(np.unique(y)) < 2:
        return ServedScore(version, None, recorded, "the test rows hold a single class")
    return ServedScore(version, float(roc_auc_score(y, loaded.model.predict_proba(rows))), recorded)
