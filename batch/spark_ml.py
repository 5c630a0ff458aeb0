"""The churn families through Spark ML (logistic regression, GBT): the distributed path.

They learn from exactly the rows scikit-learn learns from (same validation split, same bot
exclusion, same design matrix), and are evaluated by the same code: `SparkClassifier` gives a
fitted Spark pipeline the small part of the scikit-learn interface that `models.churn` and
`models.churn_metrics` use (`predict_proba`, `classes_`, importances). `fit_pipeline` takes a
Spark DataFrame, so a cluster job can feed it a Spark-side table of the same columns directly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.errors import TrainingError
from models.churn import DEVICE_COLUMNS, ENCODED_NAMES, ChurnModel, design_matrix, labels, split_bots
from models.churn_experiment import TrainedChurn
from models.churn_metrics import DEFAULT_RECALL_TARGET, threshold_for_recall
from models.churn_splits import validation_split
from musicbox.features import NUMERIC_FEATURES

SPARK_FAMILIES: tuple[str, ...] = ("spark_logreg", "spark_gbt")
# LR: Spark's defaults (no penalty; scikit-learn's C=1 is a light one on these row counts).
# GBT: the depth of the study's gradient boosting; 50 rounds keep it to minutes on 2 cores.
DEFAULT_SPARK_PARAMS: dict[str, dict[str, Any]] = {
    "spark_logreg": {"maxIter": 100, "regParam": 0.0},
    "spark_gbt": {"maxIter": 50, "maxDepth": 5},
}
_ROW, _LABEL = "_row", "label"
_LOG_PREFIX = "log1p_"


def pipeline(family: str, params: dict[str, Any], seed: int) -> Pipeline:
    """Spark twins of models.churn's families: log1p + scaling + LR, or GBT on the raw columns."""
    if family == "spark_logreg":
        # The same log1p(max(x, 0)) of the counts and seconds as the scikit-learn pipeline.
        logs = ", ".join(f"log1p(greatest(`{c}`, 0D)) AS `{_LOG_PREFIX}{c}`" for c in NUMERIC_FEATURES)
        inputs = [f"{_LOG_PREFIX}{c}" for c in NUMERIC_FEATURES] + list(DEVICE_COLUMNS)
        stages: list[Any] = [
            SQLTransformer(statement=f"SELECT *, {logs} FROM __THIS__"),
            VectorAssembler(inputCols=inputs, outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features", withMean=True, withStd=True),
            LogisticRegression(labelCol=_LABEL, featuresCol="features", **params),
        ]
    elif family == "spark_gbt":
        stages = [
            VectorAssembler(inputCols=list(ENCODED_NAMES), outputCol="features"),
            GBTClassifier(labelCol=_LABEL, featuresCol="features", seed=seed, **params),
        ]
    else:
        raise TrainingError(f"unknown Spark family {family!r}: choose one of {', '.join(SPARK_FAMILIES)}")
    return Pipeline(stages=stages)


def design_frame(spark: SparkSession, x: np.ndarray, y: np.ndarray | None = None) -> DataFrame:
    """A Spark DataFrame of the design matrix (ENCODED_NAMES, a row number, and the label if given)."""
    frame = pd.DataFrame(x, columns=list(ENCODED_NAMES))
    frame[_ROW] = np.arange(len(frame), dtype=np.int64)
    if y is not None:
        frame[_LABEL] = y.astype(np.float64)
    return spark.createDataFrame(frame)


def fit_pipeline(train: DataFrame, family: str, params: dict[str, Any], seed: int = 0) -> PipelineModel:
    """Fit on a Spark DataFrame of ENCODED_NAMES + `label` (0/1 doubles)."""
    return pipeline(family, params, seed).fit(train)


class SparkClassifier:
    """A fitted Spark pipeline behind the scikit-learn calls that models.churn makes."""

    classes_ = np.array([0, 1])

    def __init__(self, spark: SparkSession, model: PipelineModel) -> None:
        self.spark, self.model = spark, model
        self._memo: dict[tuple[tuple[int, ...], str], np.ndarray] = {}
        final = model.stages[-1]
        if hasattr(final, "featureImportances"):
            self.feature_importances_ = final.featureImportances.toArray()
        else:
            self.coef_ = final.coefficients.toArray()  # type: ignore[attr-defined]  # on standardized log1p features, like sklearn's

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        # The evaluation scores the same validation and test rows more than once (threshold,
        # metrics, curves); each Spark pass is a job of a second or more, so repeats are served
        # from memory. One-row latency probes still run Spark: that cost is what they measure.
        key = (x.shape, hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest())
        if len(x) > 1 and key in self._memo:
            return self._memo[key]
        out = self._predict(x)
        if len(x) > 1:
            self._memo[key] = out
        return out

    def _predict(self, x: np.ndarray) -> np.ndarray:
        scored = self.model.transform(design_frame(self.spark, x)).select(
            _ROW, vector_to_array(F.col("probability"))[1].alias("p")
        )
        p = cast(pd.DataFrame, scored.toPandas()).sort_values(_ROW)["p"].to_numpy(dtype=np.float64)
        return np.column_stack([1.0 - p, p])


def train_spark_churn(
    spark: SparkSession,
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
    """models.churn_experiment.train_churn through Spark ML: the same fit rows and validation rows."""
    fit_part, validation = validation_split(train, validation_fraction, seed)
    rows, bots = split_bots(fit_part, exclude_bots)
    effective = {**DEFAULT_SPARK_PARAMS[family], **(params or {})} if family in DEFAULT_SPARK_PARAMS else {}
    frame = design_frame(spark, design_matrix(rows), labels(rows)).cache()
    frame.count()  # materialise the input outside the fit timing, as scikit-learn gets it in memory
    started = clock()
    fitted = fit_pipeline(frame, family, effective, seed)
    elapsed_s = clock() - started
    frame.unpersist()
    model = ChurnModel(family, effective, SparkClassifier(spark, fitted), exclude_bots=exclude_bots)
    val_rows, val_bots = split_bots(validation, exclude_bots)
    model.threshold = threshold_for_recall(labels(val_rows), model.predict_proba(val_rows), recall_target)
    return TrainedChurn(model, validation, len(rows), bots + val_bots, elapsed_s)
