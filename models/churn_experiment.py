"""Training runs of the churn study: fit with a held-out validation set, cross-validate, evaluate.

`train_churn` is what retraining calls: it holds out validation rows (users kept whole), fits
on the rest, and serves the highest threshold that reaches the recall target on validation.
`run_setup` trains and evaluates every family on one `Split` for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score

from models.churn import FAMILIES, ChurnModel, build_estimator, design_matrix, fit_churn, labels, split_bots
from models.churn_metrics import DEFAULT_RECALL_TARGET, ChurnEvaluation, evaluate_churn, threshold_for_recall
from models.churn_splits import Split, validation_split
from models.errors import ModelInputError
from musicbox.features import UID


@dataclass(frozen=True)
class TrainedChurn:
    model: ChurnModel  # its threshold reaches the recall target on `validation`
    validation: pd.DataFrame  # held-out rows (bots included; the model's setting decides)
    fit_rows: int
    bots_excluded: int
    train_time_s: float


def train_churn(
    train: pd.DataFrame,
    family: str,
    params: dict[str, Any] | None = None,
    *,
    recall_target: float = DEFAULT_RECALL_TARGET,
    validation_fraction: float = 0.2,
    exclude_bots: bool = True,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainedChurn:
    """Fit on (1 - validation_fraction) of the users, pick the served threshold on the rest."""
    fit_part, validation = validation_split(train, validation_fraction, seed)
    fitted = fit_churn(fit_part, family, params, exclude_bots=exclude_bots, seed=seed, clock=clock)
    val_rows, val_bots = split_bots(validation, exclude_bots)
    fitted.model.threshold = threshold_for_recall(
        labels(val_rows), fitted.model.predict_proba(val_rows), recall_target
    )
    return TrainedChurn(
        fitted.model, validation, fitted.rows, fitted.bots_excluded + val_bots, fitted.train_time_s
    )


@dataclass(frozen=True)
class CrossValidation:
    family: str
    folds: int
    roc_auc: list[float]  # one per fold, from probabilities

    @property
    def mean(self) -> float:
        return float(np.mean(self.roc_auc))

    @property
    def std(self) -> float:
        return float(np.std(self.roc_auc))


def cross_validate_auc(
    table: pd.DataFrame,
    family: str,
    params: dict[str, Any] | None = None,
    *,
    folds: int = 5,
    exclude_bots: bool = True,
    seed: int = 0,
) -> CrossValidation:
    """k-fold ROC AUC on predicted probabilities (the study's grid search scored hard labels).

    Folds keep a user's rows together when the table holds several snapshots of that user.
    """
    rows, _ = split_bots(table, exclude_bots)
    x, y = design_matrix(rows), labels(rows)
    estimator, _ = build_estimator(family, params, seed)
    groups = rows[UID].to_numpy() if UID in rows.columns else None
    if groups is not None and len(np.unique(groups)) < len(groups):
        cv: Any = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        cv, groups = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), None
    try:
        scores = cross_val_score(
            estimator, x, y, groups=groups, cv=cv, scoring="roc_auc", error_score="raise"
        )
    except ValueError as exc:
        raise ModelInputError(
            f"cannot cross-validate {family} with {folds} folds on {len(rows)} rows: {exc}"
        ) from exc
    return CrossValidation(family, folds, [float(s) for s in scores])


def run_setup(
    split: Split,
    families: Sequence[str] = FAMILIES,
    params: dict[str, dict[str, Any]] | None = None,
    *,
    recall_target: float = DEFAULT_RECALL_TARGET,
    exclude_bots: bool = True,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> list[tuple[TrainedChurn, ChurnEvaluation]]:
    """Train every family on `split.train` and evaluate it on `split.test`."""
    results = []
    for family in families:
        trained = train_churn(
            split.train,
            family,
            (params or {}).get(family),
            recall_target=recall_target,
            exclude_bots=exclude_bots,
            seed=seed,
            clock=clock,
        )
        evaluation = evaluate_churn(
            trained.model,
            trained.validation,
            split.test,
            setup=split.name,
            train_time_s=trained.train_time_s,
            recall_target=recall_target,
            seed=seed,
            clock=clock,
        )
        results.append((trained, evaluation))
    return results
