"""Churn model evaluation: metrics that mean what they say, beside the baselines a reader needs.

ROC AUC and PR AUC come from probabilities, never hard labels. Precision/recall/F1 are given
at 0.5 (the study's only threshold) and at the highest threshold that reaches a recall target
on VALIDATION data, then measured on test data. Two baselines: "everyone churns" (recall 1,
precision = base rate) and "recency only" (score = min(days_since_*)). Everything returned is a
plain dataclass a report can render (`dataclasses.asdict`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from models.churn import ChurnModel, design_matrix, labels, limit_threads, split_bots
from models.errors import ModelInputError
from musicbox.features import RECENCY

DEFAULT_RECALL_TARGET = 0.90
IMPORTANCE_ROWS = 2_000  # permutation importance repeats predict_proba per feature: keep it bounded
LATENCY_PROBES = 20


def threshold_for_recall(y: np.ndarray, score: np.ndarray, target: float = DEFAULT_RECALL_TARGET) -> float:
    """The highest threshold t such that flagging score >= t recalls at least `target` of positives."""
    if not 0.0 < target <= 1.0:
        raise ModelInputError(f"recall target {target} is not in (0, 1]")
    positives = int(np.sum(y == 1))
    if positives == 0:
        raise ModelInputError("no churners in the validation data: a recall target cannot be reached")
    order = np.argsort(-score, kind="stable")
    sorted_score, sorted_y = score[order], y[order]
    # Tied scores are flagged together: look at the last row of each run of equal scores.
    run_ends = np.flatnonzero(np.r_[sorted_score[1:] != sorted_score[:-1], True])
    recall = np.cumsum(sorted_y == 1)[run_ends] / positives
    return float(sorted_score[run_ends[np.argmax(recall >= target)]])


@dataclass(frozen=True)
class AtThreshold:
    threshold: float
    precision: float
    recall: float
    f1: float
    flagged_share: float  # the share of users flagged as churners (what a retention team must call)


def at_threshold(y: np.ndarray, score: np.ndarray, threshold: float) -> AtThreshold:
    flagged = score >= threshold
    p, r, f, _ = precision_recall_fscore_support(y, flagged.astype(int), average="binary", zero_division=0)
    return AtThreshold(float(threshold), float(p), float(r), float(f), float(flagged.mean()))


@dataclass(frozen=True)
class ScoreMetrics:
    """The metrics of one scorer (a model or a baseline) on test data."""

    name: str
    roc_auc: float
    pr_auc: float  # average precision: the step-wise area under the precision-recall curve
    brier: float | None  # only for probabilities
    at_half: AtThreshold | None  # only for probabilities
    at_target: AtThreshold  # threshold chosen on validation data for the recall target


def score_metrics(
    name: str,
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    recall_target: float,
    probabilities: bool,
) -> ScoreMetrics:
    """Metrics of a scorer: threshold from (y, score) on validation, everything else on test."""
    (y_val, s_val), (y_test, s_test) = validation, test
    if len(np.unique(y_test)) < 2:
        raise ModelInputError(
            "the test data holds a single class: ROC AUC is undefined, use a larger test set"
        )
    threshold = threshold_for_recall(y_val, s_val, recall_target)
    return ScoreMetrics(
        name=name,
        roc_auc=float(roc_auc_score(y_test, s_test)),
        pr_auc=float(average_precision_score(y_test, s_test)),
        brier=float(brier_score_loss(y_test, s_test)) if probabilities else None,
        at_half=at_threshold(y_test, s_test, 0.5) if probabilities else None,
        at_target=at_threshold(y_test, s_test, threshold),
    )


def recency_score(df: pd.DataFrame) -> np.ndarray:
    """The "recency only" baseline: days since the user's latest event of any type."""
    return df[list(RECENCY)].min(axis=1).to_numpy(dtype=np.float64)


def everyone_score(df: pd.DataFrame) -> np.ndarray:
    """The "everyone churns" baseline: the same certain churn for every user."""
    return np.ones(len(df))


@dataclass(frozen=True)
class Importance:
    name: str
    value: float


