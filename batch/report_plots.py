"""The report's figures, drawn with matplotlib's Agg backend (no display) and returned as PNG bytes.

Each function takes the plain dicts of the registry metadata (or the activity counts) and draws
one figure; none reads files, so each can be called with hand-made data.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to memory, never to a display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from batch.report_tables import label

DPI = 100
WARNING_COLOR = "#f5a623"


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open figure alive)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def activity(
    days: Sequence[date],
    active_users: Sequence[int],
    events: Mapping[str, Sequence[int]],
    warning_days: Mapping[date, list[str]],
) -> bytes:
    """The study's first graph: daily active users and events per type, warnings shaded."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    top.plot(days, active_users, marker=".", color="#1f77b4")
    top.set_ylabel("daily active users")
    for kind, counts in events.items():
        bottom.plot(days, counts, marker=".", label=kind)
    bottom.set_yscale("log")
    bottom.set_ylabel("events per day (log)")
    for day, kinds in warning_days.items():
        noon = datetime.combine(day, time(12))
        for ax in (top, bottom):
            ax.axvspan(noon - timedelta(hours=24), noon, color=WARNING_COLOR, alpha=0.35, linewidth=0)
        top.annotate(
            ", ".join(sorted(set(kinds))),
            (day, top.get_ylim()[1]),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color="#8a5a00",
        )
    handles, names = bottom.get_legend_handles_labels()
    if warning_days:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=WARNING_COLOR, alpha=0.35))
        names.append("data-quality warning (a collection artefact, not user behaviour)")
    bottom.legend(handles, names, fontsize=8, loc="upper right")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    return png(fig)


def _model_name(result: dict[str, Any]) -> str:
    return label(result["family"])


def roc_pr(results: Sequence[dict[str, Any]], base_rate: float | None, title: str) -> bytes:
    """ROC and precision-recall curves of every model of one setup."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.6))
    for r in results:
        c, m = r["curves"], r["model"]
        roc.plot(c["roc"]["fpr"], c["roc"]["tpr"], label=f"{_model_name(r)} ({m['roc_auc']:.3f})")
        pr.plot(c["pr"]["recall"], c["pr"]["precision"], label=f"{_model_name(r)} ({m['pr_auc']:.3f})")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=f"ROC: {title}")
    if base_rate is not None:
        pr.axhline(base_rate, color="grey", linestyle=":", label=f"everyone churns ({base_rate:.3f})")
    pr.set(xlabel="recall", ylabel="precision", title=f"precision-recall: {title}")
    for ax in (roc, pr):
        ax.legend(fontsize=7, loc="lower right" if ax is roc else "lower left")
        ax.grid(alpha=0.3)
    return png(fig)


def thresholds(results: Sequence[dict[str, Any]], title: str) -> bytes:
    """Precision and recall against the threshold, one panel per model, 0.5 and the chosen one marked."""
    n = max(1, len(results))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        pr = r["curves"]["pr"]
        ax.plot(pr["threshold"], pr["precision"], label="precision")
        ax.plot(pr["threshold"], pr["recall"], label="recall")
        chosen = r["model"]["at_target"]["threshold"]
        ax.axvline(0.5, color="grey", linestyle=":", label="0.5")
        ax.axvline(
            chosen, color="black", linestyle="--", label=f"for recall {r['recall_target']:.0%}: {chosen:.2f}"
        )
        ax.set(title=_model_name(r), xlabel="threshold", ylim=(0, 1.02))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return png(fig)


def calibration(results: Sequence[dict[str, Any]], title: str) -> bytes:
    """Reliability diagram: mean predicted churn probability vs the share that churned, per bin."""
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    for r in results:
        c = r["curves"]["calibration"]
        ax.plot(
            c["mean_predicted"],
            c["fraction_churned"],
            marker="o",
            label=f"{_model_name(r)} (Brier {r['model']['brier']:.3f})",
        )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    ax.set(xlabel="mean predicted probability", ylabel="share that churned", title=title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return png(fig)


def importances(result: dict[str, Any], top: int = 15) -> bytes:
    items = result["importances"][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))
    ax.barh([i["name"] for i in items], [i["value"] for i in items], color="#4c72b0")
    ax.set(title=f"{_model_name(result)}: feature importance ({result['importance_method']})")
    ax.grid(alpha=0.3, axis="x")
    return png(fig)


def recommenders(bars: dict[str, dict[str, float | None]], k: int) -> bytes:
    """Grouped bars: each recommender (and segment) on each ranking metric."""
    metrics = ["precision", "recall", "ndcg", "map", "auc"]
    names = [f"P@{k}", f"R@{k}", f"NDCG@{k}", f"MAP@{k}", "per-user AUC"]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / max(1, len(bars))
    for i, (who, values) in enumerate(bars.items()):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [values.get(m) or 0.0 for m in metrics], width, label=who)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], names)
    ax.set(title="recommenders on the test window", ylabel="mean over users")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return png(fig)


def fit_times(times_s: dict[str, float]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(times_s) + 1.2))
    names = list(times_s)[::-1]
    ax.barh(names, [times_s[n] for n in names], color="#55a868")
    ax.set(xlabel="seconds", title="training time", xscale="log" if times_s else "linear")
    ax.grid(alpha=0.3, axis="x")
    return png(fig)
