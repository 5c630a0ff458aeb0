"""Rolling 1/3/7/14/30-day features of DESIGN 5, from daily buckets, for one or many as-of days.

Runs on a static buckets DataFrame: the batch job passes a range of as-of days (one Spark job),
the streaming job passes the day it has just closed from `foreachBatch`. Integer arithmetic
only, so batch and streaming rows can be compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StructField, StructType

from musicbox.features import (
    AS_OF,
    COUNTED,
    DEVICE,
    DEVICE_UNKNOWN,
    IS_BOT,
    LOOKBACK_D,
    NEVER_D,
    RECENCY,
    UID,
    WINDOWS_D,
)
from streaming.aggregates.buckets import BUCKET_DEVICE, COUNT_OF_TYPE, DAY, PLAY_SECONDS, active_buckets
from streaming.aggregates.schema import feature_row_schema

AGE_D = "age_d"  # as_of - day: 0 on the as-of day itself, LOOKBACK_D - 1 at the window's far edge
_SUMMED = (*COUNTED, PLAY_SECONDS)  # bucket columns summed per window
_RECENCY_OF = dict(zip(COUNTED, RECENCY, strict=True))  # plays -> days_since_play, ...
_DEVICE_CHOICE = "_device_choice"


def window_name(kind: str, window_d: int) -> str:
    """`plays` and 7 -> `plays_7d`: the naming rule of `musicbox.features` (checked by the final select)."""
    return f"{kind}_{window_d}d"


def as_of_frame(spark: SparkSession, as_of_days: Iterable[date]) -> DataFrame:
    """A one-column DataFrame (`as_of`, DateType) of distinct as-of days."""
    days = sorted(set(as_of_days))
    if not days:
        raise ValueError("no as-of day given")
    return spark.createDataFrame([(d,) for d in days], StructType([StructField(AS_OF, DateType(), False)]))


def lookback_join(buckets: DataFrame, as_of_days: DataFrame) -> DataFrame:
    """Pair every active bucket with each as-of day D whose 30-day window D-29..D holds it; adds `age_d`.

    The as-of days are few, so they are broadcast; each bucket meets at most 30 of them.
    """
    day, as_of = F.col(DAY), F.col(AS_OF)
    in_window = (day <= as_of) & (day > F.date_sub(as_of, LOOKBACK_D))
    return (
        active_buckets(buckets)
        .join(F.broadcast(as_of_days), in_window, "inner")
        .withColumn(AGE_D, F.datediff(as_of, day))
    )


def _windowed_sum(column: str, window_d: int) -> Column:
    return F.sum(F.when(F.col(AGE_D) < window_d, F.col(column)).otherwise(F.lit(0))).cast("long")


def rolling_features(buckets: DataFrame, as_of_days: list[date], bot_plays_30d: int) -> DataFrame:
    """One feature row per (uid, as_of) for every uid active in D-29..D, columns `FEATURE_ROW_COLUMNS`.

    Column names and types come from `feature_row_schema()`; a name this code does not produce
    fails the final select, so the contract and the computation cannot drift apart.

    - counts and play seconds: sums over the buckets of D-(w-1)..D;
    - `days_since_x` = (D+1) - last day with x > 0, or `NEVER_D` (31) without one in the 30 days;
    - `device`: most plays in the 30 days, ties to the alphabetically smallest, `unknown` if
      no play names a device;
    - `is_bot`: plays_30d > `bot_plays_30d`.
    """
    paired = lookback_join(buckets, as_of_frame(buckets.sparkSession, as_of_days))

    # Stage 1, per device: window sums, youngest age of each event type, and 30-day plays.
    per_device = paired.groupBy(UID, AS_OF, BUCKET_DEVICE).agg(
        *[_windowed_sum(c, w).alias(window_name(c, w)) for c in _SUMMED for w in WINDOWS_D],
        *[F.min(F.when(F.col(c) > 0, F.col(AGE_D))).alias(_RECENCY_OF[c]) for c in COUNTED],
    )

    # Stage 2, per user: add the devices up; the device is the min of (-plays, name), i.e. most
    # plays first and the smallest name among equals, over devices that have a name and plays.
    plays_30d = F.col(window_name(COUNT_OF_TYPE["play"], LOOKBACK_D))
    candidate = F.when(
        F.col(BUCKET_DEVICE).isNotNull() & (plays_30d > 0),
        F.struct((-plays_30d).alias("neg_plays"), F.col(BUCKET_DEVICE).alias("name")),
    )
    per_user = per_device.groupBy(UID, AS_OF).agg(
        *[F.sum(window_name(c, w)).cast("long").alias(window_name(c, w)) for c in _SUMMED for w in WINDOWS_D],
        *[F.min(name).alias(name) for name in RECENCY],
        F.min(candidate).alias(_DEVICE_CHOICE),
    )

    derived = {
        **{name: F.coalesce(F.col(name) + 1, F.lit(NEVER_D)) for name in RECENCY},
        DEVICE: F.coalesce(F.col(f"{_DEVICE_CHOICE}.name"), F.lit(DEVICE_UNKNOWN)),
        IS_BOT: plays_30d > F.lit(bot_plays_30d),
    }
    schema = feature_row_schema()
    return per_user.select(
        *[
            derived.get(field.name, F.col(field.name)).cast(field.dataType).alias(field.name)
            for field in schema.fields
        ]
    )
