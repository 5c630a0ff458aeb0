"""Feature-row messages -> the frame the churn model scores: which rows are usable and why the
rest are not, and the two decoding paths giving the same columns wherever both answer."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from musicbox.features import AS_OF, DEVICE, IS_BOT, UID
from streaming.scoring.feature_rows import columns, columns_fast, feature_frame
from streaming.scoring.messages import POSITION
from tests.unit.test_scoring_fixtures import encoded, feature_row


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
    general = columns(records)
    fast = columns_fast(records)
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


def test_an_empty_batch_gives_an_empty_frame() -> None:
    frame, rejects = feature_frame([])
    assert len(frame) == 0 and not rejects
