"""The churn label of DESIGN 5: no event of any type on D+1..D+label_window_d.

Labels look into the future, so they exist only for as-of days whose label window lies
inside the data; the features never read them (no leakage into the causal features).
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from musicbox.features import AS_OF, LABEL, UID
from streaming.aggregates.buckets import DAY, active_buckets
from streaming.aggregates.rolling import as_of_frame, lookback_join

_ACTIVE_LATER = "_active_later"


def labelled_days(as_of_days: list[date], label_window_d: int, last_day: date) -> list[date]:
    """The as-of days whose whole label window D+1..D+label_window_d is at or before `last_day`."""
    return sorted({d for d in as_of_days if d + timedelta(days=label_window_d) <= last_day})


def churn_labels(
    buckets: DataFrame, as_of_days: list[date], label_window_d: int, last_day: date
) -> DataFrame:
    """(uid, as_of, churn) for the population of each labelled as-of day; churn is int 0/1.

    The population at D is the same as the features' (any event in D-29..D). As-of days whose
    label window is not complete (D + label_window_d > last_day) are LEFT OUT: they have no row
    here, and a left join onto the features gives them a null `churn`. With no labelled day the
    result is an empty DataFrame of the same columns.
    """
    spark = buckets.sparkSession
    days = labelled_days(as_of_days, label_window_d, last_day)
    if not days:
        return spark.createDataFrame([], f"{UID} long, {AS_OF} date, {LABEL} int")
    as_of_days_df = as_of_frame(spark, days)
    population = lookback_join(buckets, as_of_days_df).select(UID, AS_OF).distinct()

    day, as_of = F.col(DAY), F.col(AS_OF)
    in_label_window = (day > as_of) & (day <= F.date_add(as_of, label_window_d))
    active_later = (
        active_buckets(buckets)
        .join(F.broadcast(as_of_days_df), in_label_window, "inner")
        .select(UID, AS_OF)
        .distinct()
        .withColumn(_ACTIVE_LATER, F.lit(True))
    )
    churn = F.when(F.col(_ACTIVE_LATER).isNull(), F.lit(1)).otherwise(F.lit(0)).cast("int")
    return population.join(active_later, [UID, AS_OF], "left").select(UID, AS_OF, churn.alias(LABEL))
