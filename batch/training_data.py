"""The data the trainers learn from: labelled feature snapshots and the events behind the ratings.

Feature snapshots come from the raw logs (through the batch feature job's `feature_table`,
cached per events table and days, so a retraining loop on unchanged logs does not redo the
Spark work), from a features file written by `musicbox batch features`, or from the streaming
feature log (labels derived, see `batch.feature_log_labels`). Rating events are read per day
from the events table with pyarrow: no Spark needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import cast

import pandas as pd
import pyarrow.dataset as ds
from pyspark.sql import SparkSession

import batch.features
import streaming.aggregates.buckets
import streaming.aggregates.labels
import streaming.aggregates.rolling
from batch.errors import TrainingError, cause
from batch.events_table import EventsTable
from batch.feature_log_labels import derive_labels, labelled_log_days, log_days, read_feature_log
from batch.features import feature_table
from musicbox.features import AS_OF, FEATURE_ROW_COLUMNS, LABEL, feature_list_hash
from musicbox.settings import Settings

RATING_EVENT_COLUMNS = ("type", "uid", "date", "song_id", "play_time_s", "song_length_s")
DEFAULT_STRIDE_D = 7  # one training snapshot a week: enough variety, rows stay few


def churn_snapshot_days(
    test_as_of: date, first_day: date, *, stride_d: int = DEFAULT_STRIDE_D, label_window_d: int = 14
) -> list[date]:
    """Training snapshots test-14, test-14-stride, ... (not before `first_day`), then the test day.

    Training snapshots end a label window before the test day: on the test day their labels are
    known, later ones are not (models.churn_splits.time_split checks the same).
    """
    if stride_d < 1:
        raise TrainingError(f"the snapshot stride must be at least 1 day, not {stride_d}")
    last_train = test_as_of - timedelta(days=label_window_d)
    if last_train < first_day:
        raise TrainingError(
            f"no training snapshot fits between the first day of data {first_day} and {last_train} "
            f"(the test day {test_as_of} minus the {label_window_d}-day label window): "
            "choose a later test day or give more days of logs"
        )
    count = (last_train - first_day).days // stride_d + 1
    return [*sorted(last_train - timedelta(days=stride_d * i) for i in range(count)), test_as_of]


def last_labelled_day(last_day: date, label_window_d: int) -> date:
    """The newest as-of day whose label window ends within the data."""
    return last_day - timedelta(days=label_window_d)


def read_feature_file(path: Path) -> pd.DataFrame:
    """A feature table written by `musicbox batch features` (.csv, .parquet or a Parquet folder)."""
    if not path.exists():
        raise TrainingError(f"{path} does not exist: write it with `musicbox batch features --out {path}`")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's and pandas' parse errors are ValueErrors
        raise TrainingError(f"{path} cannot be read as a feature table ({cause(exc)})") from exc
    missing = [c for c in (*FEATURE_ROW_COLUMNS, LABEL) if c not in frame.columns]
    if missing:
        raise TrainingError(f"{path} lacks columns {missing}: it is not a `musicbox batch features` table")
    return frame


def _transform_code_hash() -> str:
    """A hash of the feature transforms' source: a cached table from older code is not reused."""
    digest = hashlib.sha256()
    for module in (
        batch.features,
        streaming.aggregates.buckets,
        streaming.aggregates.rolling,
        streaming.aggregates.labels,
    ):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def _cache_key(table: EventsTable, days: list[date], settings: Settings, sample_pct: int | None) -> str:
    spec = {
        "events": table.fingerprint,
        "days": [d.isoformat() for d in days],
        "bot_plays_30d": settings.bot_plays_30d,
        "label_window_d": settings.label_window_d,
        "sample_pct": sample_pct,
        "features": feature_list_hash(),
        "code": _transform_code_hash(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def features_from_logs(
    settings: Settings,
    table: EventsTable,
    days: list[date],
    spark: Callable[[], SparkSession],
    *,
    sample_pct: int | None = None,
) -> tuple[pd.DataFrame, bool]:
    """(labelled feature rows of `days`, whether they came from the cache) for an events table.

    `spark` is called only on a cache miss: unchanged logs need no SparkSession."""
    first, last = table.first_day, table.last_day
    assert first is not None and last is not None  # an events table always holds events
    outside = [d for d in days if not first <= d <= last]
    if outside:
        raise TrainingError(
            f"as-of day(s) {', '.join(map(str, outside[:3]))} are outside the logs ({first}..{last}): "
            "choose a test day (--as-of) within them"
        )
    cache = settings.cache_dir / "training" / f"{_cache_key(table, days, settings, sample_pct)}.parquet"
    if cache.is_file():
        return pd.read_parquet(cache), True
    spark_rows = feature_table(
        spark().read.parquet(str(table.path)),
        days,
        bot_plays_30d=settings.bot_plays_30d,
        label_window_d=settings.label_window_d,
        last_day=last,
        sample_pct=sample_pct,
    )
    rows = cast(pd.DataFrame, spark_rows.toPandas())
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{uuid.uuid4().hex[:8]}")
    rows.to_parquet(tmp, index=False)
    os.replace(tmp, cache)  # a crash never leaves a half-written cache entry that looks whole
    return rows, False


def features_from_feature_log(
    root: Path, label_window_d: int, stride_d: int = DEFAULT_STRIDE_D
) -> tuple[pd.DataFrame, date, list[date]]:
    """(labelled snapshot rows, test day, days of the log) from the streaming feature log.

    The test day is the newest day with a complete label window; training snapshots are chosen
    as for the logs (`churn_snapshot_days`). Only the days the labels need are read.
    """
    days = log_days(root)
    labelled = labelled_log_days(days, label_window_d)
    if not labelled:
        raise TrainingError(
            f"the feature log {root} holds {len(days)} complete day(s) but no day followed by a whole "
            f"{label_window_d}-day label window: let the streaming job close more days"
        )
    test_day = labelled[-1]
    snapshots = [
        d
        for d in churn_snapshot_days(test_day, days[0], stride_d=stride_d, label_window_d=label_window_d)
        if d in set(labelled)
    ]
    needed = sorted({d + timedelta(days=k) for d in snapshots for k in range(label_window_d + 1)})
    rows = derive_labels(read_feature_log(root, needed), days, label_window_d)
    snapshot_rows = rows.loc[pd.to_datetime(rows[AS_OF]).dt.date.isin(set(snapshots)).to_numpy()]
    return snapshot_rows.reset_index(drop=True), test_day, days


def rating_event_days(table: EventsTable, first_day: date, last_day: date) -> Iterator[pd.DataFrame]:
    """The play and download events of each day first_day..last_day (RATING_EVENT_COLUMNS)."""
    dataset = ds.dataset(str(table.path), format="parquet")
    kinds = ds.field("type").isin(["play", "download"])
    day = first_day
    while day <= last_day:
        frame = dataset.to_table(
            columns=list(RATING_EVENT_COLUMNS), filter=(ds.field("date") == day) & kinds
        ).to_pandas()
        if len(frame):
            yield frame
        day += timedelta(days=1)
