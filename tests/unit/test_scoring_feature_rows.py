"""Feature-row messages -> the frame the churn model scores: which rows are usable and why the
rest are not, and the two decoding paths giving the same columns wherever both answer."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from musicbox.features import AS_OF, DEVICE, IS_BOT, UID
from streaming.scoring.feature_rows import columns, columns_arrow, columns_fast, feature_frame
from streaming.scoring.messages import POSITION
from tests.fixtures.scoring import encoded, feature_row


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


def _batch(odd: bytes | None) -> list[bytes | None]:
    good: list[bytes | None] = [
        encoded(feature_row(uid, "2017-04-02", bot=uid == 3, active=uid % 2 == 0)) for uid in range(1, 6)
    ]
    return [*good[:2], odd, *good[2:]]


def _same_answer(values: list[bytes | None]) -> None:
    """The batch gives the same frame and rejects with and without Arrow's reader."""
    frame, rejects = feature_frame(values)
    want_frame, want_rejects = feature_frame(values, arrow=False)
    pd.testing.assert_frame_equal(frame, want_frame)
    assert rejects == want_rejects


_SPARK_STYLE = encoded(feature_row(7, "2017-04-02")).replace(b": ", b":").replace(b", ", b",")
_ODD_MESSAGES = [  # each is either read by Arrow as strict JSON reads it, or declined
    _SPARK_STYLE,  # the streaming job's compact form
    changed(uid=0),
    changed(uid=2**63 - 1),
    changed(uid=-5),
    changed(uid=1.0),  # a float uid is not a uid
    changed(uid=True),
    changed(uid="5"),
    changed(uid=...),
    changed(uid=10**30),  # beyond 64 bits
    changed(as_of="2017-02-30"),
    changed(as_of=7),
    changed(as_of=None),
    changed(plays_7d=None),
    changed(plays_7d=2.5),
    changed(plays_7d=-0.0),
    changed(plays_7d=1e300),
    changed(plays_7d=10**25),
    changed(plays_7d=True),  # a boolean counts as 1 on the strict path; Arrow declines
    changed(plays_7d="7"),
    changed(plays_7d=[1]),
    changed(plays_7d={"a": 1}),
    changed(plays_7d=...),
    changed(is_bot=None),
    changed(is_bot=1),
    changed(device=None),
    changed(device="mc"),
    changed(device="é"),  # non-ASCII: declined
    changed(device="a{b"),  # a brace inside a string: declined
    changed(computed_at_ms=None),
    changed(extra="anything", more=[1, {"x": None}], n=1.5),  # fields the worker does not use
    changed(plays_7d=float("nan")),  # json.dumps writes NaN: not strict JSON
    changed(plays_7d=float("inf")),
    b"\xef\xbb\xbf" + _SPARK_STYLE,  # a byte-order mark
    _SPARK_STYLE.replace(b'"uid":7', b'"uid":7,"uid":8'),  # a duplicate key
    _SPARK_STYLE.replace(b'"uid":7', b'"uid":7e0'),
    _SPARK_STYLE.replace(b'"ar"', b'"\\u0061r"'),  # an escaped character
    _SPARK_STYLE.replace(b'"ar"', b'"\\ud800"'),  # a lone surrogate
    _SPARK_STYLE.replace(b",", b",\t", 1),  # a tab as whitespace
    _SPARK_STYLE.replace(b",", b",\n", 1),  # a line break inside the message
    _SPARK_STYLE.replace(b",", b",\r", 1),
    _SPARK_STYLE + b"\n",
    _SPARK_STYLE + b" ",
    b" " + _SPARK_STYLE,
    _SPARK_STYLE + _SPARK_STYLE,  # two objects in one message
    _SPARK_STYLE + b"null",
    _SPARK_STYLE[:-1],  # cut short
    b"{}",
    b"null",
    b"",
    b"[]",
    b"5",
    None,
]


@pytest.mark.parametrize("odd", _ODD_MESSAGES, ids=range(len(_ODD_MESSAGES)))
def test_the_arrow_path_answers_as_strict_json_or_declines(odd: bytes | None) -> None:
    _same_answer(_batch(odd))


@pytest.mark.parametrize("odd", [_SPARK_STYLE, changed(uid=0), changed(plays_7d=None), changed(device=None)])
def test_the_arrow_path_reads_batches_shaped_as_the_job_writes_them(odd: bytes) -> None:
    assert columns_arrow(_batch(odd)) is not None  # or the worker decodes message by message


@pytest.mark.parametrize(
    "odd",
    [changed(plays_7d=float("nan")), changed(plays_7d=True), b"null", b"", None, _SPARK_STYLE + _SPARK_STYLE],
)
def test_the_arrow_path_declines_what_strict_json_reads_otherwise(odd: bytes | None) -> None:
    assert columns_arrow(_batch(odd)) is None


def test_the_arrow_path_agrees_with_strict_json_on_mangled_messages() -> None:
    # Random bytes spliced into valid messages: every batch is read alike or declined by Arrow,
    # and nothing crashes (Arrow's reader crashed the process on a lone `null` before the checks).
    rng = np.random.default_rng(11)
    pieces = [
        b"null",
        b"NaN",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b'"',
        b"\\",
        b"\n",
        b"1e999",
        b"-",
        b"\x00",
    ]
    good = [encoded(feature_row(uid, "2017-04-02")).replace(b": ", b":") for uid in range(1, 9)]
    read_by_arrow = 0
    for _ in range(400):
        batch: list[bytes | None] = list(good)
        i = int(rng.integers(len(batch)))
        raw = bytearray(good[i])
        at = int(rng.integers(len(raw) + 1))
        raw[at : at + int(rng.integers(0, 4))] = pieces[int(rng.integers(len(pieces)))]
        batch[i] = bytes(raw)
        _same_answer(batch)
        read_by_arrow += columns_arrow(batch) is not None
    assert read_by_arrow >= 20  # the mangling also makes messages Arrow reads: they are compared too
