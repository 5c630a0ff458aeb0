"""Prometheus metrics of the scoring worker (DESIGN 8), on a registry it is given."""

from __future__ import annotations

import contextlib

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from models.registry import KINDS
from musicbox.events import day_start_ms
from streaming.scoring.quality import QualityReport
from streaming.scoring.reload import REFUSAL_REASONS, ReloadEvent


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """`histogram.observe(v)` for every v, one increment per bucket instead of one call per value
    (a score per row made that ~10 % of the scoring flow). Uses the histogram's bucket fields,
    which prometheus-client does not document: the unit test compares with `observe`."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, n in zip(histogram._buckets, counts.tolist(), strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(float(values.sum()))


LagKey = tuple[str, str]  # (topic, partition) labels of the consumer-lag gauge


def show_lags(gauge: Gauge, lags: dict[LagKey, int | None], shown: set[LagKey]) -> set[LagKey]:
    """Set the lag of every partition read now (None: not known yet, left as it is) and remove
    the series of partitions no longer read (a rebalance gave them to another worker, which
    reports them: a frozen value here would be a false lag alert). `shown` is what the last call
    returned: the series this process exports."""
    for key in shown - lags.keys():
        gauge.remove(*key)
    now = shown & lags.keys()
    for key, lag in lags.items():
        if lag is not None:
            gauge.labels(*key).set(lag)
            now.add(key)
    return now


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.feature_rows = Counter("musicbox_worker_feature_rows", "feature rows consumed", registry=r)
        self.bot_rows = Counter(
            "musicbox_worker_bot_rows", "feature rows of bots: counted, not scored", registry=r
        )
        self.rejected = Counter(
            "musicbox_worker_rejected_messages",
            "input messages sent to the dead-letter topic, by input and reason",
            ["input", "reason"],
            registry=r,
        )
        self.scores = Counter("musicbox_worker_scores", "churn scores published", registry=r)
        self.batch_rows = Histogram(
            "musicbox_worker_scoring_batch_rows",
            "feature rows per scoring batch",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "musicbox_worker_scoring_batch_seconds",
            "wall time to parse, score and publish one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.score_latency = Histogram(
            "musicbox_worker_score_latency_seconds",
            "from a feature row's computed_at_ms (its day close) to its score",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=r,
        )
        self.events = Counter(
            "musicbox_worker_events", "event-topic messages read, by type", ["type"], registry=r
        )
        self.days_closed = Counter(
            "musicbox_worker_days_closed", "(partition, day) closes seen in ticks", registry=r
        )
        self.last_closed_day = Gauge(
            "musicbox_worker_last_closed_day_timestamp_seconds",
            "start of the latest day closed on some partition (epoch s)",
            registry=r,
        )
        self.recommendations = Counter(
            "musicbox_worker_recommendations", "recommendations published, by source", ["source"], registry=r
        )
        self.model_info = Gauge(
            "musicbox_worker_model_info",
            "1 for the model version served, per kind",
            ["kind", "version"],
            registry=r,
        )
        self.reloads = Counter(
            "musicbox_worker_model_reloads", "switches to a new model version", ["kind"], registry=r
        )
        self.reload_failures = Counter(
            "musicbox_worker_model_reload_failures",
            "model versions refused (the old one kept serving), by reason",
            ["kind", "reason"],
            registry=r,
        )
        for kind in KINDS:  # at 0 from the start: a series born at 1 shows no increase to alert on
            self.reloads.labels(kind)
            for reason in REFUSAL_REASONS:
                self.reload_failures.labels(kind, reason)
        self.table_keys = Gauge(
            "musicbox_worker_table_keys", "keys held per state table", ["table"], registry=r
        )
        self.consumer_lag = Gauge(
            "musicbox_worker_consumer_lag",
            "messages not yet read, per input partition",
            ["topic", "partition"],
            registry=r,
        )
        self.last_input = Gauge(
            "musicbox_worker_last_input_timestamp_seconds",
            "wall time the last input batch arrived",
            registry=r,
        )
        self.live_auc = Gauge(
            "musicbox_worker_live_roc_auc",
            "ROC AUC of the latest labelled as-of day",
            ["model_version"],
            registry=r,
        )
        self.live_precision = Gauge(
            "musicbox_worker_live_precision",
            "precision at the served threshold",
            ["model_version"],
            registry=r,
        )
        self.live_recall = Gauge(
            "musicbox_worker_live_recall", "recall at the served threshold", ["model_version"], registry=r
        )
        self.live_users = Gauge(
            "musicbox_worker_live_users",
            "scored users of the latest labelled day",
            ["model_version"],
            registry=r,
        )
        self.live_as_of = Gauge(
            "musicbox_worker_live_as_of_timestamp_seconds",
            "the as-of day of the latest live quality figures (epoch s)",
            ["model_version"],
            registry=r,
        )
        self._live_gauges = (
            self.live_auc, self.live_precision, self.live_recall, self.live_users, self.live_as_of,
        )  # fmt: skip
        self._live_days: dict[str, str] = {}  # model version -> as-of day its gauges show

    def reload(self, event: ReloadEvent) -> None:
        if event.outcome == "refused":
            self.reload_failures.labels(event.kind, event.reason or "unknown").inc()
            return
        if event.previous is not None:
            self.reloads.labels(event.kind).inc()
            with contextlib.suppress(KeyError):  # served before these metrics existed
                self.model_info.remove(event.kind, event.previous)
        self.model_info.labels(event.kind, event.version).set(1)

    def quality(self, report: QualityReport) -> None:
        """Show a version's latest labelled day. A version is retired once another version has a
        later labelled day (the worker serves one version at a time, so the older one scores no
        more): its gauges go, or the live-AUC alert would judge it forever."""
        v = report.model_version
        if any(day > report.as_of for u, day in self._live_days.items() if u != v):
            return  # a retired version's late report: shown no more
        for retired in [u for u, day in self._live_days.items() if u != v and day < report.as_of]:
            for gauge in self._live_gauges:
                gauge.remove(retired)
            del self._live_days[retired]
        self._live_days[v] = report.as_of
        nan = float("nan")
        self.live_auc.labels(v).set(nan if report.roc_auc is None else report.roc_auc)
        self.live_precision.labels(v).set(nan if report.precision is None else report.precision)
        self.live_recall.labels(v).set(nan if report.recall is None else report.recall)
        self.live_users.labels(v).set(report.users)
        self.live_as_of.labels(v).set(day_start_ms(report.as_of) / 1000)
