"""The Grafana dashboard queries what our processes export, and shows what the alerts watch."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.prometheus import (
    EXPORTER_RULES,
    RULES,
    defined_metric_names,
    exporter_metric_names,
    load_dashboard,
    metric_names,
    panel_queries,
    panels,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        # a function and an aggregation are not metrics; label names in `by` and matchers are not
        ("sum by (topic) (rate(musicbox_a_total{reason=~\"x|y\"}[5m]))", {"musicbox_a_total"}),
        # both sides of a binary operation, an offset, a number with an exponent
        ("a - b offset 15m > 1e3 unless on(job, instance) c == 1", {"a", "b", "c"}),
        # strings may hold anything, brackets included
        ('label_replace(d, "dst", "$1(", "src", "(.*)")', {"d"}),
        ("histogram_quantile(0.9, sum(rate(e_bucket[5m])) without (instance)) / ignoring(le) group_left f",
         {"e_bucket", "f"}),
    ],
)  # fmt: skip
def test_metric_names_of_a_query(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_panel_has_a_query() -> None:
    dashboard = load_dashboard()
    without = [
        p.get("title") for p in panels(dashboard) if not any(t.get("expr") for t in p.get("targets", []))
    ]
    assert panels(dashboard) and without == []


def test_every_query_reads_metrics_our_code_defines() -> None:
    # A metric renamed in the code (or here) fails this test instead of leaving a blank panel.
    defined = defined_metric_names()
    unknown = {
        f"{q.panel} [{q.ref_id}]": sorted(metric_names(q.expr) - defined)
        for q in panel_queries(load_dashboard())
        if metric_names(q.expr) - defined or not metric_names(q.expr)
    }
    assert unknown == {}


def test_the_dashboard_shows_every_series_the_alerts_watch() -> None:
    watched = set(re.findall(r"\bmusicbox_\w+|\bup\b", RULES.read_text()))
    shown = set().union(*(metric_names(q.expr) for q in panel_queries(load_dashboard())))
    assert watched - shown == set()


def test_the_kafka_exporter_rules_name_each_metric_literally() -> None:
    names = exporter_metric_names()
    rules = EXPORTER_RULES.read_text().count("- pattern:")
    assert len(names) == rules  # one literal name per rule, none shared
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", n) for n in names), names
    # The broker metrics operators need are there.
    assert {"kafka_server_under_replicated_partitions", "kafka_controller_offline_partitions"} <= names
    assert "kafka_network_requests_total" in names


def test_the_dashboard_shows_the_brokers_health() -> None:
    shown = set().union(*(metric_names(q.expr) for q in panel_queries(load_dashboard())))
    assert {"kafka_server_under_replicated_partitions", "kafka_controller_offline_partitions"} <= shown
