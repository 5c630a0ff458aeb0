"""The demo's per-stage table from a run's facts, and a stage's seconds beside the replay."""

from __future__ import annotations

import dataclasses

import pytest

from demo.stages import StageFacts, replay_windows, stages
from demo.timeline import FEATURE_ROWS, RECOMMENDATIONS, SCORES, Sample, caught_up_s
from musicbox.replay_summary import ReplaySummary


def _samples(*points: tuple[float, int]) -> list[Sample]:
    return [Sample(t, {FEATURE_ROWS: n}, {}) for t, n in points]


@pytest.mark.parametrize(
    ("points", "windows", "seconds"),
    [
        # rows at 12 and 15 s of a window opened at 10 s: caught up 5 s after its input began
        (((10, 0), (12, 5), (15, 9), (20, 9)), [(10, 30)], 5.0),
        # two replay parts: 10 -> 15 in the first, 40 -> 44 in the second; the pause between is not counted
        (((10, 0), (15, 9), (30, 9), (40, 9), (44, 12), (50, 12)), [(10, 40), (40, 60)], 9.0),
        # growth before a window (the first sample seen in it did not grow) is not in it
        (((5, 0), (8, 3), (10, 3), (20, 3)), [(10, 30)], None),
        # never grew: no seconds (no rate)
        (((10, 0), (20, 0)), [(10, 30)], None),
    ],
)
def test_a_stage_beside_the_replay_takes_from_each_part_s_start_to_its_last_progress(
    points: tuple[tuple[float, int], ...], windows: list[tuple[float, float]], seconds: float | None
) -> None:
    assert caught_up_s(_samples(*points), FEATURE_ROWS, windows) == seconds


def test_replay_windows_run_from_part_to_part_and_the_last_to_the_worker_s_end() -> None:
    spans = {"replay": (10.0, 30.0), "replay-rest": (40.0, 45.0), "stream": (9.0, 70.0)}
    assert replay_windows(spans, ["replay", "replay-rest"], 60.0) == [(10.0, 40.0), (40.0, 60.0)]
    assert replay_windows({}, ["replay"], 60.0) == []


FACTS = StageFacts(
    lines_by_day={"2017-04-01": 1000, "2017-04-02": 2000, "2017-04-03": 3000},
    generated=True,
    spans_s={
        "generate": (0.0, 4.0),
        "train-churn": (4.0, 10.0),
        "train-als": (10.0, 12.0),
        "stream": (12.0, 100.0),
        "worker": (12.0, 100.0),
        "replay": (14.0, 20.0),
        "retrain": (30.0, 40.0),
        "replay-rest": (50.0, 52.0),
        "parity": (100.0, 110.0),
        "report": (110.0, 113.0),
    },
    train_until="2017-04-01",
    retrain_until="2017-04-02",
    train_rows={"train": 900, "retrain": None},
    replays={
        "replay": ReplaySummary(3000, {"play": 2500, "download": 300, "search": 150}, {"bad_uid": 50}),
        "replay-rest": ReplaySummary(3000, {"play": 2600, "download": 200, "search": 190}, {"json": 10}),
    },
    events_by_type={"play": 5100, "download": 500, "search": 340},
    feature_rows=400,
    scores=390,
    recommendations=300,
    parity_rows=400,
    samples=[
        Sample(14.0, {FEATURE_ROWS: 0, SCORES: 0, RECOMMENDATIONS: 0}, {}),
        Sample(22.0, {FEATURE_ROWS: 300, SCORES: 200, RECOMMENDATIONS: 100}, {}),
        Sample(24.0, {FEATURE_ROWS: 300, SCORES: 290, RECOMMENDATIONS: 250}, {}),
        Sample(53.0, {FEATURE_ROWS: 400, SCORES: 290, RECOMMENDATIONS: 250}, {}),
        Sample(56.0, {FEATURE_ROWS: 400, SCORES: 390, RECOMMENDATIONS: 300}, {}),
    ],
    worker_done_s=60.0,
)


def test_the_table_has_every_stage_with_its_counts_seconds_and_rate() -> None:
    table = {s.name: s for s in stages(FACTS)}
    assert list(table) == [
        "generate", "train (first models)", "replay (replay)", "replay (replay-rest)", "stream",
        "worker (scores)", "worker (recommendations)", "retrain", "parity", "report",
    ]  # fmt: skip
    assert (table["generate"].lines, table["generate"].seconds, table["generate"].rate) == (6000, 4.0, 1500)
    # the first models read the logs through their last day: 1,000 lines in 8 s
    train = table["train (first models)"]
    assert (train.lines, train.rows, train.seconds, train.rate) == (1000, 900, 8.0, 125)
    assert (table["replay (replay)"].events, table["replay (replay)"].rate) == (2950, 500)
    assert table["replay (replay-rest)"].rate == 1500
    # beside the replay: 22 - 14 = 8 s in the first part, 53 - 50 = 3 s in the second
    stream = table["stream"]
    assert (stream.events, stream.rows, stream.seconds, stream.rate_of) == (5940, 400, 11.0, "events")
    assert stream.rate == pytest.approx(5940 / 11)
    assert (table["worker (scores)"].seconds, table["worker (scores)"].rate) == (16.0, 390 / 16)
    recs = table["worker (recommendations)"]
    assert (recs.events, recs.rows, recs.seconds) == (5600, 300, 16.0)
    assert (table["retrain"].lines, table["retrain"].rows, table["retrain"].seconds) == (3000, None, 10.0)
    assert (table["parity"].rows, table["parity"].rate) == (400, 600)
    assert all(s.rate is not None and s.rate > 0 for s in table.values())


def test_a_cached_data_set_has_no_generation_time_and_says_so() -> None:
    generate = stages(dataclasses.replace(FACTS, generated=False))[0]
    assert (generate.seconds, generate.rate, generate.lines) == (None, None, 6000)
    assert "cached" in generate.note
