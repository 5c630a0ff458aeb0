"""The worker's Prometheus metrics show what an operator needs: the served version, refusals, quality."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from streaming.scoring.metrics import WorkerMetrics, observe_many, show_lags
from streaming.scoring.quality import QualityReport
from streaming.scoring.reload import ReloadEvent


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_model_info_follows_the_served_version() -> None:
    # One version per kind is marked served; a switch moves the mark, a refusal does not.
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.reload(ReloadEvent("churn", "loaded", "v1", None))
    m.reload(ReloadEvent("churn", "switched", "v2", "v1"))
    m.reload(ReloadEvent("churn", "refused", "v3", "v2", "CorruptArtifactError"))
    assert value(registry, "musicbox_worker_model_info", kind="churn", version="v2") == 1
    assert value(registry, "musicbox_worker_model_info", kind="churn", version="v1") is None
    assert value(registry, "musicbox_worker_model_info", kind="churn", version="v3") is None
    assert value(registry, "musicbox_worker_model_reloads_total", kind="churn") == 1
    assert (
        value(
            registry,
            "musicbox_worker_model_reload_failures_total",
            kind="churn",
            reason="CorruptArtifactError",
        )
        == 1
    )


def test_live_quality_gauges_per_version() -> None:
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.quality(QualityReport("2017-04-01", "v1", 120, 0.81, None, 0.9, 0.5, 0.6))
    assert value(registry, "musicbox_worker_live_roc_auc", model_version="v1") == 0.81
    assert value(registry, "musicbox_worker_live_recall", model_version="v1") == 0.9
    precision = value(registry, "musicbox_worker_live_precision", model_version="v1")
    assert precision is not None and math.isnan(precision)  # undefined shows as NaN, not 0
    assert value(registry, "musicbox_worker_live_users", model_version="v1") == 120


def test_observe_many_is_observe_for_each_value() -> None:
    values = np.array([0.0, 0.1, 0.1000001, 0.25, 3.0, 7.5, 1e6, 0.3, 0.3])
    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    a, b = (
        Histogram("latency_seconds", "x", buckets=(0.1, 0.25, 0.5, 5, 10), registry=r)
        for r in (one_by_one, bulk)
    )
    for v in values:
        a.observe(v)
    observe_many(b, values)
    observe_many(b, np.array([]))

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name, s.labels, s.value)
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    assert samples(bulk) == samples(one_by_one)


def test_consumer_lag_series_follow_the_partitions_read() -> None:
    # A partition given to another worker in a rebalance leaves this worker's metrics at once:
    # its last value, frozen, would raise the lag alert forever.
    registry = CollectorRegistry()
    lag = WorkerMetrics(registry).consumer_lag

    def shown(topic: str, partition: str) -> float | None:
        return value(registry, "musicbox_worker_consumer_lag", topic=topic, partition=partition)

    series = show_lags(lag, {("f", "0"): 5, ("f", "1"): 900, ("p", "0"): None}, set())
    assert (shown("f", "0"), shown("f", "1"), shown("p", "0")) == (5, 900, None)  # None: not known yet
    series = show_lags(lag, {("f", "0"): 0, ("p", "0"): 3}, series)  # partition 1 moved away
    assert (shown("f", "0"), shown("f", "1"), shown("p", "0")) == (0, None, 3)
    series = show_lags(lag, {("f", "0"): None, ("f", "1"): None}, series)  # back, lag unknown
    assert (shown("f", "0"), shown("f", "1"), shown("p", "0")) == (0, None, None)
    assert series == {("f", "0")}


def test_reload_series_start_at_zero_so_the_first_refusal_is_an_increase() -> None:
    # A counter series born at 1 never increases in Prometheus' eyes: the reload-failure alert
    # (increase > 0) would miss a single refusal. Every kind and reason is there at 0 from the start.
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    for kind in ("churn", "als"):
        assert value(registry, "musicbox_worker_model_reloads_total", kind=kind) == 0
        for reason in ("CorruptArtifactError", "FeatureMismatchError", "unreadable_current", "unexpected"):
            assert (
                value(registry, "musicbox_worker_model_reload_failures_total", kind=kind, reason=reason) == 0
            )
    m.reload(ReloadEvent("als", "refused", "v9", None, "LibraryMismatchError"))
    failures = "musicbox_worker_model_reload_failures_total"
    assert value(registry, failures, kind="als", reason="LibraryMismatchError") == 1


def test_live_quality_series_of_a_retired_version_are_removed() -> None:
    # Once a newer version has a later labelled day, the old one scores no more: its five live
    # gauges go (a frozen low AUC would keep the live-AUC alert firing for a model not served).
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    names = ("roc_auc", "precision", "recall", "users", "as_of_timestamp_seconds")

    def shown(version: str) -> list[float | None]:
        return [value(registry, f"musicbox_worker_live_{n}", model_version=version) for n in names]

    m.quality(QualityReport("2017-04-01", "v1", 100, 0.60, 0.5, 0.5, 0.5, 0.3))
    m.quality(QualityReport("2017-04-02", "v1", 100, 0.62, 0.5, 0.5, 0.5, 0.3))
    m.quality(QualityReport("2017-04-02", "v2", 50, 0.80, 0.5, 0.5, 0.5, 0.3))  # switched that day
    assert value(registry, "musicbox_worker_live_roc_auc", model_version="v1") == 0.62  # both shown
    assert value(registry, "musicbox_worker_live_roc_auc", model_version="v2") == 0.80
    m.quality(QualityReport("2017-04-03", "v2", 100, 0.81, 0.5, 0.5, 0.5, 0.3))
    assert shown("v1") == [None] * 5
    m.quality(QualityReport("2017-04-02", "v1", 100, 0.61, 0.5, 0.5, 0.5, 0.3))  # a late one: not back
    assert shown("v1") == [None] * 5
    assert value(registry, "musicbox_worker_live_roc_auc", model_version="v2") == 0.81
    m.quality(QualityReport("2017-04-04", "v1", 100, 0.70, 0.5, 0.5, 0.5, 0.3))  # v1 promoted again
    assert value(registry, "musicbox_worker_live_roc_auc", model_version="v1") == 0.70
    assert shown("v2") == [None] * 5
