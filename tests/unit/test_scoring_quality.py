"""Live model quality: labels from later activity, ROC AUC / precision / recall per as-of day and version.

Timeline used below (label window 3 days to keep it short), one partition:

    as_of      04-01   04-02   04-03   04-04   04-05
    scored     u1..u4
    active             u1              u2              (u3, u4: silent -> churned)
    write c    100     200     300     400     500     (one streaming-job write per day)

04-01's label window is 04-02..04-04; its rows are all in once a later write (c=500) shows up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streaming.scoring.quality import LiveQuality, SameDay, evaluate, live_vs_offline
from streaming.scoring.state import DictStore

WINDOW_D = 3


def quality() -> LiveQuality:
    return LiveQuality(DictStore(), WINDOW_D)


def write(q: LiveQuality, partition: int, c: int, day: str) -> None:
    q.observe_writes(partition, [(c, day)])


def test_labels_and_metrics_of_an_as_of_day() -> None:
    q = quality()
    # u1 .. u4 scored 0.2, 0.4, 0.6, 0.9 at threshold 0.5; u1 and u2 come back, u3 and u4 do not.
    q.record_scores(0, 10, "2017-04-01", "v1", 0.5, [1, 2, 3, 4], [0.2, 0.4, 0.6, 0.9])
    q.record_active(0, 20, "2017-04-02", [1])
    q.record_active(0, 40, "2017-04-04", [2])
    for c, day in zip(
        (100, 200, 300, 400), ("2017-04-01", "2017-04-02", "2017-04-03", "2017-04-04"), strict=True
    ):
        write(q, 0, c, day)
    assert q.resolve().reports == []  # 04-04's rows may still be arriving: not yet
    write(q, 0, 500, "2017-04-05")
    resolution = q.resolve()
    [report] = resolution.reports
    assert (report.as_of, report.model_version, report.users) == ("2017-04-01", "v1", 4)
    assert report.roc_auc == 1.0  # the churners (u3, u4) got the highest scores
    assert report.precision == 1.0 and report.recall == 1.0 and report.churn_rate == 0.5
    q.forget(resolution)
    assert q.resolve().reports == []  # reported once


def test_activity_after_the_label_window_does_not_count() -> None:
    # u1 returns on day 4 after as_of (window 3): still a churner for that as_of.
    q = quality()
    q.record_scores(0, 0, "2017-04-01", "v1", 0.5, [1, 2], [0.7, 0.1])
    q.record_active(0, 5, "2017-04-05", [1])
    q.record_active(0, 6, "2017-04-01", [2])  # active ON the as-of day: not in the label window
    for c, day in enumerate(("2017-04-04", "2017-04-05", "2017-04-06"), start=1):
        write(q, 0, c, day)
    [report] = q.resolve().reports
    assert report.churn_rate == 1.0 and report.roc_auc is None  # one class: AUC undefined, not made up


@pytest.mark.parametrize(
    ("writes", "through"),
    [
        ([(1, "2017-04-01")], None),  # one write seen: it may still be arriving
        ([(1, "2017-04-01"), (2, "2017-04-02")], "2017-04-01"),  # a later write completes the earlier
        ([(1, "2017-04-01"), (1, "2017-04-02"), (2, "2017-04-03")], "2017-04-02"),  # a 2-day write
        ([(1, "2017-04-01"), (2, "2017-04-02"), (1, "2017-04-01")], "2017-04-01"),  # a re-published old write
        ([(5, "2017-04-03"), (6, "2017-04-04"), (7, "2017-04-05"), (8, "2017-04-06")], "2017-04-05"),
    ],
)
def test_completeness_from_write_stamps(writes: list[tuple[int, str]], through: str | None) -> None:
    q = quality()
    q.observe_writes(0, writes)
    assert q.complete_through() == through


def test_completeness_is_the_slowest_partition() -> None:
    # Partition 1 has only seen 04-02 complete: 04-03 is not complete for the worker.
    q = quality()
    q.observe_writes(0, [(1, "2017-04-02"), (2, "2017-04-03"), (3, "2017-04-04")])
    q.observe_writes(1, [(1, "2017-04-02"), (2, "2017-04-03")])
    assert q.complete_through() == "2017-04-02"


def test_versions_are_reported_apart_and_a_rescored_user_counts_once() -> None:
    q = quality()
    q.record_scores(0, 0, "2017-04-01", "v1", 0.5, [1, 2, 3], [0.9, 0.2, 0.8])
    q.record_scores(0, 3, "2017-04-01", "v1", 0.5, [3], [0.8])  # re-read after a restart: same user
    q.record_scores(1, 0, "2017-04-01", "v2", 0.3, [4, 5], [0.9, 0.1])
    q.record_active(1, 9, "2017-04-02", [2, 5])
    for p in (0, 1):
        q.observe_writes(p, [(1, "2017-04-04"), (2, "2017-04-05")])
    reports = {r.model_version: r for r in q.resolve().reports}
    assert reports["v1"].users == 3 and reports["v2"].users == 2
    assert reports["v2"].threshold == 0.3


def test_resolved_state_is_dropped() -> None:
    # After forgetting, only what an open label window still needs is kept.
    q = quality()
    q.record_scores(0, 0, "2017-04-01", "v1", 0.5, [1], [0.9])
    q.record_active(0, 1, "2017-04-02", [1])
    q.record_active(0, 2, "2017-04-03", [1])
    q.observe_writes(0, [(1, "2017-04-04"), (2, "2017-04-05")])
    q.forget(q.resolve())
    kept = sorted(k for k, _ in q.store.items())
    assert kept == ["a|2017-04-03|0|2", "c|0"]  # 04-03 may still label as_of 04-02


def test_evaluate_matches_sklearn_and_the_threshold() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 500), 0, 1)
    report = evaluate("2017-04-01", "v", 0.5, y, p)
    flagged = p >= 0.5
    assert report.roc_auc == pytest.approx(roc_auc_score(y, p))
    assert report.precision == pytest.approx((flagged & (y == 1)).sum() / flagged.sum())
    assert report.recall == pytest.approx((flagged & (y == 1)).sum() / (y == 1).sum())


def test_evaluate_says_undefined_rather_than_zero() -> None:
    # Nobody flagged: precision is undefined (None), not 0; recall is 0 of the churners.
    report = evaluate("2017-04-01", "v", 0.99, np.array([1, 0]), np.array([0.5, 0.1]))
    assert report.precision is None and report.recall == 0.0 and report.value()["precision"] is None


def test_scores_read_again_after_their_day_settled_are_not_judged() -> None:
    # A restart may re-read rows of a day whose label window has closed and whose activity was
    # dropped: judging them now would call everyone a churner, so they are left out.
    q = quality()
    q.record_scores(0, 0, "2017-04-01", "v1", 0.5, [1, 2], [0.9, 0.1])
    q.record_active(0, 1, "2017-04-02", [2])
    q.observe_writes(0, [(1, "2017-04-04"), (2, "2017-04-05")])
    q.forget(q.resolve())
    q.record_scores(0, 0, "2017-04-01", "v1", 0.5, [1, 2], [0.9, 0.1])  # the same rows, re-read
    q.record_active(0, 1, "2017-04-02", [2])
    assert q.resolve().reports == []
    assert sorted(k for k, _ in q.store.items()) == ["c|0"]


def test_live_auc_is_paired_with_the_offline_test_of_the_same_model_and_day() -> None:
    reports: list[dict[str, Any]] = [
        {"as_of": "2017-04-14", "model_version": "a", "roc_auc": 0.837},
        {"as_of": "2017-04-15", "model_version": "a", "roc_auc": 0.843},  # not its test day
        {"as_of": "2017-04-14", "model_version": "b", "roc_auc": 0.9},  # not its test day either
        {"as_of": "2017-04-20", "model_version": "b", "roc_auc": None},  # no AUC (one class)
        {"as_of": "2017-04-14", "model_version": "c", "roc_auc": 0.7},  # no offline test known
    ]
    tests = {"a": ("2017-04-14", 0.8366), "b": ("2017-04-20", 0.85)}
    assert live_vs_offline(reports, tests) == [SameDay("a", "2017-04-14", 0.837, 0.8366)]
