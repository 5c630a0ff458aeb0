"""The worker's wire formats: which events are usable and why the rest are not; score messages.
(Feature rows: test_scoring_feature_rows.py.)"""

from __future__ import annotations

import json

import pytest

from streaming.scoring.messages import (
    EventRecord,
    TickRecord,
    parse_event,
    score_messages,
    score_value,
)
from tests.fixtures.scoring import download, play, tick


def test_score_messages_are_the_score_values() -> None:
    uids, days = [1, 2**62, 7, 8], ["2017-04-02", "2017-04-02", "2017-04-03", "2017-04-03"]
    probabilities = [0.5, 3.2e-07, 0.999999999, 0.0]
    for p in (probabilities, [*probabilities[:3], float("nan")]):  # NaN: the slow path (null)
        got = [json.loads(m) for m in score_messages(uids, days, p, 0.5, 'v"1', 1_700_000_000_000)]
        at_ms = 1_700_000_000_000
        values = [score_value(u, d, x, 0.5, 'v"1', at_ms) for u, d, x in zip(uids, days, p, strict=True)]
        want = [json.loads(json.dumps(v).replace("NaN", "null")) for v in values]
        assert got == want


@pytest.mark.parametrize(
    ("raw", "expected_type", "result"),
    [
        (
            play(3, "2017-04-02", 1001, 120, 240),
            "play",
            EventRecord("play", 3, "2017-04-02", 1001, 120.0, 240.0),
        ),
        (
            download(3, "2017-04-02", 1001),
            "download",
            EventRecord("download", 3, "2017-04-02", 1001, None, None),
        ),
        (tick("2017-04-03"), "play", TickRecord("2017-04-03")),  # ticks ride every event topic
        (play(3, "2017-04-02", 1001), "download", "type"),  # a play on the downloads topic
        (b'{"type":"tick","date":"someday"}', "play", "bad_date"),  # a tick without a day
        (b'{"type":"play","uid":-4,"date":"2017-04-02"}', "play", "bad_uid"),
        (b'{"type":"play","uid":4,"date":null}', "play", "bad_date"),
        (b'{"type":"play","uid":4,"date":"2017-W13-1"}', "play", "bad_date"),  # an ISO week date is not a day
        # NaN is not JSON (Python's json reads it; our producers never write it): rejected
        (b'{"type":"play","uid":4,"date":"2017-04-02","play_time_s":NaN}', "play", "json"),
        (None, "play", "null"),  # null values are counted, not crashed on
        (b"\xff\xfe", "play", "json"),
    ],
)
def test_event_messages(raw: bytes | None, expected_type: str, result: object) -> None:
    assert parse_event(raw, expected_type) == result


def test_dirty_event_fields_become_unknown() -> None:
    # A dirty log leaves a field null or odd: the event still counts, the field is unknown.
    raw = (
        b'{"type":"play","uid":4,"date":"2017-04-02","song_id":null,'
        b'"play_time_s":"71>=x","song_length_s":true}'
    )
    assert parse_event(raw, "play") == EventRecord("play", 4, "2017-04-02", None, None, None)
