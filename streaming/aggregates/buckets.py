"""Daily per-user buckets: the one aggregation that batch and streaming features both start from.

A bucket is (uid, day, device) with the day's counts of plays, downloads and searches and the
sum of valid play seconds. Everything of DESIGN 5 is a function of these buckets, so the batch
job (static events) and the streaming job (events from Kafka) share this exact code.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from musicbox.events import DAY_MS, EVENT_TYPES
from musicbox.features import COUNTED, UID

EVENT_TS = "event_ts"  # the timestamp the day window (and a streaming watermark) is defined on
DAY = "day"  # bucket day, DateType (the UTC day of event_time_ms)
BUCKET_DEVICE = "device"  # the device written on the events (may be null), not the feature
PLAY_SECONDS = "play_seconds"
# Count column of each event type: plays, downloads, searches (the feature name stems).
COUNT_OF_TYPE: dict[str, str] = dict(zip(EVENT_TYPES, COUNTED, strict=True))
BUCKET_COLUMNS: tuple[str, ...] = (UID, DAY, BUCKET_DEVICE, *COUNTED, PLAY_SECONDS)


def with_event_ts(events: DataFrame) -> DataFrame:
    """Add `event_ts` (a timestamp, time-zone free) from `event_time_ms`."""
    return events.withColumn(EVENT_TS, F.timestamp_millis(F.col("event_time_ms")))


def daily_buckets(events: DataFrame) -> DataFrame:
    """Group events into (uid, day, device) buckets: plays, downloads, searches, play_seconds (longs).

    Input columns: `type, uid, event_time_ms, device, play_time_s`, and `event_ts` if the caller
    added it (else it is derived here). A null `play_time_s` adds nothing to `play_seconds`. A null
    device is a group of its own. Works on a static and on a streaming DataFrame.

    Rows whose uid is null (ticks, or anything else without a user) form buckets with a null uid
    and zero counts: they are NOT filtered here, because in a stream a filter on `type` or `uid`
    is pushed below the watermark and ticks would then never advance it (PITFALLS, "Day close").
    Consumers drop them with `active_buckets`.

    A streaming query calls it on the parsed values, ticks included, with a watermark::

        stream = with_event_ts(parsed_values).withWatermark("event_ts", "0 seconds")
        buckets = daily_buckets(stream)   # append mode: day D is emitted once the watermark
                                          # reaches D+1 00:00, i.e. when the tick of D+1 arrives

    (A tick sits at D+1 00:00, so only a zero delay lets it close D; with a delay, D closes when
    an event or tick at D+1 00:00 + delay has been seen.) Inside `foreachBatch` it runs on the
    micro-batch as on any static DataFrame, without a watermark.

    The day is a tumbling `window(event_ts, "1 day")` (aligned to 00:00 UTC), never a 30-day
    sliding window, which would copy every event 30 times.
    """
    if EVENT_TS not in events.columns:
        events = with_event_ts(events)
    counts = [
        F.sum(F.when(F.col("type") == event_type, F.lit(1)).otherwise(F.lit(0))).cast("long").alias(name)
        for event_type, name in COUNT_OF_TYPE.items()
    ]
    play_seconds = F.coalesce(
        F.sum(F.when(F.col("type") == "play", F.col("play_time_s").cast("long"))), F.lit(0)
    ).cast("long")
    grouped = events.groupBy(F.window(F.col(EVENT_TS), "1 day"), F.col(UID), F.col(BUCKET_DEVICE)).agg(
        *counts, play_seconds.alias(PLAY_SECONDS)
    )
    return grouped.select(
        F.col(UID).cast("long").alias(UID),
        _window_day("window.start").alias(DAY),
        F.col(BUCKET_DEVICE),
        *[F.col(name) for name in COUNTED],
        F.col(PLAY_SECONDS),
    )


def _window_day(start: str) -> Column:
    """The UTC date of a window start, in integer arithmetic so the session time zone cannot shift it."""
    return F.expr(f"date_from_unix_date(CAST(unix_millis({start}) DIV {DAY_MS} AS INT))")


def active_buckets(buckets: DataFrame) -> DataFrame:
    """Buckets of a real user with at least one event: what the population and features are made of."""
    any_event = F.lit(False)
    for name in COUNTED:
        any_event = any_event | (F.col(name) > 0)
    return buckets.filter(F.col(UID).isNotNull() & any_event)
