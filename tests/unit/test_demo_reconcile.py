"""The reconciliation lines of the demo's summary: each passes on a good run and fails, naming
what is wrong, when its count does not add up."""

from __future__ import annotations

from typing import Any

import pytest

from demo.reconcile import (
    ParityTotals,
    feature_check,
    markers_check,
    recommendations_check,
    replay_checks,
    scores_check,
)
from demo.records import FeatureKey, Recommended, ScoreKey
from musicbox.replay_summary import ReplaySummary

D1, D2 = "2017-04-01", "2017-04-02"
# Two partitions: uid 1 lives on 0, uid 2 on 1; uid 9 is a bot (on 1).
FEATURES = [
    FeatureKey(1, D1, is_bot=False, active=True),
    FeatureKey(2, D1, is_bot=False, active=False),  # searched only: no recommendation due
    FeatureKey(9, D1, is_bot=True, active=True),
    FeatureKey(1, D2, is_bot=False, active=True),
]
SCORES = [ScoreKey(1, D1, "v1", 0), ScoreKey(2, D1, "v1", 1), ScoreKey(1, D2, "v2", 0)]
MARKERS: list[dict[str, Any]] = [
    {"as_of": D1, "partition": 0, "scored": 1},
    {"as_of": D1, "partition": 1, "scored": 1},
    {"as_of": D2, "partition": 0, "scored": 1},
    {"as_of": D2, "partition": 1, "scored": 0},
    {"as_of": D2, "partition": 1, "scored": 0},  # a marker sent twice: identical, idempotent
]
RECS = [Recommended(1, D2, "als"), Recommended(9, D1, "popularity-fallback")]
PARITY = ParityTotals(days=2, matched=4, differing=0, missing=0, extra=0, duplicate=0, days_differing=[])


def test_a_replay_reconciles_when_every_line_is_an_event_a_dead_letter_or_was_in_kafka() -> None:
    good = ReplaySummary(100, {"play": 80}, {"bad_uid": 5}, already_in_kafka=15)
    bad = ReplaySummary(100, {"play": 80}, {"bad_uid": 5})  # 15 lines went nowhere
    checks = replay_checks({"replay": good, "replay-rest": bad})
    assert [(c.name, c.ok) for c in checks] == [("replay replay", True), ("replay replay-rest", False)]
    assert checks[0].detail == "lines 100 = events 80 + dead letters 5 + already in Kafka 15"
    assert checks[1].detail == "lines 100 != events 80 + dead letters 5"


@pytest.mark.parametrize(
    ("features", "stream_rows", "parity", "ok", "says"),
    [
        (FEATURES, 4, PARITY, True, "zero differences"),
        # a republished row is the same row: counted once
        ([*FEATURES, FEATURES[0]], 4, PARITY, True, "zero differences"),
        # the stream job counted a row the topic does not hold
        (FEATURES, 5, PARITY, False, "stream's count 5"),
        # parity matched fewer rows than the topic holds
        (FEATURES, 4, ParityTotals(2, 3, 0, 0, 0, 0, []), False, "unequal"),
        # a difference on a day
        (FEATURES, 4, ParityTotals(2, 4, 1, 0, 0, 0, [D2]), False, "1 days differ (differing 1"),
        # nothing compared proves nothing
        (FEATURES, 4, ParityTotals(0, 0, 0, 0, 0, 0, []), False, "no closed day"),
    ],
)
def test_feature_rows_equal_parity_s_rows_with_zero_differences(
    features: list[FeatureKey], stream_rows: int, parity: ParityTotals, ok: bool, says: str
) -> None:
    check = feature_check(features, stream_rows, parity)
    assert check.ok is ok and says in check.detail, check.detail


@pytest.mark.parametrize(
    ("scores", "ok", "says"),
    [
        (SCORES, True, "3 non-bot feature rows, 3 scored (3 score records)"),
        # a score sent twice after a restart: the same identity, still once
        ([*SCORES, SCORES[0]], True, "3 scored (4 score records)"),
        # a row never scored
        (SCORES[:2], False, "1 not scored ((1, '2017-04-02'))"),
        # a bot scored
        ([*SCORES, ScoreKey(9, D1, "v1", 1)], False, "1 scored without a non-bot feature row"),
        # a row scored by two model versions
        ([*SCORES, ScoreKey(1, D2, "v1", 0)], False, "1 scored by two model versions"),
    ],
)
def test_every_non_bot_row_is_scored_exactly_once(scores: list[ScoreKey], ok: bool, says: str) -> None:
    check = scores_check(FEATURES, scores)
    assert check.ok is ok and says in check.detail, check.detail


@pytest.mark.parametrize(
    ("markers", "ok", "says"),
    [
        (MARKERS, True, "2 days x 2 partitions: every marker there"),
        # a partition never marked its day complete
        (MARKERS[:3], False, "1 without a marker (('2017-04-02', 1))"),
        # a marker counting another number than the scores on its partition
        ([*MARKERS[:2], {"as_of": D2, "partition": 0, "scored": 2}, MARKERS[3]], False, "1 count other"),
    ],
)
def test_each_days_markers_count_its_scores_on_every_partition(
    markers: list[dict[str, Any]], ok: bool, says: str
) -> None:
    check = markers_check(FEATURES, SCORES, markers, partitions=2)
    assert check.ok is ok and says in check.detail, check.detail


@pytest.mark.parametrize(
    ("recs", "ok", "says"),
    [
        (RECS, True, "3 active user-days, 2 users recommended"),
        # uid 1's D1 activity is covered by its D2 recommendation ("that day or later")
        ([Recommended(1, D2, "als"), Recommended(9, D2, "als")], True, "each as of that day or later"),
        # uid 1 recommended only as of D1: its activity on D2 is not
        ([Recommended(1, D1, "als"), RECS[1]], False, "1 lack a recommendation"),
        # nobody recommended
        ([], False, "3 lack"),
    ],
)
def test_every_active_user_has_a_recommendation_as_of_that_day_or_later(
    recs: list[Recommended], ok: bool, says: str
) -> None:
    check = recommendations_check(FEATURES, recs)
    assert check.ok is ok and says in check.detail, check.detail


def test_no_activity_at_all_is_no_proof_of_recommendations() -> None:
    quiet = [f._replace(active=False) for f in FEATURES]
    assert not recommendations_check(quiet, RECS).ok
