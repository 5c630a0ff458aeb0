"""Retraining's pure parts: durations, the schedule loop (fake clock), the training windows, and
the "already trained on this data" check."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from batch.als_training import AlsWindows, default_windows
from batch.errors import TrainingError
from batch.retrain import already_trained, parse_duration, run_schedule
from batch.training_data import churn_snapshot_days
from models.metadata import TrainingInfo
from models.registry import promote, publish
from musicbox.errors import MusicboxError

DURATIONS = [
    ("90s", 90.0),  # seconds
    ("30m", 1800.0),  # minutes
    ("6h", 21_600.0),  # hours
    ("1d", 86_400.0),  # days
    ("1h30m", 5400.0),  # combined units add up
    ("45", 45.0),  # a bare number is seconds
    ("0.5h", 1800.0),  # fractions
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6x", "h", "0", "-5", "1h 30m", "3m3"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_schedule_runs_start_to_start_and_survives_a_failed_run() -> None:
    t = FakeTime()
    durations = iter([10.0, 70.0, 5.0])  # the second run takes longer than the interval
    errors: list[str] = []
    starts: list[float] = []

    def job() -> None:
        starts.append(t.now)
        took = next(durations)
        t.now += took
        if took == 5.0:
            raise MusicboxError("not enough days yet")

    runs = run_schedule(
        job, 60.0, sleep=t.sleep, clock=t.clock, on_error=lambda e: errors.append(str(e)), max_runs=3
    )
    assert runs == 3
    assert starts == [0.0, 60.0, 130.0]  # a late run starts the next one at once
    assert t.sleeps == [50.0, 0.0]
    assert errors == ["not enough days yet"]


def test_schedule_lets_other_errors_and_ctrl_c_through() -> None:
    def job() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_schedule(job, 1.0, sleep=lambda s: None)


SNAPSHOTS = [
    # the study's case: test 04-28 on logs from 03-30: 04-14, 04-07, 03-31, then the test day
    (
        date(2017, 4, 28),
        date(2017, 3, 30),
        7,
        [date(2017, 3, 31), date(2017, 4, 7), date(2017, 4, 14), date(2017, 4, 28)],
    ),
    # stride 1: every day up to the label window's start
    (date(2017, 4, 16), date(2017, 4, 1), 1, [date(2017, 4, 1), date(2017, 4, 2), date(2017, 4, 16)]),
]


@pytest.mark.parametrize(("test_day", "first", "stride", "expected"), SNAPSHOTS)
def test_churn_snapshot_days(test_day: date, first: date, stride: int, expected: list[date]) -> None:
    days = churn_snapshot_days(test_day, first, stride_d=stride, label_window_d=14)
    assert days == expected
    assert all(d <= test_day - timedelta(days=14) for d in days[:-1])  # labels known on the test day


def test_no_room_for_a_training_snapshot_is_refused() -> None:
    with pytest.raises(TrainingError, match="no training snapshot"):
        churn_snapshot_days(date(2017, 4, 10), date(2017, 3, 30), label_window_d=14)


def test_als_windows_never_overlap_what_they_are_judged_on() -> None:
    w = AlsWindows(date(2017, 5, 5), eval_window_d=7, rating_window_d=30)
    assert w.train == (date(2017, 4, 6), date(2017, 5, 5))
    assert w.test == (date(2017, 5, 6), date(2017, 5, 12))
    assert w.selection_train[1] < w.validation[0] and w.validation[1] < w.test[0]
    assert w.train[1] < w.test[0]
    assert w.needed == (date(2017, 3, 30), date(2017, 5, 12))


def test_default_windows_end_with_the_data_and_refuse_short_logs() -> None:
    w = default_windows(date(2017, 3, 30), date(2017, 5, 12))
    assert w.test[1] == date(2017, 5, 12)
    with pytest.raises(TrainingError, match="need events of"):
        default_windows(date(2017, 4, 15), date(2017, 5, 12))


def test_already_trained_finds_the_newest_or_served_version_with_that_data(tmp_path: Path) -> None:
    def version(fp: str, hour: int) -> str:
        def write(d: Path) -> list[str]:
            (d / "a.txt").write_text(fp)
            return ["a.txt"]

        meta = publish(
            tmp_path,
            "churn",
            write,
            TrainingInfo(("a", "b"), fp),
            {},
            None,
            lambda: datetime(2026, 11, 28, hour, tzinfo=UTC),
        )
        return meta.version

    assert already_trained(tmp_path, "churn", "fp1") is None  # empty registry
    v1 = version("fp1", 1)
    promote(tmp_path, "churn", v1)
    version("fp2", 2)  # newer, refused by the gate, not served
    assert v1 in (already_trained(tmp_path, "churn", "fp1") or "")  # the served one
    assert "this very data" in (already_trained(tmp_path, "churn", "fp2") or "")  # the newest one
    assert already_trained(tmp_path, "churn", "fp3") is None  # new data: retrain
