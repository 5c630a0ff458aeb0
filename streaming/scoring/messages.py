"""The worker's wire formats (DESIGN 4): feature rows and events in, scores, recommendations and
quality reports out. Pure: bytes <-> frames and dicts, no Kafka.

A message that cannot be used is never dropped silently: it becomes a `Reject` with a reason,
counted by the worker and sent to the dead-letter topic with where it came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

from musicbox.events import TICK, UID_MAX, DeadLetter, encode_json
from musicbox.features import AS_OF, COMPUTED_AT_MS, DEVICE, DEVICE_UNKNOWN, IS_BOT, NUMERIC_FEATURES, UID

POSITION = "_position"  # a feature row's index in the batch it came in, to find its message again
STAGE = "worker"


@dataclass(frozen=True)
class Incoming:
    """One input message, as any consumer (Faust, a test) hands it to the flows."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class Reject:
    position: int  # index in the batch
    reason: str  # "null", "json", "bad_uid", "bad_as_of", "missing_field", "type", "bad_date"


def decode(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """(JSON object, None) or (None, why not)."""
    if raw is None:
        return None, "null"
    try:
        value = orjson.loads(raw)  # strict JSON (no NaN), and ~4x faster than json.loads here
    except orjson.JSONDecodeError:
        return None, "json"
    if not isinstance(value, dict):
        return None, "json"
    return value, None


def _uid_or_zero(value: Any) -> int:
    """The uid if it is an integer in [1, UID_MAX] (exact: floats lose digits past 2^53), else 0."""
    return value if type(value) is int and 1 <= value <= UID_MAX else 0


def _numbers(column: list[Any]) -> np.ndarray:
    """float64 of a column of decoded JSON values; NaN for null, missing or non-numeric."""
    try:
        return np.array(column, dtype=np.float64)  # the common case, and fast: all numbers or null
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(column, dtype="object"), errors="coerce").to_numpy(dtype=np.float64)


def _day_or_none(value: Any) -> str | None:
    return value if _is_day(value) else None


class Columns(NamedTuple):
    """The decoded fields of a batch's records, column-wise, before the checks of `feature_frame`."""

    uid: np.ndarray  # int64; 0 where the uid is not an integer in [1, UID_MAX]
    as_of: np.ndarray  # object: the day, or None where it is not a calendar day
    numeric: np.ndarray  # (n, len(NUMERIC_FEATURES)) float64; NaN: null, missing or not a number
    is_bot: np.ndarray  # bool; False where `is_bool` is
    is_bool: np.ndarray  # bool: is_bot was a JSON boolean
    device: list[str]  # the device, `unknown` when it is not a string
    computed_at_ms: np.ndarray  # float64, NaN when unknown


_ALL_FIELDS = itemgetter(UID, AS_OF, *NUMERIC_FEATURES, DEVICE, IS_BOT, COMPUTED_AT_MS)
_N_NUMERIC = len(NUMERIC_FEATURES)


def columns_fast(records: list[dict[str, Any]]) -> Columns | None:
    """`columns` for the common batch, at C speed: every field present, uids plain ints, is_bot
    booleans, days and devices strings (or a null device), numbers or nulls. None for any other
    batch (the caller then uses `columns`); where it answers, it answers as `columns` (tested)."""
    if not records:
        return None
    try:
        fields = list(zip(*map(_ALL_FIELDS, records), strict=True))
    except KeyError:
        return None
    uid_col, day_col, *numeric_cols, device_col, bot_col, computed_col = fields
    if set(map(type, uid_col)) != {int} or set(map(type, bot_col)) != {bool}:
        return None
    if set(map(type, day_col)) != {str} or not set(map(type, device_col)) <= {str, type(None)}:
        return None
    try:
        uids = np.array(uid_col, dtype=np.int64)
        numeric = np.array(numeric_cols, dtype=np.float64).T
        computed = np.array(computed_col, dtype=np.float64)
    except (OverflowError, TypeError, ValueError):
        return None
    days = {d: _day_or_none(d) for d in set(day_col)}
    devices = {d: d if isinstance(d, str) else DEVICE_UNKNOWN for d in set(device_col)}
    return Columns(
        uid=np.where((uids >= 1) & (uids <= UID_MAX), uids, 0),
        as_of=np.array(list(map(days.__getitem__, day_col)), dtype=object),
        numeric=numeric.reshape(len(records), _N_NUMERIC),
        is_bot=np.array(bot_col, dtype=bool),
        is_bool=np.ones(len(records), dtype=bool),
        device=list(map(devices.__getitem__, device_col)),
        computed_at_ms=computed,
    )


