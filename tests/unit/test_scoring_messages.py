"""The worker's wire formats: which feature rows and events are usable, and why the rest are not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from musicbox.features import AS_OF, DEVICE, IS_BOT, UID
from streaming.scoring.messages import POSITION, EventRecord, TickRecord, feature_frame, parse_event
from tests.unit.test_scoring_fixtures import download, encoded, feature_row, play, tick


def changed(**fields: Any) -> bytes:
    row = feature_row(5, "2017-04-02")
    for name, value in fields.items():
        if value is ...:
            del row[name]
        else:
            row[name] = value
    return encoded(row)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "null"),  # a tombstone or null value is not a row
        (b"{not json", "json"),  # undecodable bytes
        (b"[1, 2]", "json"),  # JSON, but not an object
        (changed(uid="5"), "bad_uid"),  # a uid must be a number, not text
        (changed(uid=0), "bad_uid"),  # uids start at 1
        (changed(uid=2**63), "bad_uid"),  # ... and end at 2^63 - 1
        (changed(uid=True), "bad_uid"),  # a boolean is not a uid
        (changed(uid=...), "bad_uid"),  # no uid at all
        (changed(as_of="2017-02-30"), "bad_as_of"),  # not a calendar day
        (changed(as_of=...), "bad_as_of"),  # no as_of
        (changed(plays_7d=None), "missing_field"),  # features are never null by contract
        (changed(plays_7d="many"), "missing_field"),  # ... nor text
        (changed(days_since_play=...), "missing_field"),  # ... nor absent
        (changed(is_bot="no"), "missing_field"),  # the bot flag must be a boolean
        (changed(uid=0, plays_7d=None), "bad_uid"),  # several faults: the first check names it
    ],
)
def test_unusable_feature_rows_are_rejected_with_their_reason(raw: bytes | None, reason: str) -> None:
    good = encoded(feature_row(9, "2017-04-02"))
    frame, rejects = feature_frame([good, raw, good])
    assert [(r.position, r.reason) for r in rejects] == [(1, reason)]
    assert frame[POSITION].tolist() == [0, 2]  # the good rows keep their place in the batch


def test_valid_rows_keep_their_values_and_defaults() -> None:
    # A null device means "unknown" (as in models.churn); as_of is normalised; ints stay exact.
    row = feature_row(2**62, "2017-04-02", bot=True)
    row[DEVICE] = None
    frame, rejects = feature_frame([json.dumps(row).encode()])
    assert not rejects
    assert frame[UID].tolist() == [2**62]
    assert frame[AS_OF].tolist() == ["2017-04-02"]
    assert frame[DEVICE].tolist() == ["unknown"] and frame[IS_BOT].tolist() == [True]


def test_an_empty_batch_gives_an_empty_frame() -> None:
    frame, rejects = feature_frame([])
    assert len(frame) == 0 and not rejects


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
