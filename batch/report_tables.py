"""Tables of the training results, built once from the registry metrics and rendered twice: as the
commands' end-of-run summaries (rich) and as the report's HTML. Pure functions of plain dicts.

A table is (columns, rows), every cell already a string; missing or undefined values print "-".
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

Cells = tuple[list[str], list[list[str]]]


@dataclass(frozen=True)
class StudyRow:
    family: str
    model: str
    auc: float
    precision: float | None
    recall: float | None


# SEED_FACTS 3: the study's random 80/20 split, threshold 0.5, positive = churn.
STUDY_TABLE: tuple[StudyRow, ...] = (
    StudyRow("logreg", "logistic regression", 0.868, 0.810, 0.906),
    StudyRow("random_forest", "random forest (50 trees, depth 20)", 0.904, 0.851, 0.899),
    StudyRow("gradient_boosting", "gradient boosting (100, depth 5)", 0.904, 0.852, 0.895),
    StudyRow("spark_logreg", "Spark ML logistic regression", 0.886, None, None),
    StudyRow("spark_gbt", "Spark ML GBT", 0.897, None, None),
)
FAMILY_LABELS = {
    "logreg": "logistic regression",
    "random_forest": "random forest",
    "gradient_boosting": "gradient boosting",
    "hist_gradient_boosting": "hist gradient boosting",
    "spark_logreg": "Spark ML logistic regression",
    "spark_gbt": "Spark ML GBT",
}


def fmt(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals; "-" for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


def _of_setup(results: Iterable[dict[str, Any]], setup: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("setup") == setup]


def churn_table(results: Sequence[dict[str, Any]], setup: str) -> Cells:
    """Every model of one setup, then the two baselines on the same test rows."""
    columns = [
        "model",
        "library",
        "ROC AUC",
        "PR AUC",
        "P@0.5",
        "R@0.5",
        "F1@0.5",
        "threshold",
        "P@thr",
        "R@thr",
        "F1@thr",
        "Brier",
        "PR AUC / everyone",
        "ROC AUC - recency",
        "CV ROC AUC",
        "fit s",
    ]
    rows = []
    chosen = _of_setup(results, setup)
    for r in chosen:
        m, half, target = r["model"], r["model"].get("at_half") or {}, r["model"]["at_target"]
        cv = r.get("cv")
        rows.append(
            [
                label(r["family"]),
                r.get("library", ""),
                fmt(m["roc_auc"]),
                fmt(m["pr_auc"]),
                fmt(half.get("precision")),
                fmt(half.get("recall")),
                fmt(half.get("f1")),
                fmt(target["threshold"]),
                fmt(target["precision"]),
                fmt(target["recall"]),
                fmt(target["f1"]),
                fmt(m.get("brier")),
                fmt(r["lift"]["pr_auc_vs_everyone"], 2),
                fmt(r["lift"]["roc_auc_gain_vs_recency"]),
                f"{cv['mean']:.3f} ± {cv['std']:.3f}" if cv else "-",
                fmt(r["train_time_s"], 1),
            ]
        )
    if chosen:
        for key, name in (("everyone", "everyone churns"), ("recency", "recency only")):
            b = chosen[0][key]
            t = b["at_target"]
            rows.append(
                [
                    name,
                    "baseline",
                    fmt(b["roc_auc"]),
                    fmt(b["pr_auc"]),
                    "-",
                    "-",
                    "-",
                    fmt(t["threshold"]),
                    fmt(t["precision"]),
                    fmt(t["recall"]),
                    fmt(t["f1"]),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
    return columns, rows


def churn_summary(results: Sequence[dict[str, Any]], setup: str) -> Cells:
    """The console's narrower cut of `churn_table`: the report has every column."""
    columns, rows = churn_table(results, setup)
    keep = [
        "model",
        "ROC AUC",
        "PR AUC",
        "P@0.5",
        "R@0.5",
        "threshold",
        "P@thr",
        "R@thr",
        "Brier",
        "CV ROC AUC",
        "fit s",
    ]
    index = [columns.index(c) for c in keep]
    out = []
    for r in rows:
        row = [r[i] for i in index]
        if r[1] == "spark-ml":
            row[0] = row[0].replace("Spark ML ", "") + " (Spark)"
        out.append(row)
    return keep, out