def importances(
    model: ChurnModel, df: pd.DataFrame, max_rows: int = IMPORTANCE_ROWS, seed: int = 0
) -> tuple[str, list[Importance]]:
    """(method, importances best first): native where the family has them, else permutation
    importance (drop in ROC AUC) on at most `max_rows` rows."""
    final = model.estimator.steps[-1][1] if hasattr(model.estimator, "steps") else model.estimator
    if hasattr(final, "feature_importances_"):
        method, values = "impurity", np.asarray(final.feature_importances_)
    elif hasattr(final, "coef_"):
        method, values = "abs_standardized_coefficient", np.abs(np.ravel(final.coef_))
    else:
        sample = df.sample(n=min(max_rows, len(df)), random_state=seed)
        with limit_threads(model.threads):
            result = permutation_importance(
                model.estimator,
                design_matrix(sample),
                labels(sample),
                scoring="roc_auc",
                n_repeats=3,
                random_state=seed,
            )
        method, values = f"permutation_roc_auc_{len(sample)}_rows", np.asarray(result.importances_mean)
    ranked = sorted(zip(model.encoded_names, values, strict=True), key=lambda kv: -kv[1])
    return method, [Importance(name, float(v)) for name, v in ranked]


@dataclass(frozen=True)
class ChurnEvaluation:
    """Everything the report says about one trained model on one setup."""

    family: str
    params: dict[str, Any]
    setup: str
    test_rows: int
    test_bots_excluded: int
    base_rate: float  # churn share of the test rows: the precision of "everyone churns"
    recall_target: float
    model: ScoreMetrics
    everyone: ScoreMetrics
    recency: ScoreMetrics
    lift: dict[str, float]
    importance_method: str
    importances: list[Importance]
    train_time_s: float
    predict_rows_per_s: float
    predict_one_row_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lifts(model: ScoreMetrics, everyone: ScoreMetrics, recency: ScoreMetrics) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    return {
        "pr_auc_vs_everyone": ratio(model.pr_auc, everyone.pr_auc),
        "precision_at_target_vs_everyone": ratio(model.at_target.precision, everyone.at_target.precision),
        "roc_auc_gain_vs_recency": model.roc_auc - recency.roc_auc,
        "pr_auc_vs_recency": ratio(model.pr_auc, recency.pr_auc),
        "precision_at_target_vs_recency": ratio(model.at_target.precision, recency.at_target.precision),
    }


def evaluate_churn(
    model: ChurnModel,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    *,
    setup: str,
    train_time_s: float,
    recall_target: float = DEFAULT_RECALL_TARGET,
    importance_rows: int = IMPORTANCE_ROWS,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> ChurnEvaluation:
    """Evaluate a fitted model on `test`, thresholds picked on `validation` (held out from training)."""
    val, _ = split_bots(validation, model.exclude_bots)
    rows, bots = split_bots(test, model.exclude_bots)
    y_val, y_test = labels(val), labels(rows)
    started = clock()
    p_test = model.predict_proba(rows)
    elapsed_s = clock() - started
    one_row_ms = []
    for i in range(min(LATENCY_PROBES, len(rows))):
        t0 = clock()
        model.predict_proba(rows.iloc[i : i + 1])
        one_row_ms.append((clock() - t0) * 1000)
    p_val = model.predict_proba(val)

    ours = score_metrics(model.family, (y_val, p_val), (y_test, p_test), recall_target, probabilities=True)
    everyone = score_metrics(
        "everyone_churns", (y_val, everyone_score(val)), (y_test, everyone_score(rows)), recall_target, True
    )
    recency = score_metrics(
        "recency_only", (y_val, recency_score(val)), (y_test, recency_score(rows)), recall_target, False
    )
    method, ranked = importances(model, rows, importance_rows, seed)
    return ChurnEvaluation(
        family=model.family,
        params=dict(model.params),
        setup=setup,
        test_rows=len(rows),
        test_bots_excluded=bots,
        base_rate=float(y_test.mean()),
        recall_target=recall_target,
        model=ours,
        everyone=everyone,
        recency=recency,
        lift=_lifts(ours, everyone, recency),
        importance_method=method,
        importances=ranked,
        train_time_s=train_time_s,
        predict_rows_per_s=len(rows) / elapsed_s if elapsed_s > 0 else float("inf"),
        predict_one_row_ms=float(np.median(one_row_ms)) if one_row_ms else float("nan"),
    )
