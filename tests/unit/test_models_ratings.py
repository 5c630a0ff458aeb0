"""Implicit ratings: the formula row by row, and the fold (incremental == batch)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.errors import ModelInputError
from models.ratings import FALLBACK_LENGTH_S, RatingAccumulator, compute_ratings
from tests.fixtures.synthetic import block_events

DAY = "2017-04-10"
Row = tuple[str, int, int | None, float | None, float | None]  # type, uid, song_id, play_time_s, length_s


def events(rows: list[Row], day: str = DAY) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["type", "uid", "song_id", "play_time_s", "song_length_s"])
    return frame.assign(date=day)


def rating_of(rows: list[Row], uid: int = 1, song: int = 10) -> float | None:
    out = compute_ratings(events(rows), DAY)
    hit = out.loc[(out["uid"] == uid) & (out["song_id"] == song), "rating"]
    return float(hit.iloc[0]) if len(hit) else None


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # A full play of a 200 s song: 0.4 * 1.
        ([("play", 1, 10, 200, 200)], 0.4),
        # Half the song: 0.4 * 0.5.
        ([("play", 1, 10, 100, 200)], 0.2),
        # Playing past the song's length (loops, garbage) is capped at one full play.
        ([("play", 1, 10, 1000, 200)], 0.4),
        # A skip is a skip: 0 s adds nothing, and a song only skipped is not listed at all.
        ([("play", 1, 10, 0, 200)], None),
        # Two plays add up: 0.4 * (1 + 0.5).
        ([("play", 1, 10, 200, 200), ("play", 1, 10, 100, 200)], 0.6),
        # A download of a song never played still counts: 0.6.
        ([("download", 1, 10, None, None)], 0.6),
        # Play and download together: 0.4 * 0.5 + 0.6.
        ([("play", 1, 10, 100, 200), ("download", 1, 10, None, None)], 0.8),
        # L is the song's mean over all its sane lengths, other users' events included: (100 + 300) / 2.
        ([("play", 1, 10, 100, 100), ("play", 2, 10, 0, 300)], 0.2),
        # Insane lengths (0, -1, > 4800) do not enter L: L = 200 from the one sane length.
        (
            [
                ("play", 1, 10, 100, 200),
                ("play", 2, 10, 0, 0),
                ("play", 2, 10, 0, 9999),
                ("play", 2, 10, 0, -1),
            ],
            0.2,
        ),
        # Unknown play time (null) counts like a skip: nothing.
        ([("play", 1, 10, None, 200), ("download", 1, 10, None, None)], 0.6),
        # Searches are not ratings.
        ([("search", 1, 10, None, None)], None),
    ],
)
def test_rating_formula(rows: list[Row], expected: float | None) -> None:
    got = rating_of(rows)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_song_without_sane_length_uses_median_of_the_other_songs() -> None:
    # Songs 20, 30, 40 have L = 100, 300, 200: median 200. Song 10 has no sane length
    # anywhere, so its 100 s play weighs 100 / 200.
    rows: list[Row] = [
        ("play", 9, 20, 0, 100),
        ("play", 9, 30, 0, 300),
        ("play", 9, 40, 0, 200),
        ("play", 1, 10, 100, 0),
    ]
    assert rating_of(rows) == pytest.approx(0.4 * 0.5)


def test_without_any_sane_length_the_logs_median_is_used() -> None:
    assert rating_of([("play", 1, 10, 116, None)]) == pytest.approx(0.4 * 116 / FALLBACK_LENGTH_S)


def test_rows_without_a_known_song_are_ignored() -> None:
    # song_id null or 0 (unknown) or negative: no pair, and their lengths do not pollute L.
    rows: list[Row] = [
        ("play", 1, None, 200, 200),
        ("play", 1, 0, 200, 200),
        ("download", 1, -1, None, None),
        ("play", 1, 10, 50, 100),
    ]
    out = compute_ratings(events(rows), DAY)
    assert list(zip(out["uid"], out["song_id"], strict=True)) == [(1, 10)]
    assert out["rating"].iloc[0] == pytest.approx(0.2)


def test_window_keeps_only_the_last_days() -> None:
    old = events([("download", 1, 10, None, None)], day="2017-04-01")
    new = events([("download", 1, 11, None, None)], day="2017-04-10")
    both = pd.concat([old, new])
    # A 10-day window ending 04-10 starts 04-01; a 9-day window no longer holds 04-01.
    assert set(compute_ratings(both, "2017-04-10", window_d=10)["song_id"]) == {10, 11}
    assert set(compute_ratings(both, "2017-04-10", window_d=9)["song_id"]) == {11}
    acc = RatingAccumulator(window_d=9).add(both)
    assert acc.expire("2017-04-10") == ["2017-04-01"]
    assert acc.days == ["2017-04-10"]


def test_incremental_equals_batch() -> None:
    # The streaming worker adds small batches from several partitions and expires old days;
    # the trainer computes the window at once. Both must give the same ratings, bit for bit.
    data = block_events(days=12, seed=3).sample(frac=1.0, random_state=1).reset_index(drop=True)
    as_of, window_d = "2017-04-12", 7
    batch = compute_ratings(data, as_of, window_d)

    partitions = [RatingAccumulator(window_d), RatingAccumulator(window_d)]
    # 80 chunks: more parts per day than the accumulator keeps before summing them up.
    for i, start in enumerate(range(0, len(data), len(data) // 80 + 1)):
        partitions[i % 2].add(data.iloc[start : start + len(data) // 80 + 1])
        partitions[i % 2].expire("2017-04-08")  # a day close on the way
    merged = partitions[0].merge(partitions[1])
    merged.expire(as_of)
    incremental = merged.ratings(as_of)
    assert len(batch) > 100
    pd.testing.assert_frame_equal(incremental, batch, check_exact=True)


def test_events_frame_must_have_the_columns() -> None:
    with pytest.raises(ModelInputError, match="song_length_s"):
        RatingAccumulator().add(events([("play", 1, 10, 1, 1)]).drop(columns="song_length_s"))


def test_empty_input_gives_an_empty_frame() -> None:
    out = compute_ratings(events([("search", 1, None, None, None)]), DAY)
    assert out.empty and list(out.columns) == ["uid", "song_id", "rating"]
