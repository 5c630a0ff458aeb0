"""Day-complete markers: how a consumer of `musicbox.features` or `musicbox.churn-scores` knows
that a day is all there (a contract of the README, "What downstream gets").

A marker is a record without a key, on one partition, after every record of its day on that
partition: `{"type": "day_complete", "as_of": D, "partition": p, "partitions": n, ...counts}`.
The streaming job writes one to every partition of `musicbox.features` once a closed day's rows
are acknowledged; the worker writes one to the same partition of `musicbox.churn-scores` once
it has scored every row of that day from that partition (the two topics have the same
partition count, and a user's rows and scores land on the same partition number). A consumer
that has seen the marker of day D on every partition has every record of D. A marker may come
twice (a restarted producer sends it again, identical): it is idempotent.
Records of the topics proper have no `type` field.
"""

from __future__ import annotations

from typing import Any

import orjson

DAY_COMPLETE = "day_complete"
_TELL = b'"type":"day_complete"'  # how our writers encode it (compact JSON, type first)


def feature_day_marker(as_of: str, partition: int, partitions: int, rows: int, bots: int) -> dict[str, Any]:
    """The streaming job's marker: the day's feature rows on this partition, bots among them."""
    return {
        "type": DAY_COMPLETE,
        "as_of": as_of,
        "partition": partition,
        "partitions": partitions,
        "rows": rows,
        "bots": bots,
    }


def score_day_marker(
    as_of: str, partition: int, partitions: int, scored: int, bots_skipped: int, model_version: str | None
) -> dict[str, Any]:
    """The worker's marker: users scored and bots skipped of the day on this partition, and the
    churn model serving when the day completed (each score names its own version)."""
    return {
        "type": DAY_COMPLETE,
        "as_of": as_of,
        "partition": partition,
        "partitions": partitions,
        "scored": scored,
        "bots_skipped": bots_skipped,
        "model_version": model_version,
    }


def as_marker(raw: bytes | None) -> dict[str, Any] | None:
    """The marker a raw record holds, or None when it is not one (cheap for ordinary records)."""
    if raw is None or _TELL not in raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and value.get("type") == DAY_COMPLETE:
        return value
    return None
