"""`musicbox.features` messages -> a validated frame of feature rows (the churn side's input).

Each message is decoded with orjson (strict JSON); the batch's fields then become `Columns`
either at C speed (`columns_fast`: every field present and plainly typed, the common batch) or
row by row (`columns`: anything else); the unit tests hold the two equal where both answer.
A message that cannot be used is never dropped: it becomes a `Reject` with a reason. (Arrow's
JSON reader on the whole batch was tried: no faster here, and it reads NaN and Infinity.)
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from musicbox.events import UID_MAX
from musicbox.features import AS_OF, COMPUTED_AT_MS, DEVICE, DEVICE_UNKNOWN, IS_BOT, NUMERIC_FEATURES, UID
from streaming.scoring.messages import POSITION, Reject, decode, is_day


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
    return value if is_day(value) else None


class Columns(NamedTuple):
    """The decoded fields of a batch's records, column-wise, before the checks of `feature_frame`."""

    uid: np.ndarray  # int64; 0 where the uid is not an integer in [1, UID_MAX]
    as_of: np.ndarray  # object: the day, or None where it is not a calendar day
    numeric: np.ndarray  # (n, len(NUMERIC_FEATURES)) float64; NaN: null, missing or not a number
    is_bot: np.ndarray  # bool; False where `is_bool` is
    is_bool: np.ndarray  # bool: is_bot was a JSON boolean
    device: np.ndarray  # object: the device, `unknown` when it is not a string
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
        device=np.array(list(map(devices.__getitem__, device_col)), dtype=object),
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
        device=np.array(
            [d if isinstance(d, str) else DEVICE_UNKNOWN for d in (r.get(DEVICE) for r in records)],
            dtype=object,
        ),
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
    return _frame(columns_fast(records) or columns(records), positions, rejects)


def _frame(c: Columns, positions: list[int], rejects: list[Reject]) -> tuple[pd.DataFrame, list[Reject]]:
    """The checks of every row, then the frame of the good ones."""
    n = len(positions)
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
            DEVICE: c.device[good] if n else np.array([], dtype=object),
            IS_BOT: c.is_bot[good],
            COMPUTED_AT_MS: c.computed_at_ms[good],
            POSITION: position[good],
        }
    )
    return out, sorted(rejects, key=lambda r: r.position)
