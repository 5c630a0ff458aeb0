"""Churn labels derived from the streaming feature log (rows without `churn`), against timelines
and against a plain-Python oracle on random activity; and reading the log's partitions."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from batch.errors import TrainingError
from batch.feature_log_labels import (
    DONE_MARKER,
    derive_labels,
    labelled_log_days,
    log_days,
    read_feature_log,
)
from batch.training_data import features_from_feature_log
from musicbox.features import AS_OF, COUNT_FEATURES, FEATURE_NAMES, LABEL, LOOKBACK_D, UID

D0 = date(2017, 4, 1)
WINDOW_D = 3  # a short label window keeps the timelines readable


def day(k: int) -> date:
    return D0 + timedelta(days=k)


def log_rows(activity: dict[int, set[int]], days: range, lookback_d: int = LOOKBACK_D) -> pd.DataFrame:
    """The rows a feature log holds: a row per (uid, day) for users active in the last `lookback_d`
    days, with the 1-day counts of that day (only plays_1d is set: any count > 0 means active)."""
    rows = []
    for uid, active in activity.items():
        for k in days:
            if any(k - lookback_d < a <= k for a in active):
                row = dict.fromkeys(COUNT_FEATURES, 0)
                row["plays_1d"] = 1 if k in active else 0
                rows.append({UID: uid, AS_OF: day(k), **row})
    return pd.DataFrame(rows)


def label_of(frame: pd.DataFrame, uid: int, k: int) -> float:
    value = frame.loc[(frame[UID] == uid) & (frame[AS_OF] == day(k)), LABEL]
    assert len(value) == 1
    return float(value.iloc[0])


# Timelines over days 0..9 (window 3): the days a user was active, the as-of day, the label.
CASES = [
    # active the next day: stays
    ({0, 1}, 0, 0.0),
    # active on the last day of the window only: stays
    ({0, 3}, 0, 0.0),
    # next activity the day after the window: churned
    ({0, 4}, 0, 1.0),
    # never active again: churned (the user stays in the log, with zero 1-day counts)
    ({0}, 0, 1.0),
    # in the log every later day (active within 30 days) but no 1-day count: still churned
    ({0, 1}, 1, 1.0),
    # the window reaches past the last day of the log (day 9): unknown
    ({0, 7}, 7, math.nan),
]


@pytest.mark.parametrize(("active", "as_of_k", "expected"), CASES)
def test_label_from_timeline(active: set[int], as_of_k: int, expected: float) -> None:
    rows = log_rows({7: active}, range(10))
    labelled = derive_labels(rows, [day(k) for k in range(10)], WINDOW_D)
    got = label_of(labelled, 7, as_of_k)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_absent_from_the_log_counts_as_inactive_not_as_unknown() -> None:
    # With a 2-day lookback the user (active on days 0, 1, 5) is absent from the log on days 3
    # and 4. Day 1's window 2..4 holds one zero-count row and two absences: churned, and known.
    # Day 2's window 3..5 reaches the active day 5: stayed.
    rows = log_rows({7: {0, 1, 5}}, range(10), lookback_d=2)
    assert set(rows[AS_OF]) == {day(k) for k in (0, 1, 2, 5, 6)}
    labelled = derive_labels(rows, [day(k) for k in range(10)], WINDOW_D)
    assert label_of(labelled, 7, 1) == 1.0
    assert label_of(labelled, 7, 2) == 0.0


def test_a_missing_log_day_makes_the_labels_that_need_it_unknown() -> None:
    rows = log_rows({7: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, range(10))
    present = [day(k) for k in range(10) if k != 5]  # day 5's partition never finished
    labelled = derive_labels(rows.loc[rows[AS_OF] != day(5)], present, WINDOW_D)
    assert label_of(labelled, 7, 1) == 0.0  # window 2..4: complete
    for k in (2, 3, 4):  # windows that contain day 5
        assert math.isnan(label_of(labelled, 7, k))
    assert labelled_log_days(present, WINDOW_D) == [day(0), day(1), day(6)]


def test_random_activity_matches_the_definition() -> None:
    """churn(u, D) = 1 iff no activity on D+1..D+W, for every (u, D) row whose window is in the log."""
    rng = random.Random(5)
    activity = {
        uid: {k for k in range(40) if rng.random() < p}
        for uid, p in ((u, rng.choice((0.05, 0.2, 0.6))) for u in range(1, 80))
    }
    activity = {u: a for u, a in activity.items() if a}
    days = range(40)
    labelled = derive_labels(log_rows(activity, days), [day(k) for k in days], 14)
    checked = 0
    for row in labelled.itertuples(index=False):
        k = (getattr(row, AS_OF) - D0).days
        value = getattr(row, LABEL)
        if k + 14 > 39:
            assert math.isnan(value)
            continue
        expected = 0.0 if any(k < a <= k + 14 for a in activity[getattr(row, UID)]) else 1.0
        assert value == expected
        checked += 1
    assert checked > 500


def write_partition(root: Path, d: date, frame: pd.DataFrame | None, done: bool = True) -> None:
    part = root / f"{AS_OF}={d.isoformat()}"
    part.mkdir(parents=True)
    if frame is not None:
        frame.to_parquet(part / "part-00000.parquet", index=False)
    if done:
        (part / DONE_MARKER).touch()


def full_rows(uids: list[int], plays_1d: int) -> pd.DataFrame:
    frame = pd.DataFrame({UID: uids})
    for name in FEATURE_NAMES:
        frame[name] = 0
    frame["device"] = "ar"
    frame["is_bot"] = False
    frame["plays_1d"] = plays_1d
    frame["computed_at_ms"] = 0
    return frame


def test_reading_the_log_skips_unfinished_partitions_and_keeps_empty_days(tmp_path: Path) -> None:
    write_partition(tmp_path, day(0), full_rows([1, 2], 1))
    write_partition(tmp_path, day(1), None)  # nobody active that day, but the day closed
    write_partition(tmp_path, day(2), full_rows([1], 1), done=False)  # a crashed write
    (tmp_path / "_staging-1234").mkdir()
    assert log_days(tmp_path) == [day(0), day(1)]
    rows = read_feature_log(tmp_path)
    assert sorted(rows[UID]) == [1, 2]
    assert set(rows[AS_OF]) == {day(0)}


def test_training_rows_from_the_log_pick_the_newest_labelled_test_day(tmp_path: Path) -> None:
    # 40 days, user 1 active every day, user 2 only on the first day: 2 churns, 1 stays.
    for k in range(40):
        write_partition(tmp_path, day(k), full_rows([1, 2], 1).assign(plays_1d=[1, 1 if k == 0 else 0]))
    rows, test_day, days = features_from_feature_log(tmp_path, label_window_d=14, stride_d=7)
    assert test_day == day(39 - 14)
    snapshot_days = sorted(set(rows[AS_OF]))
    assert snapshot_days == [day(4), day(11), day(25)]  # 25-14 = 11, then every 7 days back
    assert rows.loc[rows[UID] == 2, LABEL].eq(1.0).all()
    assert rows.loc[rows[UID] == 1, LABEL].eq(0.0).all()
    assert len(days) == 40


def test_a_log_without_a_whole_label_window_is_refused(tmp_path: Path) -> None:
    for k in range(10):
        write_partition(tmp_path, day(k), full_rows([1], 1))
    with pytest.raises(TrainingError, match="label window"):
        features_from_feature_log(tmp_path, label_window_d=14)
