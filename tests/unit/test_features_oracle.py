"""The feature oracle (tests/fixtures/oracle.py) reads the DESIGN 5 contract right: hand-made timelines."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from musicbox.events import day_start_ms
from musicbox.features import DEVICE, DEVICE_UNKNOWN, IS_BOT, NEVER_D, WINDOWS_D
from tests.fixtures.oracle import OracleEvent, oracle_features, oracle_labels

D = date(2017, 4, 28)  # the as-of day of every hand-made timeline below


def ev(
    kind: str, day_offset: int, uid: int | None = 1, device: str | None = "ar", play_time_s: int | None = None
) -> OracleEvent:
    """An event `day_offset` days from D (0 = D, -29 = D-29), at noon."""
    return {
        "type": kind,
        "uid": uid,
        "event_time_ms": day_start_ms(D + timedelta(days=day_offset)) + 12 * 3_600_000,
        "device": device,
        "play_time_s": play_time_s,
    }


def test_recency_is_31_for_never_and_counts_the_as_of_day_as_1() -> None:
    # day:        D-29 .......... D-3  D-2  D-1   D
    # play:                        P                P
    # download:                         d
    # search:     (none)
    rows = oracle_features([ev("play", -3), ev("download", -2), ev("play", 0)], D, bot_plays_30d=1400)
    row = rows[1]
    assert (row["days_since_play"], row["days_since_download"], row["days_since_search"]) == (1, 3, NEVER_D)


@pytest.mark.parametrize(
    ("offset", "expected_plays", "expected_recency"),
    [
        # plays_{1,3,7,14,30}d of a single play at D+offset; recency = D+1 - that day
        (0, (1, 1, 1, 1, 1), 1),  # the as-of day is inside every window
        (-1, (0, 1, 1, 1, 1), 2),  # D-1 is outside the 1-day window
        (-2, (0, 1, 1, 1, 1), 3),  # D-2 is the far edge of the 3-day window D-2..D
        (-3, (0, 0, 1, 1, 1), 4),  # D-3 just outside it
        (-6, (0, 0, 1, 1, 1), 7),  # far edge of 7d
        (-7, (0, 0, 0, 1, 1), 8),  # just outside 7d
        (-13, (0, 0, 0, 1, 1), 14),  # far edge of 14d
        (-14, (0, 0, 0, 0, 1), 15),  # just outside 14d
        (-29, (0, 0, 0, 0, 1), 30),  # far edge of 30d: still in the population, recency 30
    ],
)
def test_window_edges_are_inclusive(
    offset: int, expected_plays: tuple[int, ...], expected_recency: int
) -> None:
    row = oracle_features([ev("play", offset, play_time_s=10)], D, bot_plays_30d=1400)[1]
    assert tuple(row[f"plays_{w}d"] for w in WINDOWS_D) == expected_plays
    assert tuple(row[f"play_seconds_{w}d"] for w in WINDOWS_D) == tuple(10 * n for n in expected_plays)
    assert row["days_since_play"] == expected_recency


@pytest.mark.parametrize(
    "offset",
    [
        -30,  # D-30 is outside the 30-day window: not in the population
        1,  # D+1 is the future: never seen by the features of D
    ],
)
def test_events_outside_the_window_leave_the_user_out(offset: int) -> None:
    assert oracle_features([ev("search", offset)], D, bot_plays_30d=1400) == {}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # D-2 ar ar / D-1 ip ip: a 2-2 tie goes to the alphabetically smallest
        ([ev("play", -2), ev("play", -2), ev("play", -1, device="ip"), ev("play", -1, device="ip")], "ar"),
        # ip 3 plays beats ar 2 plays, whatever the order
        ([ev("play", 0), ev("play", 0), *[ev("play", -5, device="ip")] * 3], "ip"),
        # ip 1 - mc 1 tie: "ip" < "mc"
        ([ev("play", 0, device="mc"), ev("play", -1, device="ip")], "ip"),
        # plays without a device do not vote: mc wins with 1 against 5 nulls
        ([*[ev("play", 0, device=None)] * 5, ev("play", -1, device="mc")], "mc"),
        # downloads and searches do not vote: ar from its one play
        ([*[ev("download", 0, device="ip")] * 5, ev("search", 0, device="ip"), ev("play", -1)], "ar"),
        # no plays at all: unknown
        ([ev("download", 0, device="ip"), ev("search", -3, device="ip")], DEVICE_UNKNOWN),
        # plays, but none with a device: unknown
        ([ev("play", 0, device=None), ev("play", -1, device=None)], DEVICE_UNKNOWN),
        # D-30 plays on ip are outside the window: ar from D
        ([*[ev("play", -30, device="ip")] * 5, ev("play", 0)], "ar"),
    ],
)
def test_device_is_the_most_played_then_alphabetical(events: list[OracleEvent], expected: str) -> None:
    assert oracle_features(events, D, bot_plays_30d=1400)[1][DEVICE] == expected


@pytest.mark.parametrize(
    ("plays", "expected"),
    [
        (3, False),  # plays_30d == threshold: not a bot (strictly above)
        (4, True),  # one more: a bot
    ],
)
def test_bot_threshold_edge(plays: int, expected: bool) -> None:
    # day: D-29 ... D-1 D  with `plays` plays spread over D-29 and D, plus an older play at D-30
    events = [ev("play", -29), *[ev("play", 0)] * (plays - 1), ev("play", -30)]
    assert oracle_features(events, D, bot_plays_30d=3)[1][IS_BOT] is expected


def test_play_seconds_ignore_null_play_times_and_other_types() -> None:
    # D: play 100 s, play null, play 0 s (a skip), a download with a play time (ignored)
    events = [ev("play", 0, play_time_s=100), ev("play", 0), ev("play", 0, play_time_s=0)]
    events.append(ev("download", 0, play_time_s=999))
    row = oracle_features(events, D, bot_plays_30d=1400)[1]
    assert (row["plays_1d"], row["play_seconds_1d"], row["downloads_1d"]) == (3, 100, 1)


def test_ticks_and_null_uids_are_ignored() -> None:
    events = [{"type": "tick", "uid": None, "event_time_ms": day_start_ms(D), "device": None}]
    events.append(ev("play", 0, uid=None))
    assert oracle_features(events, D, bot_plays_30d=1400) == {}


@pytest.mark.parametrize(
    ("later_offsets", "last_offset", "expected"),
    [
        # label window D+1..D+14; last_offset = last day of data - D
        ([], 14, 1),  # nothing after D: churn
        ([14], 14, 0),  # an event on D+14 (the window's far edge) keeps the user
        ([15], 20, 1),  # D+15 is after the window: still churn
        ([0], 14, 1),  # activity on D itself is not "after D"
        ([1], 14, 0),  # D+1 is the window's near edge
        ([1], 13, None),  # the data ends on D+13: the window is incomplete, no label
    ],
)
def test_label_window_edges(later_offsets: list[int], last_offset: int, expected: int | None) -> None:
    # day: D-5 (the user is in the population)  ...  D  ...  D+offsets
    events = [ev("play", -5), *[ev("search", k) for k in later_offsets]]
    labels = oracle_labels(events, D, 14, D + timedelta(days=last_offset))
    assert (labels if labels is None else labels[1]) == expected


def test_labels_cover_exactly_the_population() -> None:
    # uid 1 active at D-29 (in), uid 2 only at D-30 (out), uid 3 only on D+3 (out, future)
    events = [ev("play", -29, uid=1), ev("play", -30, uid=2), ev("play", 3, uid=3)]
    assert oracle_labels(events, D, 14, D + timedelta(days=14)) == {1: 1}