def columns(records: list[dict[str, Any]]) -> Columns:
    """The fields of any batch of decoded records, row by row (see `Columns` for what is kept)."""
    n = len(records)
    days = {d: _day_or_none(d) for d in {r.get(AS_OF) for r in records if isinstance(r.get(AS_OF), str)}}
    bot = [r.get(IS_BOT) for r in records]
    is_bool = np.fromiter((type(b) is bool for b in bot), dtype=bool, count=n)
    return Columns(
        uid=np.fromiter((_uid_or_zero(r.get(UID)) for r in records), dtype=np.int64, count=n),
        as_of=np.array(
            [days.get(r.get(AS_OF)) if isinstance(r.get(AS_OF), str) else None for r in records], dtype=object
        ),
        numeric=(
            np.column_stack([_numbers([r.get(name) for r in records]) for name in NUMERIC_FEATURES])
            if n
            else np.zeros((0, _N_NUMERIC))
        ),
        is_bot=np.array([b is True for b in bot], dtype=bool),
        is_bool=is_bool,
        device=[d if isinstance(d, str) else DEVICE_UNKNOWN for d in (r.get(DEVICE) for r in records)],
        computed_at_ms=_numbers([r.get(COMPUTED_AT_MS) for r in records]) if n else np.zeros(0),
    )


def feature_frame(values: Sequence[bytes | None]) -> tuple[pd.DataFrame, list[Reject]]:
    """Feature-row messages -> (frame of the valid rows with their batch POSITION, rejects).

    Built column by column from the decoded values (DataFrame.from_records costs ~4x more)."""
    rejects: list[Reject] = []
    records, positions = [], []
    for i, raw in enumerate(values):
        value, reason = decode(raw)
        if value is None:
            rejects.append(Reject(i, reason or "json"))
        else:
            records.append(value)
            positions.append(i)
    n = len(records)
    c = columns_fast(records) or columns(records)
    checks = (  # the first failing check names the reason
        ("bad_uid", c.uid == 0),
        ("bad_as_of", c.as_of == None),  # noqa: E711 - elementwise on an object array
        ("missing_field", ~np.isfinite(c.numeric).all(axis=1) | ~c.is_bool),
    )
    why = np.full(n, None, dtype=object)
    for name, bad in reversed(checks):
        why[bad] = name
    good = ~(checks[0][1] | checks[1][1] | checks[2][1])
    position = np.asarray(positions, dtype=np.int64)
    rejects += [Reject(int(p), str(w)) for p, w in zip(position[~good], why[~good], strict=True)]
    out = pd.DataFrame(
        {
            UID: c.uid[good],
            AS_OF: c.as_of[good].astype(str) if n else np.array([], dtype=str),
            **{name: c.numeric[good, i] for i, name in enumerate(NUMERIC_FEATURES)},
            DEVICE: np.array(c.device, dtype=object)[good] if n else np.array([], dtype=object),
            IS_BOT: c.is_bot[good],
            COMPUTED_AT_MS: c.computed_at_ms[good],
            POSITION: position[good],
        }
    )
    return out, sorted(rejects, key=lambda r: r.position)


def score_value(
    uid: int, as_of: str, probability: float, threshold: float, model_version: str, scored_at_ms: int
) -> dict[str, Any]:
    """A `musicbox.churn-scores` value; (uid, as_of, model_version) identifies it."""
    return {
        "uid": uid,
        "as_of": as_of,
        "churn_probability": probability,
        "churn": bool(probability >= threshold),
        "threshold": threshold,
        "model_version": model_version,
        "scored_at_ms": scored_at_ms,
    }


