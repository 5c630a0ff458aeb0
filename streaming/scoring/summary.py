"""The end-of-run summary of `musicbox worker`: what it consumed, published, reloaded and measured."""

from __future__ import annotations

from collections import Counter

from streaming.scoring.app import WorkerApp
from streaming.scoring.quality import QualityReport
from streaming.scoring.recommender import CloseTimes


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items())) or "none"


def _metric(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def quality_line(r: QualityReport) -> str:
    return (
        f"  as of {r.as_of}, model {r.model_version}: {r.users:,} users, churn rate {r.churn_rate:.1%}, "
        f"ROC AUC {_metric(r.roc_auc)}, precision {_metric(r.precision)}, recall {_metric(r.recall)} "
        f"at threshold {r.threshold:.3f}"
    )


def close_line(t: CloseTimes) -> str:
    """Where the day closes' time went."""
    rate = f" ({t.users / t.total_s():,.0f} users/s)" if t.total_s() > 0 else ""
    return (
        f"day closes: {t.users:,} users refreshed in {t.total_s():.1f} s{rate}: select {t.select_s:.1f} s, "
        f"fold-in {t.fold_in_s:.1f} s, top-N {t.top_n_s:.1f} s, messages {t.messages_s:.1f} s, "
        f"publish {t.publish_s:.1f} s"
    )


def summary_lines(worker: WorkerApp, elapsed_s: float) -> list[str]:
    f, e = worker.features.counts, worker.events.counts
    churn, als = worker.deps.churn, worker.deps.als
    window_d = worker.features.quality.label_window_d
    refused = Counter(
        {
            f"{kind} {reason}": n
            for kind, r in (("churn", churn), ("als", als))
            for reason, n in r.failures.items()
        }
    )
    rejected = Counter({f"{source} {reason}": n for (source, reason), n in e.rejected.items()})
    lines = [
        f"musicbox worker: ran {elapsed_s:.1f} s as {worker.app.conf.id}",
        f"feature rows: {f.rows:,} consumed in {f.batches:,} batches; {f.scored:,} scored, {f.bots:,} bots "
        f"(counted, not scored); rejected: {_counts(f.rejected)}",
        f"scores by model version: {_counts(f.versions)}; time in the scoring flow {f.handle_s:.1f} s"
        + (f" ({f.rows / f.handle_s:,.0f} rows/s; the rest: Kafka and waits)" if f.handle_s > 0 else ""),
        f"events: {_counts(e.events)}; rejected: {_counts(rejected)}; "
        f"(partition, day) closes: {e.days_closed:,}; decoded and folded in {e.fold_s:.1f} s",
        f"recommendations: {sum(e.recommendations.values()):,} ({_counts(e.recommendations)}); "
        f"users closed without an ALS model: {e.without_model:,}",
        close_line(e.close),
        f"models: churn {churn.version} ({churn.switches} reloads), "
        f"als {als.version} ({als.switches} reloads); refused: {_counts(refused)}",
        f"live quality: {len(f.reports)} reports"
        + (":" if f.reports else f" (a score's label needs {window_d} more event-days of feature rows)"),
    ]
    return lines + [quality_line(r) for r in f.reports]