def study_comparison(results: Sequence[dict[str, Any]]) -> Cells:
    """The study's table beside ours: its own setup (one snapshot, 80/20) and our time-based one."""
    columns = [
        "model",
        "study AUC",
        "study precision",
        "study recall",
        "ours (study setup) ROC AUC",
        "precision@0.5",
        "recall@0.5",
        "ours (time-based) ROC AUC",
        "PR AUC",
    ]

    def find(setup: str, family: str) -> dict[str, Any] | None:
        return next((r for r in _of_setup(results, setup) if r["family"] == family), None)

    rows = []
    families = [s.family for s in STUDY_TABLE]
    extra = [r["family"] for r in results if r["family"] not in families]
    for family in families + sorted(set(extra), key=extra.index):
        study = next((s for s in STUDY_TABLE if s.family == family), None)
        ours, timed = find("study", family), find("time", family)
        half = (ours or {}).get("model", {}).get("at_half") or {}
        rows.append(
            [
                study.model if study else label(family),
                fmt(study.auc) if study else "-",
                fmt(study.precision) if study else "-",
                fmt(study.recall) if study else "-",
                fmt(ours["model"]["roc_auc"]) if ours else "-",
                fmt(half.get("precision")),
                fmt(half.get("recall")),
                fmt(timed["model"]["roc_auc"]) if timed else "-",
                fmt(timed["model"]["pr_auc"]) if timed else "-",
            ]
        )
    return columns, rows


def als_table(metrics: dict[str, Any]) -> Cells:
    """ALS vs popularity per segment, Spark ALS beside implicit, and the served mix."""
    k = metrics.get("k", 10)
    columns = ["segment", "model", "users", f"P@{k}", f"R@{k}", f"NDCG@{k}", f"MAP@{k}", "AUC", "fit s"]

    def row(segment: str, model: str, m: dict[str, Any], fit_s: Any = None) -> list[str]:
        return [
            segment,
            model,
            fmt(m["users"]),
            fmt(m["precision"]),
            fmt(m["recall"]),
            fmt(m["ndcg"]),
            fmt(m["map"]),
            fmt(m.get("auc")),
            fmt(fit_s, 1),
        ]

    rows = []
    for s in metrics.get("segments", []):
        fit = metrics.get("fit_time_s") if s["model"] == "als" else None
        name = "implicit ALS" if s["model"] == "als" else "popularity"
        rows.append(row(s["segment"], name, s["metrics"], fit))
    spark = metrics.get("spark")
    if spark:
        rows.append(row("warm", "Spark MLlib ALS", spark["warm"], spark["fit_time_s"]))
    if metrics.get("system"):
        rows.append(row("all", "served (ALS, else popularity)", metrics["system"]))
    return columns, rows


def timings(churn: dict[str, Any] | None, als: dict[str, Any] | None) -> Cells:
    """Fit times and scoring throughput: what each model costs."""
    columns = ["model", "setup", "fit s", "scoring rows/s (batched)", "one row ms"]
    rows = []
    for r in (churn or {}).get("results", []):
        rows.append(
            [
                f"{label(r['family'])} ({r.get('library', '')})",
                r["setup"],
                fmt(r["train_time_s"], 2),
                fmt(r.get("predict_rows_per_s"), 0),
                fmt(r.get("predict_one_row_ms"), 2),
            ]
        )
    if als:
        rows.append(["implicit ALS", "train window", fmt(als.get("fit_time_s"), 2), "-", "-"])
        if als.get("spark"):
            rows.append(["Spark MLlib ALS", "train window", fmt(als["spark"]["fit_time_s"], 2), "-", "-"])
    return columns, rows


def fit_seconds(churn: dict[str, Any] | None, als: dict[str, Any] | None) -> dict[str, float]:
    """Fit time of every model, keyed by a label naming model, library and setup (for the plot)."""
    out = {
        f"{label(r['family'])} ({r.get('library', '')}) [{r['setup']}]": float(r["train_time_s"])
        for r in (churn or {}).get("results", [])
    }
    if als and als.get("fit_time_s") is not None:
        out["implicit ALS [train window]"] = float(als["fit_time_s"])
        if als.get("spark"):
            out["Spark MLlib ALS [train window]"] = float(als["spark"]["fit_time_s"])
    return out


def html_table(cells: Cells, caption: str = "", css_class: str = "") -> str:
    """A escaped HTML table (the first column as row headers)."""
    columns, rows = cells
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<th>{html.escape(v)}</th>" if i == 0 else f"<td>{html.escape(v)}</td>" for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    cls = f' class="{html.escape(css_class)}"' if css_class else ""
    return f"<table{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def rich_table(cells: Cells, title: str = "") -> Table:
    columns, rows = cells
    table = Table(title=title or None)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right", overflow="fold")
    for r in rows:
        table.add_row(*r)
    return table
