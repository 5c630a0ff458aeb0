"""`musicbox batch report`: one self-contained HTML file (PNG plots embedded as base64) with the
activity graph, the churn models beside the study's table, curves, ALS against popularity, and
training times, under `var/reports/<timestamp>/report.html` by default.

read (registry metadata of the served or newest versions; the events table with --logs) ->
render (pure: tables from batch.report_tables, figures from batch.report_plots) -> write.
Nothing is retrained: the train commands stored every figure the report needs in the metadata.
"""

from __future__ import annotations

import argparse
import base64
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from batch import report_plots as plots
from batch.errors import ReportError, cause
from batch.options import add_logs, add_out
from batch.report_activity import Activity, activity, fingerprints, warnings_by_day
from batch.report_tables import (
    als_table,
    churn_table,
    fit_seconds,
    fmt,
    html_table,
    label,
    rich_table,
    study_comparison,
    timings,
)
from models.errors import ModelError
from models.metadata import ModelMetadata
from models.registry import current_version, list_versions, read_metadata
from musicbox.rawlogs.quality import QualityWarning
from musicbox.settings import Settings

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
thead th { background: #f0f0f0; } tbody th { text-align: left; font-weight: normal; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9em; } .warn { color: #8a5a00; }
"""


@dataclass
class ReportInputs:
    churn: ModelMetadata | None = None
    als: ModelMetadata | None = None
    served: dict[str, str | None] = field(default_factory=dict)  # kind -> served version
    activity: Activity | None = None
    warnings: list[QualityWarning] = field(default_factory=list)
    warning_days: dict[Any, list[str]] = field(default_factory=dict)


def pick(root: Path, kind: str, version: str | None) -> ModelMetadata | None:
    """The metadata of `version`, else of the served version, else of the newest one (or None)."""
    versions = list_versions(root, kind)
    chosen = version or current_version(root, kind) or (versions[-1] if versions else None)
    return read_metadata(root, kind, chosen) if chosen else None


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _p(text: str, css: str = "") -> str:
    return f"<p{f' class={css!r}' if css else ''}>{html.escape(text)}</p>"


def _activity_section(inputs: ReportInputs) -> list[str]:
    out = ["<h2>Activity</h2>"]
    a = inputs.activity
    if a is None:
        return [*out, _p("Pass --logs DIR to draw daily active users and events per type.", "note")]
    out.append(_img(plots.activity(a.days, a.active_users, a.events, inputs.warning_days), "activity"))
    if inputs.warnings:
        out.append(
            _p(
                "Data-quality warnings of the raw logs (shaded above): a missing or truncated shard "
                "looks exactly like a drop in activity.",
                "warn",
            )
        )
        rows = [
            [w.date.isoformat(), w.file_type, str(w.shard or "-"), w.kind, w.message] for w in inputs.warnings
        ]
        out.append(html_table((["day", "type", "shard", "kind", "what"], rows)))
    else:
        out.append(_p("No data-quality warning in these logs.", "note"))
    return out


def _promotion(meta: ModelMetadata) -> str:
    p = meta.metrics.get("promotion") or {}
    verdict = "promoted" if p.get("promote") else "not promoted"
    return f"{meta.kind} {meta.version}: {verdict}: {p.get('reason', 'no decision recorded')}"


def _churn_section(inputs: ReportInputs) -> list[str]:
    out = ["<h2>Churn models</h2>"]
    meta = inputs.churn
    results: list[dict[str, Any]] = meta.metrics.get("results", []) if meta else []
    out.append(html_table(study_comparison(results), "the study's table (SEED_FACTS 3) beside ours"))
    out.append(
        _p(
            "The study: one snapshot (2017-04-28), random 80/20 split, threshold 0.5, bots removed "
            "with a rule that looks into the label window. Ours (study setup) repeats that split on "
            "our data; ours (time-based) trains on earlier snapshots and tests on the snapshot day, "
            "as a deployed model must. With most users churning, recall alone is no merit: "
            '"everyone churns" has recall 1.',
            "note",
        )
    )
    if meta is None:
        return [*out, _p("No churn model in the registry yet: run `musicbox batch train-churn`.", "note")]
    m = meta.metrics
    out.append(
        _p(
            f"Served candidate: {label(m.get('family', '?'))}, version {meta.version}, threshold "
            f"{fmt(m.get('threshold'))} (reaches recall {fmt(m.get('recall_target'), 2)} on validation "
            f"data), training window {' .. '.join(meta.training_window)}, test snapshot "
            f"{m.get('test_as_of')}. {_promotion(meta)}"
        )
    )
    for setup, split in m.get("splits", {}).items():
        of_setup = [r for r in results if r["setup"] == setup]
        out.append(f"<h3>{html.escape(split['description'])}</h3>")
        out.append(
            html_table(
                churn_table(results, setup),
                f"{split['train_rows']:,} training rows, {split['test_rows']:,} test rows",
            )
        )
        if of_setup:
            base = of_setup[0].get("base_rate")
            out.append(_img(plots.roc_pr(of_setup, base, setup), f"ROC and PR curves, {setup}"))
            out.append(
                _img(
                    plots.thresholds(of_setup, f"precision and recall vs threshold ({setup})"),
                    f"thresholds, {setup}",
                )
            )
            out.append(_img(plots.calibration(of_setup, f"calibration ({setup})"), f"calibration, {setup}"))
    served = next(
        (
            r
            for r in results
            if r["setup"] == m.get("setup")
            and r["family"] == m.get("family")
            and r.get("library") == "scikit-learn"
        ),
        None,
    )
    if served:
        out.append(_img(plots.importances(served), "feature importances"))
    tops = [
        [
            f"{label(r['family'])} ({r['setup']})",
            r["importance_method"],
            ", ".join(i["name"] for i in r["importances"][:5]),
        ]
        for r in results
    ]
    out.append(html_table((["model", "method", "five most important inputs"], tops), "feature importances"))
    return out


def _als_section(inputs: ReportInputs) -> list[str]:
    out = ["<h2>Recommendations</h2>"]
    meta = inputs.als
    if meta is None:
        return [*out, _p("No ALS model in the registry yet: run `musicbox batch train-als`.", "note")]
    m = meta.metrics
    w = m.get("windows", {})
    out.append(
        _p(
            f"Version {meta.version}; ratings of {' .. '.join(w.get('train', []))}, tested on "
            f"{' .. '.join(w.get('test', []))} (songs new to each user); hyperparameters chosen on "
            f"{' .. '.join(w.get('validation', []))}: {m.get('params')}. {_promotion(meta)}"
        )
    )
    out.append(html_table(als_table(m), "ALS vs popularity (popularity counts training listeners only)"))
    out.append(_p(f"Cold start: {m.get('cold_start', '')}. Warm users have training ratings.", "note"))
    bars: dict[str, dict[str, float | None]] = {}
    for s in m.get("segments", []):
        bars[f"{'implicit ALS' if s['model'] == 'als' else 'popularity'} ({s['segment']})"] = s["metrics"]
    if m.get("spark"):
        bars["Spark MLlib ALS (warm)"] = m["spark"]["warm"]
        out.append(
            _p(
                f"Spark MLlib ALS on the same matrix: fit {m['spark']['fit_time_s']:.1f} s vs implicit "
                f"{m['fit_time_s']:.1f} s; regParam {m['spark'].get('reg_param', 0):.4g} (Spark scales "
                "it by each user's rating count; ours is divided by the mean count to match).",
                "note",
            )
        )
    out.append(_img(plots.recommenders(bars, m.get("k", 10)), "recommenders"))
    trials = (m.get("selection") or {}).get("trials", [])
    if trials:
        rows = [
            [
                f"f={t['factors']} reg={t['regularization']} a={t['alpha']}",
                fmt(t["ndcg"]),
                fmt(t["precision"]),
                fmt(t["fit_time_s"], 2),
            ]
            for t in trials
        ]
        out.append(html_table((["trial", "NDCG@k", "P@k", "fit s"], rows), "validation-window search"))
    return out


def _times_section(inputs: ReportInputs) -> list[str]:
    churn = inputs.churn.metrics if inputs.churn else None
    als = inputs.als.metrics if inputs.als else None
    fits = {name: s for name, s in fit_seconds(churn, als).items() if s > 0}  # a log axis
    out = ["<h2>Training times</h2>", html_table(timings(churn, als))]
    if fits:
        out.append(_img(plots.fit_times(fits), "training times"))
    return out


def render(inputs: ReportInputs, now: datetime) -> str:
    """The whole HTML document."""
    served = ", ".join(f"{k}: {v or 'none'}" for k, v in inputs.served.items())
    body = [
        "<h1>musicbox report</h1>",
        _p(f"Generated {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC. Served versions: {served}.", "note"),
        *_activity_section(inputs),
        *_churn_section(inputs),
        *_als_section(inputs),
        *_times_section(inputs),
    ]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>musicbox report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_logs(parser, "raw logs: draw the activity graph with data-quality warnings")
    add_out(parser, "output folder (default: MUSICBOX_VAR_DIR/reports/<timestamp>)")
    parser.add_argument(
        "--churn-version", help="churn version to report (default: the served one, else the newest)"
    )
    parser.add_argument(
        "--als-version", help="ALS version to report (default: the served one, else the newest)"
    )
    parser.add_argument(
        "--no-quality",
        action="store_true",
        help="skip the data-quality warnings (they may need one more read of the raw logs)",
    )


def load_inputs(
    settings: Settings, args: argparse.Namespace, progress: Callable[[str], None]
) -> ReportInputs:
    from batch.events_table import events_table

    root = settings.models_dir
    inputs = ReportInputs(served={k: current_version(root, k) for k in ("churn", "als")})
    try:
        inputs.churn = pick(root, "churn", args.churn_version)
        inputs.als = pick(root, "als", args.als_version)
    except ModelError as exc:
        raise ReportError(f"cannot read the registry under {root}: {exc}") from exc
    if args.logs is not None:
        progress(f"events table of {args.logs}")
        table = events_table(
            settings,
            args.logs,
            progress=lambda day, n, dead: progress(f"logs read through {day}: {n:,} events"),
        )
        inputs.activity = activity(table)
        if not args.no_quality:
            progress("data-quality fingerprints")
            prints = fingerprints(
                settings.var_dir,
                args.logs,
                table,
                lambda n: progress(f"re-read {n:,} lines for the data-quality report"),
            )
            inputs.warnings, inputs.warning_days = warnings_by_day(prints)
    if inputs.churn is None and inputs.als is None and inputs.activity is None:
        raise ReportError(
            f"nothing to report: no model under {root} and no --logs. Train one "
            "(`musicbox batch train-churn` / `train-als`) or pass --logs DIR"
        )
    return inputs


def run(
    args: argparse.Namespace, settings: Settings, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> int:
    err = Console(stderr=True)
    inputs = load_inputs(settings, args, lambda text: err.print(f"→ {text} ..."))
    stamp = now()
    out_dir: Path = args.out or settings.var_dir / "reports" / f"{stamp.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    err.print("→ drawing the figures ...")
    document = render(inputs, stamp)
    path = out_dir / "report.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {path} ({cause(exc)}): choose another --out") from exc
    rows = [
        ["activity", "drawn" if inputs.activity else "no --logs", f"{len(inputs.warnings)} warnings"],
        [
            "churn",
            inputs.churn.version if inputs.churn else "none",
            f"{len((inputs.churn.metrics if inputs.churn else {}).get('results', []))} results",
        ],
        [
            "als",
            inputs.als.version if inputs.als else "none",
            "with Spark" if inputs.als and inputs.als.metrics.get("spark") else "",
        ],
        ["images", str(document.count("data:image/png;base64,")), f"{len(document) / 1e6:.1f} MB"],
    ]
    Console().print(rich_table((["section", "source", "notes"], rows), f"report written to {path}"))
    return 0