def score_messages(
    uids: Sequence[int],
    as_ofs: Sequence[str],
    probabilities: Sequence[float],
    threshold: float,
    model_version: str,
    scored_at_ms: int,
) -> list[bytes]:
    """`score_value`s encoded, the same JSON values (tested), ~3x faster: the fields common to the
    batch are encoded once, the rest formatted in. Python's float repr is a valid JSON number
    for a finite float; a batch with a non-finite probability goes through `encode`."""
    if not all(math.isfinite(p) for p in probabilities):
        return [
            encode(score_value(u, d, p, threshold, model_version, scored_at_ms))
            for u, d, p in zip(uids, as_ofs, probabilities, strict=True)
        ]
    tail = (
        f',"threshold":{orjson.dumps(threshold).decode()},"model_version":{orjson.dumps(model_version).decode()},'
        f'"scored_at_ms":{int(scored_at_ms)}}}'
    )
    days = {d: orjson.dumps(d).decode() for d in set(as_ofs)}
    return [
        f'{{"uid":{int(u)},"as_of":{days[d]},"churn_probability":{float(p)!r},'
        f'"churn":{"true" if p >= threshold else "false"}{tail}'.encode()
        for u, d, p in zip(uids, as_ofs, probabilities, strict=True)
    ]


def recommendation_value(
    uid: int,
    as_of: str,
    items: Sequence[tuple[int, float]],
    model_version: str,
    source: str,
    generated_at_ms: int,
) -> dict[str, Any]:
    """A `musicbox.recommendations` value: items best first; `source` is "als" or "popularity-fallback"."""
    return {
        "uid": uid,
        "as_of": as_of,
        "items": [{"song_id": song, "score": score} for song, score in items],
        "model_version": model_version,
        "source": source,
        "generated_at_ms": generated_at_ms,
    }


def finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN: an undefined metric travels as null."""
    return None if x is None or not math.isfinite(x) else float(x)


def key_of(uid: int) -> bytes:
    """Every uid-keyed topic uses the decimal uid, as the replay and the streaming job do."""
    return str(uid).encode()


def dead_letter(reason: str, raw: bytes | None, source: str) -> bytes:
    text = "" if raw is None else raw.decode("utf-8", errors="replace")
    return DeadLetter(stage=STAGE, reason=reason, raw=text, source=source).to_json()


@dataclass(frozen=True)
class EventRecord:
    """What the recommendations need of a play or download."""

    type: str
    uid: int
    date: str
    song_id: int | None
    play_time_s: float | None
    song_length_s: float | None


@dataclass(frozen=True)
class TickRecord:
    date: str  # the day that begins: the day before it is complete on this partition


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None  # Python's json reads NaN and Infinity: unknown, not a number to add up
    return float(value)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_day(value: Any) -> bool:
    """`YYYY-MM-DD` and a calendar day (fromisoformat alone also takes week dates, 2017-W13-1)."""
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_event(raw: bytes | None, expected_type: str) -> EventRecord | TickRecord | str:
    """An event of `expected_type` or a tick from an event topic, else the reason it is neither."""
    value, reason = decode(raw)
    if value is None:
        return reason or "json"
    kind = value.get("type")
    if kind == TICK:
        return TickRecord(value["date"]) if _is_day(value.get("date")) else "bad_date"
    if kind != expected_type:
        return "type"
    uid = _int_or_none(value.get("uid"))
    if uid is None or not 1 <= uid <= UID_MAX:
        return "bad_uid"
    if not _is_day(value.get("date")):
        return "bad_date"
    return EventRecord(
        type=kind,
        uid=uid,
        date=value["date"],
        song_id=_int_or_none(value.get("song_id")),
        play_time_s=_number_or_none(value.get("play_time_s")),
        song_length_s=_number_or_none(value.get("song_length_s")),
    )


def encode(value: dict[str, Any]) -> bytes:
    return encode_json(value)
