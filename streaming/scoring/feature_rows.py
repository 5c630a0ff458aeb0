"""`musicbox.features` messages -> a validated frame of feature rows (the churn side's input).

Three ways to the batch's `Columns`, tried in order; each later one answers for any batch the
earlier ones decline, and the unit tests hold them equal wherever two answer:
- `columns_arrow`: Arrow's JSON reader on the whole batch, for batches shaped as the streaming
  job writes them (flat one-line objects of printable ASCII, no NaN or Infinity: Arrow would
  read those, strict JSON does not). About as much CPU as the next path (88 vs 96 ms for
  20,000 rows), but most of it without the GIL: the worker decodes in a thread beside its
  event loop.
- `columns_fast`: each message decoded with orjson (strict JSON), then converted at C speed
  when every field is present and plainly typed.
- `columns`: row by row, anything else.
A message that cannot be used is never dropped: it becomes a `Reject` with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

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


_ARROW_SCHEMA = pa.schema(
    [(UID, pa.int64()), (AS_OF, pa.string())]
    + [(name, pa.float64()) for name in NUMERIC_FEATURES]
    + [(DEVICE, pa.string()), (IS_BOT, pa.bool_()), (COMPUTED_AT_MS, pa.float64())]
)
_ARROW_PARSE = pa_json.ParseOptions(explicit_schema=_ARROW_SCHEMA, unexpected_field_behavior="ignore")
# What a message of the streaming job is made of, but for its braces: printable ASCII without
# `N` and `I` (NaN, Infinity), backslashes (escapes) and brackets (arrays).
_FLAT_JSON_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b"NI\\[]{}")


def _arrow_can_read(values: Sequence[bytes | None]) -> bytes | None:
    """The batch as newline-delimited JSON if Arrow reads it as strict JSON would, else None.

    Arrow's reader is laxer than strict JSON (NaN, Infinity, a byte-order mark, several objects
    on one line) and one malformed input (a lone `null`) crashed the process: it only gets
    batches whose every message is `{`, then bytes of `_FLAT_JSON_BYTES`, then `}`: one flat
    object on one line. Checked in two passes over the batch (~11 ms for 20,000 rows)."""
    if not values or any(v is None for v in values):
        return None
    text = b"\n".join(values)  # type: ignore[arg-type] # no None, checked above
    if text.translate(None, _FLAT_JSON_BYTES) != b"\n".join([b"{}"] * len(values)):
        return None  # a byte outside the set, a nested object, a line break inside a message
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))  # type: ignore[arg-type]
    ends = np.cumsum(sizes + 1) - 2
    raw = np.frombuffer(text, dtype=np.uint8)
    if (raw[ends - sizes + 1] != ord("{")).any() or (raw[ends] != ord("}")).any():
        return None  # bytes before the object's `{` or after its `}`
    return text


def _categories(column: pa.ChunkedArray, meaning: Callable[[Any], Any], null: Any) -> np.ndarray:
    """An object array of `meaning(value)` (`null` where the value is null), via the distinct values."""
    encoded = column.combine_chunks().dictionary_encode()
    labels = [meaning(v) for v in encoded.dictionary.to_pylist()] + [null]
    index = pc.fill_null(encoded.indices, len(labels) - 1).to_numpy(zero_copy_only=False)
    table = np.empty(len(labels), dtype=object)
    table[:] = labels
    return table[index]


def columns_arrow(values: Sequence[bytes | None]) -> Columns | None:
    """`columns` of the decoded messages, read by Arrow without making Python objects per row.
    None for any batch `_arrow_can_read` refuses or Arrow fails to read (the caller then decodes
    message by message); where it answers, it answers as `columns` (tested)."""
    text = _arrow_can_read(values)
    if text is None:
        return None
    try:
        table = pa_json.read_json(
            pa.py_buffer(text),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20, 2 * len(text))),
            parse_options=_ARROW_PARSE,
        )
    except (pa.ArrowException, ValueError):
        return None  # a wrong type, a duplicate key, a syntax error: the strict path says which
    n = len(values)
    if table.num_rows != n:
        return None

    def floats(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    uids = pc.fill_null(table.column(UID), 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    bot = table.column(IS_BOT)
    return Columns(
        uid=np.where((uids >= 1) & (uids <= UID_MAX), uids, 0),
        as_of=_categories(table.column(AS_OF), _day_or_none, None),
        numeric=np.column_stack([floats(name) for name in NUMERIC_FEATURES]).reshape(n, _N_NUMERIC),
        is_bot=pc.fill_null(bot, False).to_numpy(zero_copy_only=False).astype(bool, copy=False),
        is_bool=~pc.is_null(bot).to_numpy(zero_copy_only=False).astype(bool, copy=False),
        device=_categories(table.column(DEVICE), lambda d: d, DEVICE_UNKNOWN),
        computed_at_ms=floats(COMPUTED_AT_MS),
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


def feature_frame(values: Sequence[bytes | None], arrow: bool = True) -> tuple[pd.DataFrame, list[Reject]]:
    """Feature-row messages -> (frame of the valid rows with their batch POSITION, rejects).

    Built column by column (DataFrame.from_records costs ~4x more). `arrow=False` skips
    `columns_arrow` (the tests' reference)."""
    fast = columns_arrow(values) if arrow else None
    if fast is not None:
        return _frame(fast, list(range(len(values))), [])
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
