"""Spark schemas of an event message value and of a feature row, derived from the contracts.

Field names come from `musicbox.events.VALUE_FIELDS` and `musicbox.features`; only the Spark
type of each name is decided here, so a renamed or added field cannot drift out of step.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from musicbox.events import EVENT_TYPES, VALUE_FIELDS
from musicbox.features import (
    AS_OF,
    COUNT_FEATURES,
    DEVICE,
    FEATURE_ROW_COLUMNS,
    IS_BOT,
    LABEL,
    PLAY_SECONDS_FEATURES,
    RECENCY,
    UID,
)

# Event value fields that are not strings (DESIGN 4). Every other field is a string.
_EVENT_LONG_FIELDS = frozenset({"uid", "event_time_ms", "play_time_s", "song_length_s", "song_id"})
_EVENT_INT_FIELDS = frozenset({"song_type", "paid"})

# Feature row column types (DESIGN 5): counts and seconds are sums of longs, recency is 1..31.
_FEATURE_TYPES: dict[str, DataType] = {
    UID: LongType(),
    AS_OF: DateType(),
    **{name: LongType() for name in (*COUNT_FEATURES, *PLAY_SECONDS_FEATURES)},
    **{name: IntegerType() for name in RECENCY},
    DEVICE: StringType(),
    IS_BOT: BooleanType(),
}


def event_field_names() -> tuple[str, ...]:
    """The union of the play, download and search value fields, in contract order.

    A tick's fields (`type`, `date`, `event_time_ms`) are common to every event type.
    """
    names: dict[str, None] = {}
    for event_type in EVENT_TYPES:
        names.update(dict.fromkeys(VALUE_FIELDS[event_type]))
    return tuple(names)


def _event_type(name: str) -> DataType:
    if name in _EVENT_LONG_FIELDS:
        return LongType()
    if name in _EVENT_INT_FIELDS:
        return IntegerType()
    return StringType()


def event_value_schema(fields: Iterable[str] | None = None) -> StructType:
    """The schema of one event topic message value (play, download, search or tick), all nullable.

    With `fields`, only those (in contract order): `from_json` then skips the other fields of a
    message instead of converting them (the streaming job parses only what it uses).
    """
    names = event_field_names()
    if fields is not None:
        wanted = set(fields)
        unknown = wanted - set(names)
        if unknown:
            raise ValueError(f"not event value fields: {sorted(unknown)}")
        names = tuple(n for n in names if n in wanted)
    return StructType([StructField(name, _event_type(name), nullable=True) for name in names])


def feature_row_schema(*, with_label: bool = False) -> StructType:
    """The schema of a feature row: `FEATURE_ROW_COLUMNS` in order, plus `churn` (int 0/1) if asked.

    Every field is nullable, as Spark reports computed columns and as file readers need.
    """
    fields = [StructField(name, _FEATURE_TYPES[name], nullable=True) for name in FEATURE_ROW_COLUMNS]
    if with_label:
        fields.append(StructField(LABEL, IntegerType(), nullable=True))
    return StructType(fields)
