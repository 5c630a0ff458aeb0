"""The demo's summary from what a run gathered: its counts, its verdict, and its JSON file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from batch.parity import DayParity
from demo.processes import Kept
from demo.records import FeatureKey, Recommended, ScoreKey
from demo.summary import LeftRunning, RunFacts, offline_tests, summarize
from demo.summary_view import show
from models.metadata import ModelMetadata
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings

GOOD_REPLAY = ReplaySummary(100, {"play": 80, "download": 5, "search": 10}, {"bad_uid": 5})
D1, D2 = date(2017, 4, 1), date(2017, 4, 2)


def _facts(**change: Any) -> RunFacts:
    """A good run of two days, two partitions: uid 1 lives on partition 0, uid 2 on 1, uid 3 (a bot) on 0."""
    features = [
        FeatureKey(1, "2017-04-01", is_bot=False, active=True),
        FeatureKey(2, "2017-04-01", is_bot=False, active=True),
        FeatureKey(3, "2017-04-01", is_bot=True, active=True),
        FeatureKey(1, "2017-04-02", is_bot=False, active=True),
        FeatureKey(1, "2017-04-02", is_bot=False, active=True),  # republished after a restart: the same row
    ]
    facts: dict[str, Any] = {
        "logs": Path("/var/demo/logs"),
        "users": 3,
        "days": ["2017-04-01", "2017-04-02"],
        "replays": {"replay": GOOD_REPLAY, "replay-rest": GOOD_REPLAY},
        "parity": [DayParity(D1, matched=3), DayParity(D2, matched=1)],
        "features": features,
        "stream_rows": 4,
        "scores": [
            ScoreKey(1, "2017-04-01", "v1", 0),
            ScoreKey(2, "2017-04-01", "v1", 1),
            ScoreKey(1, "2017-04-02", "v2", 0),
        ],
        "score_markers": [
            {"as_of": "2017-04-01", "partition": 0, "scored": 1},
            {"as_of": "2017-04-01", "partition": 1, "scored": 1},
            {"as_of": "2017-04-02", "partition": 0, "scored": 1},
            {"as_of": "2017-04-02", "partition": 1, "scored": 0},
        ],
        "partitions": 2,
        "recommendations": [
            Recommended(1, "2017-04-02", "als"),
            Recommended(2, "2017-04-01", "als"),
            Recommended(3, "2017-04-01", "popularity-fallback"),
        ],
        "quality": [
            {"model_version": "v1", "as_of": "2017-04-01", "roc_auc": 0.80},
            {"model_version": "v1", "as_of": "2017-04-02", "roc_auc": 0.70},
            {"model_version": "v1", "as_of": "2017-04-03", "roc_auc": None},  # one class only
        ],
        "dead_letters": ["bad_uid"] * 5 + ["late"],
        "first_models": {"churn": "v1", "als": "a1"},
        "served_models": {"churn": "v2", "als": "a2"},
        "offline_tests": {"v1": ("2017-04-01", 0.81), "v2": ("2017-04-02", 0.86)},
        "report": "/var/demo/report/report.html",
    }
    return RunFacts(**(facts | change))


def test_a_good_run_counts_what_it_produced_and_has_no_problem() -> None:
    s = summarize(_facts(), LeftRunning())
    assert s.ok and s.problems == []
    assert (s.feature_rows, s.feature_keys, s.feature_days) == (5, 4, 2)
    assert (s.scores, s.scores_by_version) == (3, {"v1": 2, "v2": 1})
    assert s.recommendations_by_source == {"als": 2, "popularity-fallback": 1}
    assert s.dead_letters_by_reason == {"bad_uid": 5, "late": 1}
    assert (s.parity.days, s.parity.matched, s.parity.ok) == (2, 4, True)
    assert [c["ok"] for c in s.reconciliation] == [True] * 6
    assert s.hot_reloaded  # v1 -> v2 served, and scores carry both
    assert s.live_roc_auc == pytest.approx({"mean": 0.75, "min": 0.70, "max": 0.80, "pairs": 2})
    assert s.same_day == [
        {
            "model_version": "v1",
            "as_of": "2017-04-01",
            "live": 0.80,
            "offline": 0.81,
            "gap": pytest.approx(-0.01),
        }
    ]
    assert s.offline_test == {"version": "v2", "as_of": "2017-04-02", "roc_auc": 0.86}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        # a replay whose lines do not add up: one line went nowhere
        (
            {"replays": {"replay": GOOD_REPLAY, "replay-rest": ReplaySummary(10, {"play": 9}, {})}},
            "replay replay-rest: lines 10 != events 9 + dead letters 0",
        ),
        # one row missing on one day
        (
            {"parity": [DayParity(D1, matched=3), DayParity(D2, missing=1)]},
            "feature rows = parity: feature rows 4, stream's count 4, parity's rows 3 over 2 days: 1 days",
        ),
        # nothing checked is no proof of parity
        ({"parity": []}, "feature rows = parity: feature rows 4, stream's count 4, parity's rows 0 over 0"),
        # a non-bot row the worker never scored
        (
            {"scores": [ScoreKey(1, "2017-04-01", "v1", 0), ScoreKey(2, "2017-04-01", "v1", 1)]},
            "every non-bot row scored once: 3 non-bot feature rows, 2 scored",
        ),
    ],
)
def test_a_broken_invariant_is_a_problem(change: dict[str, Any], problem: str) -> None:
    s = summarize(_facts(**change), LeftRunning())
    assert not s.ok
    assert s.problems and s.problems[0].startswith(problem), s.problems


def test_no_hot_reload_when_one_model_served_everything() -> None:
    one = [ScoreKey(1, "2017-04-01", "v1", 0)]
    s = summarize(_facts(scores=one, served_models={"churn": "v1", "als": "a1"}), LeftRunning())
    assert not s.hot_reloaded


def test_the_json_file_holds_the_numbers_a_test_reads(tmp_path: Path) -> None:
    left = LeftRunning([Kept("worker", 4242, ["worker"])], stack=False)
    summarize(_facts(), left).write(tmp_path / "summary.json")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["ok"] is True
    assert data["replays"]["replay"]["reconciles"] is True and data["replays"]["replay"]["lines"] == 100
    assert data["parity"]["matched"] == 4 and data["parity"]["days_differing"] == []
    assert data["left_running"]["processes"] == [{"name": "worker", "pid": 4242, "args": ["worker"]}]


def test_the_printed_summary_says_what_runs_still_and_how_to_stop_it(tmp_path: Path) -> None:
    left = LeftRunning([Kept("stream", 101, ["stream"]), Kept("worker", 102, ["worker"])], stack=True)
    console = Console(record=True, width=200)
    show(console, summarize(_facts(), left), Settings(), tmp_path)
    text = console.export_text()
    assert "zero differences" in text and "hot-reloaded" in text
    assert "kill 101 102" in text and "musicbox down" in text


def test_offline_tests_come_from_each_models_metadata() -> None:
    def meta(version: str, metrics: dict[str, Any]) -> ModelMetadata:
        return ModelMetadata("churn", version, "", [], "", metrics, None, None, {}, {}, {})

    tests = offline_tests(
        [
            meta("v1", {"roc_auc": 0.8, "test_as_of": "2017-04-01"}),
            meta("v2", {"roc_auc": float("nan"), "test_as_of": "2017-04-02"}),  # a float all the same
            meta("v3", {}),  # trained without a test: no entry
        ]
    )
    assert tests["v1"] == ("2017-04-01", 0.8) and set(tests) == {"v1", "v2"}
