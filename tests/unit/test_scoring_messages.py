"""The worker's wire formats: which feature rows and events are usable, and why the rest are not."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from musicbox.features import AS_OF, DEVICE, IS_BOT, UID
from streaming.scoring.messages import (
    POSITION,
    EventRecord,
    TickRecord,
    columns,
    columns_fast,
    feature_frame,
    parse_event,
    score_messages,
    score_value,
)
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


def test_a_batch_with_a_faulty_row_gives_the_good_rows_the_same_values() -> None:
    # A clean batch is converted in one step; a faulty row sends the batch down the per-column path.
    good = [encoded(feature_row(uid, "2017-04-02", bot=uid == 3)) for uid in range(1, 6)]
    clean, _ = feature_frame(good)
    mixed, rejects = feature_frame([*good, changed(plays_7d=...)])
    assert [r.reason for r in rejects] == ["missing_field"]
    assert mixed.equals(clean)


def _records(**changes: Any) -> list[dict[str, Any]]:
    rows = [feature_row(uid, "2017-04-02", bot=uid % 4 == 0, active=uid % 3 == 0) for uid in range(1, 9)]
    for name, value in changes.items():
        rows[2][name] = value
    return rows


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {DEVICE: None},  # unknown device
        {DEVICE: "mc"},
        {UID: 0},  # out of range: 0, still the fast path
        {UID: 2**63 - 1},
        {AS_OF: "2017-02-30"},  # a string, not a calendar day
        {"plays_7d": None},  # null number: NaN
        {"plays_7d": 2.5},
        {"plays_7d": True},  # a boolean counts as 1 on both paths
        {"computed_at_ms": None},
    ],
)
def test_the_fast_column_path_answers_as_the_general_one(changes: dict[str, Any]) -> None:
    records = _records(**changes)
    fast, general = columns_fast(records), columns(records)
    assert fast is not None
    for name, got in fast._asdict().items():
        got, want = np.asarray(got), np.asarray(getattr(general, name))
        floats = got.dtype == np.float64
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=floats), name


@pytest.mark.parametrize(
    "changes",
    [{UID: "5"}, {UID: True}, {UID: 2**63}, {AS_OF: 7}, {IS_BOT: "no"}, {"plays_7d": "many"}, {DEVICE: 3}],
)
def test_the_fast_column_path_declines_what_it_cannot_convert(changes: dict[str, Any]) -> None:
    assert columns_fast(_records(**changes)) is None
    assert columns_fast([{k: v for k, v in r.items() if k != "plays_7d"} for r in _records()]) is None


def test_score_messages_are_the_score_values() -> None:
    uids, days = [1, 2**62, 7, 8], ["2017-04-02", "2017-04-02", "2017-04-03", "2017-04-03"]
    probabilities = [0.5, 3.2e-07, 0.999999999, 0.0]
    for p in (probabilities, [*probabilities[:3], float("nan")]):  # NaN: the slow path (null)
        got = [json.loads(m) for m in score_messages(uids, days, p, 0.5, 'v"1', 1_700_000_000_000)]
        at_ms = 1_700_000_000_000
        values = [score_value(u, d, x, 0.5, 'v"1', at_ms) for u, d, x in zip(uids, days, p, strict=True)]
        want = [json.loads(json.dumps(v).replace("NaN", "null")) for v in values]
        assert got == want


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
