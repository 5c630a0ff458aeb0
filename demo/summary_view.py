"""The demo's summary as the user reads it: one table, where to look, what runs still."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from demo.summary import DemoSummary
from musicbox.settings import Settings
from musicbox.topics import Topics


def _counts(by: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in by.items())


def _count(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else ""


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def stage_table(s: DemoSummary) -> Table:
    """Per stage: what it did, in how long, how fast."""
    out = Table(title="stages")
    for name in ("stage", "lines", "events", "rows", "seconds", "rate", "note"):
        out.add_column(name, justify="left" if name in ("stage", "note") else "right")
    for st in s.stages:
        seconds, rate = st["seconds"], st["rate"]
        out.add_row(
            st["name"],
            _count(st["lines"]),
            _count(st["events"]),
            _count(st["rows"]),
            "" if seconds is None else f"{seconds:,.0f}",
            "" if rate is None else f"{rate:,.0f} {st['rate_of']}/s",
            st["note"],
        )
    return out


def memory_lines(memory: dict[str, Any], top: int = 8) -> list[str]:
    """The peak of the sum, when, and the largest processes each at its own peak."""
    if not memory.get("samples"):
        return ["not sampled"]
    at = memory.get("peak_at_s")
    largest = sorted(memory["by_process"].items(), key=lambda kv: -kv[1])[:top]
    return [
        f"{_gib(memory['peak_total_bytes'])} at the peak of the sum"
        + (f", {at:.0f} s in" if at is not None else "")
        + f" ({memory['samples']} samples, every process of the stack with its children)",
        "each at its own peak: " + ", ".join(f"{name} {_gib(b)}" for name, b in largest),
    ]


def table(s: DemoSummary) -> Table:
    out = Table(title=f"musicbox demo ({s.profile})", show_header=False)
    out.add_column("what")
    out.add_column("value")
    out.add_row(
        "data set", f"{s.users:,} users x {s.days} days ({s.first_day} .. {s.last_day}), dirt on: {s.logs}"
    )
    for check in s.reconciliation:
        verdict = "[green]pass[/]" if check["ok"] else "[red]FAIL[/]"
        out.add_row(f"{verdict} {check['name']}", check["detail"])
    out.add_row("dead letters", _counts(s.dead_letters_by_reason))
    out.add_row("feature rows", f"{s.feature_rows:,} over {s.feature_days} days")
    out.add_row(
        "churn scores", f"{s.scores:,} ({', '.join(f'{v}: {n:,}' for v, n in s.scores_by_version.items())})"
    )
    out.add_row("recommendations", f"{s.recommendations:,} ({_counts(s.recommendations_by_source)})")
    out.add_row(
        "models",
        f"first churn {s.first_models.get('churn')} -> now {s.served_models.get('churn')}"
        + (" (hot-reloaded by the worker)" if s.hot_reloaded else ""),
    )
    if s.live_roc_auc:
        live = s.live_roc_auc
        out.add_row(
            "live ROC AUC",
            f"{live['mean']:.3f} mean over {live['pairs']:.0f} (day, model) pairs "
            f"({live['min']:.3f} .. {live['max']:.3f} by day)",
        )
    for pair in s.same_day:
        out.add_row(
            "live vs offline, same day",
            f"{pair['live']:.3f} vs {pair['offline']:.3f} (gap {pair['gap']:+.3f}): model "
            f"{pair['model_version']} on {pair['as_of']}, its offline test day",
        )
    if s.offline_test:
        out.add_row(
            "offline test ROC AUC",
            f"{s.offline_test['roc_auc']:.3f} (the served churn model's test, as of "
            f"{s.offline_test['as_of']}; other days, maybe another model than the live figures: the "
            "same-day line compares like with like)",
        )
    for i, line in enumerate(memory_lines(s.memory)):
        out.add_row("peak memory" if i == 0 else "", line)
    out.add_row(
        "time", f"{s.elapsed_s:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in s.timings_s.items())
    )
    return out


def show(console: Console, s: DemoSummary, settings: Settings, root: Path) -> None:
    """The table, where to look, and what was left running with how to stop it."""
    topics = Topics(settings.topic_prefix)
    console.print(stage_table(s))
    console.print(table(s))
    console.print(
        "where to look:\n"
        f"  Prometheus   http://127.0.0.1:{settings.prometheus_port} (musicbox_* metrics)\n"
        f"  report       {s.report or '(none)'}\n"
        f"  topics       {', '.join(topics.all())}\n"
        f"  scores       kcat -C -b {settings.kafka_bootstrap} -t {topics.churn_scores} "
        "-o beginning -e -c 5\n"
        f"  logs         {root}/*.log\n"
        f"  summary      {root / 'summary.json'}\n"
        f"  timeline     {s.timeline or '(none)'}"
    )
    running = s.left_running
    if running.processes or running.stack:
        what = [k.name for k in running.processes] + (["Kafka", "Prometheus"] if running.stack else [])
        console.print(f"left running (--keep-running): {', '.join(what)}; to stop them:")
        for line in running.how_to_stop():
            console.print(f"  {line}")
    for problem in s.problems:
        console.print(f"[red]problem: {problem}")
