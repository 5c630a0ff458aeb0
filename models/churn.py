"""Churn classifiers on the feature table of DESIGN section 5: encoding, families, fit, batched scoring.

The model input is built by one function (`design_matrix`) at fit and at predict time, so a
served model sees exactly the columns, order and device encoding it was trained on. Bots
(`is_bot`) are left out of training and scoring when `exclude_bots` says so, and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import ThreadpoolController

from models.errors import ModelInputError
from musicbox.features import DEVICE, DEVICE_UNKNOWN, FEATURE_NAMES, IS_BOT, LABEL, NUMERIC_FEATURES

FAMILIES: tuple[str, ...] = ("logreg", "random_forest", "gradient_boosting", "hist_gradient_boosting")

# The study's settings where it had them (RF 50 trees depth 20, GB 100 trees depth 5).
# n_jobs=1: the machines this runs on have two cores shared with the streaming stack.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logreg": {"C": 1.0, "max_iter": 1000},
    "random_forest": {"n_estimators": 50, "max_depth": 20, "n_jobs": 1},
    "gradient_boosting": {"n_estimators": 100, "max_depth": 5},
    "hist_gradient_boosting": {"max_iter": 200, "learning_rate": 0.1},
}

# Device one-hot: the two devices of the logs, everything rarer (`mc`, ...) as `other`,
# and `unknown` for users without plays (or a null device).
DEVICES: tuple[str, ...] = ("ar", "ip", "other", DEVICE_UNKNOWN)
DEVICE_COLUMNS: tuple[str, ...] = tuple(f"{DEVICE}_{d}" for d in DEVICES)
ENCODED_NAMES: tuple[str, ...] = (*NUMERIC_FEATURES, *DEVICE_COLUMNS)

PREDICT_BATCH_ROWS = 65_536  # bounds the memory of one predict_proba call; batches stay fast
# Native (OpenMP, BLAS) threads for fit and predict. One by default: on two cores shared with
# Kafka and Spark, OpenMP's spinning threads made HistGradientBoosting's fit 13x slower.
DEFAULT_THREADS = 1


@cache
def _threadpools() -> ThreadpoolController:
    """Built once, on first use (listing the loaded native libraries costs ~5 ms a time)."""
    return ThreadpoolController()


def limit_threads(threads: int) -> Any:
    """A context limiting every native thread pool (OpenMP, BLAS) to `threads`."""
    return _threadpools().limit(limits=threads)


def log1p_nonnegative(x: np.ndarray) -> np.ndarray:
    """log(1 + x) of counts and seconds: their tails span 5 orders of magnitude, which a linear
    model cannot use raw. Module-level so that a saved pipeline refers to it by name."""
    return np.log1p(np.maximum(x, 0.0))


def device_one_hot(device: pd.Series) -> np.ndarray:
    """(n, 4) float matrix of DEVICES; null and empty mean `unknown`, any other code `other`."""
    text = device.astype("object").where(device.notna(), DEVICE_UNKNOWN).astype(str).str.strip().str.lower()
    text = text.where(text != "", DEVICE_UNKNOWN)
    codes = np.full(len(text), DEVICES.index("other"))
    for i, name in enumerate(DEVICES):
        codes[(text == name).to_numpy()] = i
    out = np.zeros((len(text), len(DEVICES)))
    out[np.arange(len(text)), codes] = 1.0
    return out


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModelInputError(
            f"{what} lacks columns {missing}: build it with `musicbox batch features` "
            "(the columns of musicbox.features)"
        )


def design_matrix(df: pd.DataFrame) -> np.ndarray:
    """The model input of every family: NUMERIC_FEATURES in contract order, then the device one-hot."""
    require_columns(df, [*NUMERIC_FEATURES, DEVICE], "the feature table")
    numeric = df[list(NUMERIC_FEATURES)].to_numpy(dtype=np.float64)
    if np.isnan(numeric).any():
        bad = [c for c in NUMERIC_FEATURES if df[c].isna().any()]
        raise ModelInputError(f"null values in feature columns {bad}: features are never null by contract")
    return np.hstack([numeric, device_one_hot(df[DEVICE])])


def labels(df: pd.DataFrame) -> np.ndarray:
    """The churn label as 0/1 ints; refuses rows whose label is unknown."""
    require_columns(df, [LABEL], "the training table")
    if df[LABEL].isna().any():
        raise ModelInputError(
            f"{int(df[LABEL].isna().sum())} rows have no `{LABEL}` label (their 14-day label window "
            "is not in the data): choose an earlier as-of"
        )
    return df[LABEL].astype(int).to_numpy()


def split_bots(df: pd.DataFrame, exclude_bots: bool) -> tuple[pd.DataFrame, int]:
    """(rows to train on or score, number of bot rows left out)."""
    if not exclude_bots:
        return df, 0
    require_columns(df, [IS_BOT], "the feature table")
    is_bot = df[IS_BOT].fillna(False).astype(bool).to_numpy()
    return df.loc[~is_bot], int(is_bot.sum())


def build_estimator(family: str, params: dict[str, Any] | None = None, seed: int = 0) -> tuple[Any, dict]:
    """An unfitted sklearn classifier of `family` and the effective parameters (defaults + overrides)."""
    if family not in DEFAULT_PARAMS:
        raise ModelInputError(f"unknown model family {family!r}: choose one of {', '.join(FAMILIES)}")
    effective = {**DEFAULT_PARAMS[family], **(params or {})}
    try:
        if family == "logreg":
            estimator: Any = make_pipeline(
                FunctionTransformer(log1p_nonnegative),
                StandardScaler(),
                LogisticRegression(random_state=seed, **effective),
            )
        elif family == "random_forest":
            estimator = RandomForestClassifier(random_state=seed, **effective)
        elif family == "gradient_boosting":
            estimator = GradientBoostingClassifier(random_state=seed, **effective)
        else:
            estimator = HistGradientBoostingClassifier(random_state=seed, **effective)
    except TypeError as exc:
        raise ModelInputError(f"bad parameters for {family}: {exc}") from exc
    return estimator, effective


@dataclass
class ChurnModel:
    """A fitted churn classifier: P(churn) for feature rows, and the served decision threshold."""

    family: str
    params: dict[str, Any]
    estimator: Any
    threshold: float = 0.5
    exclude_bots: bool = True
    feature_names: tuple[str, ...] = FEATURE_NAMES  # the contract list it was trained against
    encoded_names: tuple[str, ...] = field(default=ENCODED_NAMES)  # its input columns, in order
    threads: int = DEFAULT_THREADS  # a runtime setting, not saved with the model

    def predict_proba(self, df: pd.DataFrame, batch_rows: int = PREDICT_BATCH_ROWS) -> np.ndarray:
        """P(churn) per row of `df`, computed in batches (one-row calls are 10-100x slower)."""
        x = design_matrix(df)
        positive = int(np.flatnonzero(np.asarray(self.estimator.classes_) == 1)[0])
        out = np.empty(len(x))
        with limit_threads(self.threads):
            for start in range(0, len(x), batch_rows):
                batch = x[start : start + batch_rows]
                out[start : start + batch_rows] = self.estimator.predict_proba(batch)[:, positive]
        return out

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Churn decisions (bool) at the model's threshold."""
        return self.predict_proba(df) >= self.threshold

    def scorable(self, df: pd.DataFrame) -> np.ndarray:
        """Mask of the rows this model scores: all, or all but bots when it excludes them."""
        if not self.exclude_bots:
            return np.ones(len(df), dtype=bool)
        require_columns(df, [IS_BOT], "the feature table")
        return ~df[IS_BOT].fillna(False).astype(bool).to_numpy()


@dataclass(frozen=True)
class FitResult:
    model: ChurnModel
    rows: int  # training rows used (bots excluded)
    bots_excluded: int
    churn_rate: float
    train_time_s: float


def fit_churn(
    train: pd.DataFrame,
    family: str,
    params: dict[str, Any] | None = None,
    *,
    exclude_bots: bool = True,
    threshold: float = 0.5,
    seed: int = 0,
    threads: int = DEFAULT_THREADS,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Fit one family on a labelled feature table; the threshold is the caller's choice."""
    rows, bots = split_bots(train, exclude_bots)
    if rows.empty:
        raise ModelInputError("no training rows left after excluding bots: the feature table is empty")
    y = labels(rows)
    if len(np.unique(y)) < 2:
        raise ModelInputError(
            f"all {len(y)} training rows have churn={y[0]}: a classifier needs both classes"
        )
    x = design_matrix(rows)
    estimator, effective = build_estimator(family, params, seed)
    started = clock()
    with limit_threads(threads):
        estimator.fit(x, y)
    elapsed_s = clock() - started
    model = ChurnModel(family, effective, estimator, threshold, exclude_bots, threads=threads)
    return FitResult(model, len(rows), bots, float(y.mean()), elapsed_s)
