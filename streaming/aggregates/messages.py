"""Kafka messages of the event topics -> parsed events, ticks and dead letters (Spark).

`from_json` yields nulls, not errors, for bad input (PITFALLS): every row is classified here,
and a row that is neither a well-formed event nor a tick carries the reason it is not.

The job validates the fields it uses, and only those (`PARSED_FIELDS`): the features need
type, uid, event time, device and play seconds; the dead-letter rules also need `date` and
`event_id`. Song, singer, query and the other contract fields are not parsed at all (parsing
them cost ~30 % of the parse time and no feature reads them). So:
- the message must still be one well-formed JSON object, the unused fields included (the
  parser reads the whole text): anything else is `json`;
- a used field of the wrong JSON type is null: `missing_field` for the required ones; a
  non-numeric `play_time_s` only adds no seconds (the dirty logs have such plays); a
  non-string `device` is taken as its text;
- an unused field of the wrong type (`"song_id": "abc"`) is not a dead letter. It was not one
  with the full schema either: Spark's `from_json` returns partial results (the bad field
  null, the others kept), so the change of schema changed no message's fate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from musicbox.events import DAY_MS, EVENT_TYPES, TICK
from streaming.aggregates.schema import event_value_schema

REASON = "reason"  # null for a good event or tick; why not, otherwise
RAW = "raw"
SOURCE = "source"  # topic/partition/offset of the message
TOPIC_OF_TYPE_SQL = {"play": "plays", "download": "downloads", "search": "searches"}

# Fields an event cannot do without; the rest may be null (a dirty log leaves them unknown).
_REQUIRED = ("uid", "event_time_ms", "date", "event_id")
# What the job parses of a message value: the type, the required fields, and what the buckets
# sum or group by (`buckets.daily_buckets`). Nothing else is parsed, hence nothing else checked.
PARSED_FIELDS = ("type", *_REQUIRED, "device", "play_time_s")


def classify(kafka_rows: DataFrame, topic_prefix: str) -> DataFrame:
    """Kafka source rows -> one row per message with `PARSED_FIELDS`, `raw`, `source`, `reason`.

    `raw` and `source` are only read for dead letters; on the hot path (the buckets and the
    observed counts) Spark prunes them, so they cost nothing there.

    Reasons: `json` (not a JSON object of the schema), `type` (unknown type, or an event on
    another type's topic), `missing_field` (uid, event_time_ms, date or event_id null or of the
    wrong type), `bad_uid` (uid out of range), `date_mismatch` (event_time_ms not on `date`).
    """
    raw = F.col("value").cast("string")
    parsed = kafka_rows.select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        raw.alias(RAW),
        F.concat_ws(
            "/", F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string")
        ).alias(SOURCE),
        F.from_json(raw, event_value_schema(PARSED_FIELDS), {"mode": "PERMISSIVE"}).alias("v"),
    ).select("topic", "partition", "offset", RAW, SOURCE, "v.*")
    return parsed.withColumn(REASON, _reason(topic_prefix))


def _reason(topic_prefix: str) -> Column:
    kind = F.col("type")
    topic_matches = F.lit(False)
    for event_type in EVENT_TYPES:
        expected = f"{topic_prefix}{TOPIC_OF_TYPE_SQL[event_type]}"
        topic_matches = topic_matches | ((kind == event_type) & (F.col("topic") == expected))
    missing = F.lit(False)
    for name in _REQUIRED:
        missing = missing | F.col(name).isNull()
    day_of_time = F.expr(f"date_from_unix_date(CAST(event_time_ms DIV {DAY_MS} AS INT))")
    is_tick = kind == TICK
    return (
        F.when(kind.isNull(), F.lit("json"))
        .when(is_tick & (F.col("date").isNull() | F.col("event_time_ms").isNull()), F.lit("missing_field"))
        .when(is_tick, F.lit(None))
        .when(~topic_matches, F.lit("type"))
        .when(missing, F.lit("missing_field"))
        .when(F.col("uid") < 1, F.lit("bad_uid"))
        .when(F.to_date(F.col("date")) != day_of_time, F.lit("date_mismatch"))
        .otherwise(F.lit(None))
    )


def events_of(classified: DataFrame) -> DataFrame:
    """The good events (no ticks)."""
    return classified.filter(F.col(REASON).isNull() & (F.col("type") != TICK))


def rejects_of(classified: DataFrame) -> DataFrame:
    return classified.filter(F.col(REASON).isNotNull())


DEAD_LETTER_REASONS = ("json", "type", "missing_field", "bad_uid", "date_mismatch")
LATE = "late"
Mark = tuple[str, int | None, int | None, int | None]  # partition, tick_ms, max_time_ms, min_event_ms


@dataclass(frozen=True)
class BatchCounts:
    messages: int
    events: int
    dead_letters_by_reason: dict[str, int]  # reasons with at least one message, `late` included
    marks: list[Mark]  # what the day-close rule needs, per partition that carried good rows


def batch_metrics(partitions: Sequence[str], late: Column) -> list[Column]:
    """Aggregates for `DataFrame.observe` on the classified batch, so that they are computed in
    the same pass that buckets the events: messages, events, dead letters per reason, `late`
    events (per the `late` condition), and per partition ("topic/partition") of `partitions`
    its good rows, latest tick, latest event time and earliest event (not tick) time."""
    reason, kind, time_ms = F.col(REASON), F.col("type"), F.col("event_time_ms")
    good = reason.isNull()
    is_tick = kind == TICK
    event = good & ~is_tick
    out = [
        F.count(F.lit(1)).alias("messages"),
        F.count(F.when(event, 1)).alias("events"),
        F.count(F.when(event & late, 1)).alias(LATE),
    ]
    out += [F.count(F.when(reason == r, 1)).alias(r) for r in DEAD_LETTER_REASONS]
    for i, part in enumerate(partitions):
        topic, number = part.rsplit("/", 1)
        here = good & (F.col("topic") == topic) & (F.col("partition") == int(number))
        out += [
            F.count(F.when(here, 1)).alias(f"p{i}_rows"),
            F.max(F.when(here & is_tick, time_ms)).alias(f"p{i}_tick_ms"),
            F.max(F.when(here, time_ms)).alias(f"p{i}_max_time_ms"),
            F.min(F.when(here & ~is_tick, time_ms)).alias(f"p{i}_min_event_ms"),
        ]
    return out


def read_batch_metrics(values: Mapping[str, Any], partitions: Sequence[str]) -> BatchCounts:
    """The observed values of `batch_metrics` -> counts and day-close marks."""
    dead = {r: int(values[r]) for r in (*DEAD_LETTER_REASONS, LATE) if values[r]}
    marks = [
        (part, values[f"p{i}_tick_ms"], values[f"p{i}_max_time_ms"], values[f"p{i}_min_event_ms"])
        for i, part in enumerate(partitions)
        if values[f"p{i}_rows"]
    ]
    return BatchCounts(int(values["messages"]), int(values["events"]), dead, marks)
