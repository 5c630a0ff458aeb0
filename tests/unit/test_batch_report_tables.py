"""Report tables from registry metrics, and the HTML document rendered from hand-made metadata."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest

from batch.report import ReportInputs, render
from batch.report_tables import (
    als_table,
    churn_summary,
    churn_table,
    fit_seconds,
    fmt,
    html_table,
    study_comparison,
    timings,
)
from models.metadata import ModelMetadata

# fmt: what a cell shows
FMT_CASES = [
    (None, 3, "-"),  # unknown
    (math.nan, 3, "-"),  # undefined (e.g. AUC of a single class)
    (0.86849, 3, "0.868"),  # three decimals by default
    (12345, 3, "12,345"),  # counts keep their thousands separator, no decimals
    (1.5, 1, "1.5"),  # seconds with one decimal
]


@pytest.mark.parametrize(("value", "digits", "text"), FMT_CASES)
def test_fmt(value: Any, digits: int, text: str) -> None:
    assert fmt(value, digits) == text


def scores(roc: float, pr: float, *, half: bool = True) -> dict[str, Any]:
    at = {"threshold": 0.3, "precision": 0.7, "recall": 0.9, "f1": 0.79, "flagged_share": 0.8}
    return {
        "roc_auc": roc,
        "pr_auc": pr,
        "brier": 0.15 if half else None,
        "at_half": {**at, "threshold": 0.5, "precision": 0.81, "recall": 0.77} if half else None,
        "at_target": at,
    }


def result(family: str, setup: str, roc: float, library: str = "scikit-learn") -> dict[str, Any]:
    curve = [0.0, 0.5, 1.0]
    return {
        "family": family,
        "setup": setup,
        "library": library,
        "model": scores(roc, roc + 0.02),
        "everyone": scores(0.5, 0.62, half=False),
        "recency": scores(0.84, 0.88, half=False),
        "lift": {"pr_auc_vs_everyone": 1.4, "roc_auc_gain_vs_recency": roc - 0.84},
        "base_rate": 0.62,
        "recall_target": 0.9,
        "train_time_s": 1.25,
        "predict_rows_per_s": 1e6,
        "predict_one_row_ms": 0.4,
        "importance_method": "impurity",
        "importances": [{"name": "days_since_play", "value": 0.5}, {"name": "plays_7d", "value": 0.2}],
        "cv": {"folds": 5, "mean": 0.8, "std": 0.01} if library == "scikit-learn" else None,
        "curves": {
            "roc": {"fpr": curve, "tpr": curve},
            "pr": {"threshold": curve, "precision": [0.6, 0.7, 1.0], "recall": [1.0, 0.5, 0.0]},
            "calibration": {"mean_predicted": curve, "fraction_churned": curve},
        },
    }


RESULTS = [
    result("logreg", "time", 0.83),
    result("gradient_boosting", "time", 0.81),
    result("spark_gbt", "time", 0.79, "spark-ml"),
    result("logreg", "study", 0.85),
    result("spark_gbt", "study", 0.80, "spark-ml"),
    result("hist_gradient_boosting", "study", 0.84),
]


def test_study_comparison_puts_ours_beside_the_studys_row_of_the_same_family() -> None:
    columns, rows = study_comparison(RESULTS)
    by_model = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    lr = by_model["logistic regression"]
    assert (lr["study AUC"], lr["study precision"], lr["study recall"]) == ("0.868", "0.810", "0.906")
    assert lr["ours (study setup) ROC AUC"] == "0.850" and lr["ours (time-based) ROC AUC"] == "0.830"
    gbt = by_model["Spark ML GBT"]
    assert (gbt["study AUC"], gbt["study precision"]) == ("0.897", "-")  # the study gave no P/R for Spark
    assert gbt["ours (study setup) ROC AUC"] == "0.800"
    rf = by_model["random forest (50 trees, depth 20)"]  # not trained here: the study's row stays
    assert rf["study AUC"] == "0.904" and rf["ours (study setup) ROC AUC"] == "-"
    assert by_model["hist gradient boosting"]["study AUC"] == "-"  # ours only: no study figure
    assert [r[0] for r in rows][-1] == "hist gradient boosting"


def test_study_table_without_any_result_still_shows_the_study() -> None:
    _, rows = study_comparison([])
    assert [r[1] for r in rows] == ["0.868", "0.904", "0.904", "0.886", "0.897"]


def test_churn_table_rows_are_the_setups_models_then_the_baselines() -> None:
    columns, rows = churn_table(RESULTS, "time")
    assert [r[0] for r in rows] == [
        "logistic regression",
        "gradient boosting",
        "Spark ML GBT",
        "everyone churns",
        "recency only",
    ]
    lr = dict(zip(columns, rows[0], strict=True))
    assert (lr["ROC AUC"], lr["P@0.5"], lr["R@thr"], lr["CV ROC AUC"]) == (
        "0.830",
        "0.810",
        "0.900",
        "0.800 ± 0.010",
    )
    assert dict(zip(columns, rows[2], strict=True))["CV ROC AUC"] == "-"  # Spark: not cross-validated
    summary_columns, summary_rows = churn_summary(RESULTS, "time")
    assert len(summary_columns) < len(columns)
    assert summary_rows[2][0] == "GBT (Spark)"


def test_als_table_lists_segments_spark_and_the_served_mix() -> None:
    m = {"users": 100, "k": 10, "precision": 0.1, "recall": 0.05, "ndcg": 0.12, "map": 0.04, "auc": 0.8}
    metrics = {
        "k": 10,
        "fit_time_s": 2.0,
        "segments": [
            {"segment": "warm", "model": "als", "metrics": m},
            {"segment": "warm", "model": "popularity", "metrics": m},
            {"segment": "cold", "model": "popularity", "metrics": {**m, "auc": None}},
        ],
        "spark": {"fit_time_s": 30.0, "warm": m},
        "system": {**m, "auc": None},
    }
    _, rows = als_table(metrics)
    assert [(r[0], r[1]) for r in rows] == [
        ("warm", "implicit ALS"),
        ("warm", "popularity"),
        ("cold", "popularity"),
        ("warm", "Spark MLlib ALS"),
        ("all", "served (ALS, else popularity)"),
    ]
    assert rows[3][-1] == "30.0" and rows[2][7] == "-"


def test_timings_cover_every_model() -> None:
    als = {"fit_time_s": 2.0, "spark": {"fit_time_s": 30.0}}
    _, rows = timings({"results": RESULTS}, als)
    assert len(rows) == len(RESULTS) + 2
    seconds = fit_seconds({"results": RESULTS}, als)
    assert len(seconds) == len(RESULTS) + 2  # one bar per model, setups apart
    assert seconds["Spark MLlib ALS [train window]"] == 30.0


def test_html_table_escapes_cells() -> None:
    text = html_table((["a<b"], [["<script>"]]), "x & y")
    assert "<script>" not in text and "&lt;script&gt;" in text and "x &amp; y" in text


def metadata(kind: str, metrics: dict[str, Any]) -> ModelMetadata:
    return ModelMetadata(
        kind,
        f"20261128T120000Z-{kind:0<8}",
        "2026-11-28T12:00:00+00:00",
        ["2017-03-02", "2017-04-28"],
        "abc",
        metrics,
        None,
        None,
        {},
        {},
        {},
    )


def test_render_holds_the_studys_table_and_embedded_figures() -> None:
    churn = metadata(
        "churn",
        {
            "roc_auc": 0.83,
            "family": "logreg",
            "setup": "time",
            "threshold": 0.3,
            "recall_target": 0.9,
            "test_as_of": "2017-04-28",
            "results": RESULTS,
            "splits": {
                "time": {"description": "time-based", "train_rows": 100, "test_rows": 50},
                "study": {"description": "study", "train_rows": 40, "test_rows": 10},
            },
            "promotion": {
                "promote": False,
                "reason": "new roc_auc 0.7 is worse than served 0.8 by more than 0.005",
            },
        },
    )
    inputs = ReportInputs(churn=churn, served={"churn": "v0", "als": None})
    inputs.activity = None
    document = render(inputs, datetime(2026, 11, 28, tzinfo=UTC))
    assert "0.868" in document and "0.897" in document  # the study's figures
    assert "not promoted: new roc_auc 0.7 is worse" in document  # why the gate said no
    # ROC/PR + thresholds + calibration per setup, importances, training times
    assert document.count("data:image/png;base64,") == 8
    assert "No ALS model in the registry yet" in document
    assert "Pass --logs DIR" in document
    assert date(2017, 4, 28).isoformat() in document
