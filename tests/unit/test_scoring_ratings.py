"""Recent ratings per user (the study's formula, day by day) and the tick rule that closes days."""

from __future__ import annotations

import pandas as pd
import pytest

from models.ratings import compute_ratings
from streaming.scoring.messages import EventRecord
from streaming.scoring.ratings import UserRatings, fold, play_share, ratings_of
from streaming.scoring.state import DictStore
from streaming.scoring.ticks import TickLedger


def ev(
    uid: int,
    day: str,
    song: int | None,
    kind: str = "play",
    play_s: float | None = 100,
    length_s: float | None = 200,
):
    return EventRecord(
        kind, uid, day, song, play_s if kind == "play" else None, length_s if kind == "play" else None
    )


@pytest.mark.parametrize(
    ("play_s", "length_s", "share"),
    [
        (100, 200, 0.5),  # half the song
        (300, 200, 1.0),  # capped at the whole song
        (0, 200, 0.0),  # a skip is a skip (the study replaced it by 248 s: a bug)
        (None, 200, 0.0),  # unknown play time counts nothing
        (-5, 200, 0.0),  # nonsense play time counts nothing
        (116, None, 0.5),  # unknown length: the logs' median, 232 s
        (116, 0, 0.5),  # insane length (0 = unknown in the logs): the median too
        (116, 9_000, 0.5),  # above 4,800 s: the median too
    ],
)
def test_play_share(play_s: float | None, length_s: float | None, share: float) -> None:
    assert play_share(play_s, length_s) == pytest.approx(share)


def test_ratings_equal_the_batch_formula_when_lengths_are_consistent() -> None:
    # With one length per song (what the logs report for sane values), the streaming fold and
    # models.ratings give the same ratings.
    events = [
        ev(1, "2017-04-01", 11, play_s=50, length_s=200),
        ev(1, "2017-04-02", 11, play_s=400, length_s=200),
        ev(1, "2017-04-02", 12, kind="download"),
        ev(1, "2017-04-03", 13, play_s=0, length_s=180),
        ev(2, "2017-04-02", 12, play_s=90, length_s=180),
        ev(1, "2017-03-01", 11, play_s=200, length_s=200),  # out of the 30-day window
    ]
    frame = pd.DataFrame(
        [(e.type, e.uid, e.song_id, e.play_time_s, e.song_length_s, e.date) for e in events],
        columns=["type", "uid", "song_id", "play_time_s", "song_length_s", "date"],
    )
    batch = compute_ratings(frame, "2017-04-03")
    folded = fold(events)
    for uid in (1, 2):
        expected = dict(
            zip(batch.loc[batch.uid == uid, "song_id"], batch.loc[batch.uid == uid, "rating"], strict=True)
        )
        assert ratings_of(folded[uid], "2017-04-03", 30) == pytest.approx(expected)


def test_unknown_songs_and_skips_rate_nothing_but_make_the_day_active() -> None:
    unrated = [ev(1, "2017-04-01", None), ev(1, "2017-04-01", 0), ev(1, "2017-04-01", 5, play_s=0)]
    assert fold(unrated) == {1: {"2017-04-01": {}}}
    users = UserRatings(DictStore(), DictStore(), 30)
    users.add(0, "plays", list(enumerate(unrated)))
    assert users.due(0, "2017-04-01") == [1]  # its recommendations are refreshed (the fallback)
    assert users.ratings(1, "2017-04-01") == {}
    users.close(0, 1, "2017-04-01")
    assert users.due(0, "2017-04-02") == []


def test_a_batch_read_again_counts_once() -> None:
    # A retried or re-read batch (same offsets) must not double the user's ratings.
    users = UserRatings(DictStore(), DictStore(), 30)
    batch = [(10, ev(1, "2017-04-01", 11)), (11, ev(1, "2017-04-01", 12, kind="download"))]
    users.add(0, "plays", batch)
    once = users.ratings(1, "2017-04-01")
    users.add(0, "plays", batch)
    assert users.ratings(1, "2017-04-01") == once == pytest.approx({11: 0.4 * 0.5, 12: 0.6})
    users.add(0, "downloads", [(10, ev(1, "2017-04-01", 12, kind="download"))])  # other topic, own offsets
    assert users.ratings(1, "2017-04-01")[12] == pytest.approx(1.2)


def test_closing_moves_days_and_keeps_the_window() -> None:
    users = UserRatings(DictStore(), DictStore(), window_d=3)
    users.add(
        0, "plays", [(1, ev(1, "2017-04-01", 11)), (2, ev(1, "2017-04-03", 12)), (3, ev(1, "2017-04-04", 13))]
    )
    assert users.due(0, "2017-04-03") == [1] and users.due(1, "2017-04-03") == []
    before = users.ratings(1, "2017-04-03")
    users.close(0, 1, "2017-04-03")
    assert users.ratings(1, "2017-04-03") == before == pytest.approx({11: 0.2, 12: 0.2})  # 04-04 still open
    assert users.due(0, "2017-04-03") == []  # closed: not due again
    assert users.due(0, "2017-04-04") == [1]
    users.close(0, 1, "2017-04-04")
    assert users.ratings(1, "2017-04-04") == pytest.approx({12: 0.2, 13: 0.2})  # 04-01 left the window
    assert set(users.recent.get("1") or {}) == {"2017-04-03", "2017-04-04"}


@pytest.mark.parametrize(
    ("ticks", "closed"),
    [
        ([("plays", "2017-04-02")], None),  # downloads has not ticked on this partition yet
        ([("plays", "2017-04-02"), ("downloads", "2017-04-02")], "2017-04-01"),  # both ticked 04-02
        ([("plays", "2017-04-05"), ("downloads", "2017-04-03")], "2017-04-02"),  # the slower topic rules
        ([("plays", "2017-04-03"), ("downloads", "2017-04-03"), ("plays", "2017-04-02")], "2017-04-02"),
    ],
)
def test_a_day_closes_when_both_topics_ticked_past_it(
    ticks: list[tuple[str, str]], closed: str | None
) -> None:
    ledger = TickLedger(["plays", "downloads"], DictStore())
    for topic, day in ticks:
        ledger.observe(topic, 0, day)
    assert ledger.closed(0) == closed
    assert ledger.closed(1) is None  # partitions close apart


def test_observe_reports_only_a_new_close() -> None:
    ledger = TickLedger(["plays", "downloads"], DictStore())
    assert ledger.observe("plays", 0, "2017-04-02") is None
    assert ledger.observe("downloads", 0, "2017-04-02") == "2017-04-01"
    assert ledger.observe("downloads", 0, "2017-04-02") is None  # the same tick re-read
