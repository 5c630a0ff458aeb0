"""The Spark feature transforms against the plain-Python oracle, every cell, on random dirty events.

One SparkSession for the module (start-up is the expensive part); a few hundred users over
40 days with null devices, null play times, gaps, churners and bots.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession

from batch.features import feature_table, in_sample, read_table, write_table
from musicbox.events import DAY_MS, day_start_ms
from musicbox.features import AS_OF, FEATURE_ROW_COLUMNS, LABEL, UID
from musicbox.settings import Settings
from musicbox.spark import build_spark
from streaming.aggregates.buckets import BUCKET_COLUMNS, daily_buckets, with_event_ts
from streaming.aggregates.labels import churn_labels
from streaming.aggregates.rolling import rolling_features
from streaming.aggregates.schema import feature_row_schema
from tests.fixtures.oracle import OracleEvent, oracle_features, oracle_labels

START = date(2017, 3, 30)
DAYS = 40
LAST = START + timedelta(days=DAYS - 1)
BOT_PLAYS_30D = 120  # low, so that a few fixture users are bots without thousands of events
LABEL_WINDOW_D = 14
# First day, second day, mid-range, the first day with a full 30-day history, the last labelled
# day, the first unlabelled one, and the last day of the data.
AS_OF_DAYS = [START + timedelta(days=k) for k in (0, 1, 12, 29, DAYS - 1 - LABEL_WINDOW_D, 26, DAYS - 1)]
EVENT_SCHEMA = "type string, uid long, event_time_ms long, device string, play_time_s long"
ARROW_EVENT_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("uid", pa.int64()),
        ("event_time_ms", pa.int64()),
        ("device", pa.string()),
        ("play_time_s", pa.int64()),
    ]
)


def random_events(seed: int = 20170330, users: int = 300) -> list[OracleEvent]:
    """Dirty, gappy activity: lifespans that end (churn), idle days, null devices and play times, bots."""
    rng = random.Random(seed)
    events: list[OracleEvent] = []
    for i in range(users):
        uid = 168_000_000 + 7 * i
        bot = i % 50 == 0  # 6 bots: active every day, ~8 plays a day
        first = 0 if bot else rng.randrange(DAYS)
        last = DAYS - 1 if bot else rng.randrange(first, DAYS)
        p_active = 1.0 if bot else rng.choice((0.15, 0.4, 0.8))
        main_device = rng.choice(("ar", "ar", "ar", "ip", "mc", None))
        for day in range(first, last + 1):
            if rng.random() >= p_active:
                continue  # a gap
            for _ in range(rng.randint(6, 10) if bot else rng.randint(1, 4)):
                kind = rng.choices(("play", "download", "search"), weights=(80, 10, 10))[0]
                device = main_device if rng.random() < 0.8 else rng.choice(("ar", "ip", "mc", None))
                play_time_s = rng.choice((None, 0, rng.randint(1, 400), rng.randint(1, 400)))
                events.append(
                    {
                        "type": kind,
                        "uid": uid,
                        "event_time_ms": day_start_ms(START + timedelta(days=day)) + rng.randrange(DAY_MS),
                        "device": device,
                        "play_time_s": play_time_s if kind == "play" else None,
                    }
                )
    # Day ticks (no uid), as the streaming job sees them: they must not become users.
    for day in range(1, DAYS + 1):
        tick_ms = day_start_ms(START + timedelta(days=day))
        events.append(
            {"type": "tick", "uid": None, "event_time_ms": tick_ms, "device": None, "play_time_s": None}
        )
    return events


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield build_spark(Settings(), "test-features-spark")


@pytest.fixture(scope="module")
def events() -> list[OracleEvent]:
    return random_events()


@pytest.fixture(scope="module")
def events_df(spark: SparkSession, events: list[OracleEvent]) -> DataFrame:
    rows = [(e["type"], e["uid"], e["event_time_ms"], e["device"], e["play_time_s"]) for e in events]
    return spark.createDataFrame(rows, EVENT_SCHEMA).cache()


@pytest.fixture(scope="module")
def buckets(events_df: DataFrame) -> DataFrame:
    return daily_buckets(events_df).cache()


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[int, date], dict[str, Any]]:
    return {(r[UID], r[AS_OF]): r for r in rows}


def _diff(actual: dict[Any, Any], expected: dict[Any, Any], limit: int = 5) -> list[str]:
    """The first few differing cells, to make a failure readable."""
    out = [f"missing row {k}" for k in sorted(set(expected) - set(actual))[:limit]]
    out += [f"extra row {k}" for k in sorted(set(actual) - set(expected))[:limit]]
    for key in sorted(set(actual) & set(expected)):
        for column, value in expected[key].items():
            if actual[key].get(column) != value:
                out.append(f"{key} {column}: spark {actual[key].get(column)!r} != oracle {value!r}")
    return out[:limit]


def test_fixture_has_the_dirt_it_claims(events: list[OracleEvent]) -> None:
    # Guards the other tests against a fixture that silently lost its hard cases.
    oracle_last = oracle_features(events, LAST, BOT_PLAYS_30D)
    assert any(r["is_bot"] for r in oracle_last.values())
    assert any(r["device"] == "unknown" for r in oracle_last.values())
    assert any(r["days_since_download"] == 31 for r in oracle_last.values())
    assert any(e["type"] == "play" and e["play_time_s"] is None for e in events)
    assert any(e["device"] is None and e["uid"] is not None for e in events)


def test_features_equal_the_oracle_in_every_cell(buckets: DataFrame, events: list[OracleEvent]) -> None:
    actual = _by_key([r.asDict() for r in rolling_features(buckets, AS_OF_DAYS, BOT_PLAYS_30D).collect()])
    expected = _by_key(
        [row for d in AS_OF_DAYS for row in oracle_features(events, d, BOT_PLAYS_30D).values()]
    )
    assert len(expected) > 500  # the comparison covers many rows, not a handful
    assert _diff(actual, expected) == []
    assert actual == expected


def test_feature_rows_have_the_contract_columns_and_types(buckets: DataFrame) -> None:
    schema = rolling_features(buckets, [LAST], BOT_PLAYS_30D).schema
    assert [(f.name, f.dataType) for f in schema.fields] == [
        (f.name, f.dataType) for f in feature_row_schema().fields
    ]
    assert tuple(schema.fieldNames()) == FEATURE_ROW_COLUMNS


def test_labels_equal_the_oracle(buckets: DataFrame, events: list[OracleEvent]) -> None:
    rows = churn_labels(buckets, AS_OF_DAYS, LABEL_WINDOW_D, LAST).collect()
    actual = {(r[UID], r[AS_OF]): r[LABEL] for r in rows}
    expected: dict[tuple[int, date], int] = {}
    for d in AS_OF_DAYS:
        labels = oracle_labels(events, d, LABEL_WINDOW_D, LAST)
        expected.update({(uid, d): churn for uid, churn in (labels or {}).items()})
    # the unlabelled as-of days (label window past LAST) have no row at all
    assert {d for _, d in actual} == {d for d in AS_OF_DAYS if d + timedelta(days=LABEL_WINDOW_D) <= LAST}
    assert 0 < sum(expected.values()) < len(expected)  # both churners and stayers
    assert actual == expected


def test_daily_buckets_on_a_stream_equal_the_static_ones(
    spark: SparkSession, events: list[OracleEvent], buckets: DataFrame, tmp_path: Path
) -> None:
    # Four files of ten days each, one micro-batch per file, ticks inside: the stream closes a
    # day only when a later tick moves the watermark, and the last tick closes the last day.
    source = tmp_path / "events"
    source.mkdir()
    ordered = sorted(events, key=lambda e: e["event_time_ms"])
    for k in range(4):
        end_ms = day_start_ms(START + timedelta(days=10 * (k + 1)))
        chunk = [e for e in ordered if end_ms - 10 * DAY_MS < e["event_time_ms"] <= end_ms]
        path = source / f"part-{k}.parquet"
        pq.write_table(pa.Table.from_pylist(chunk, schema=ARROW_EVENT_SCHEMA), path)
        os.utime(path, (1_000_000 + k, 1_000_000 + k))  # the file source reads files in mtime order
    stream = spark.readStream.schema(EVENT_SCHEMA).option("maxFilesPerTrigger", 1).parquet(str(source))
    query = (
        daily_buckets(with_event_ts(stream).withWatermark("event_ts", "0 seconds"))
        .writeStream.format("memory")
        .queryName("stream_buckets")
        .outputMode("append")
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(120)
    assert len(query.recentProgress) >= 4  # really several micro-batches, state carried across
    streamed = {tuple(r) for r in spark.table("stream_buckets").filter("uid IS NOT NULL").collect()}
    static = {tuple(r) for r in buckets.filter("uid IS NOT NULL").select(*BUCKET_COLUMNS).collect()}
    assert max(r[1] for r in streamed) == LAST
    assert streamed == static


def test_feature_table_writes_csv_and_parquet_that_read_back_equal(
    spark: SparkSession, events_df: DataFrame, events: list[OracleEvent], tmp_path: Path
) -> None:
    table = feature_table(
        events_df, AS_OF_DAYS[-3:], bot_plays_30d=BOT_PLAYS_30D, label_window_d=LABEL_WINDOW_D, last_day=LAST
    ).cache()  # three writes of the same rows
    outputs = [tmp_path / "f.csv", tmp_path / "f.parquet", tmp_path / "folder"]
    read_back = []
    for out in outputs:
        write_table(table, out)
        read_back.append(sorted(tuple(r) for r in read_table(spark, out).collect()))
    assert outputs[0].is_file() and outputs[1].is_file() and outputs[2].is_dir()
    assert outputs[0].read_text().splitlines()[0] == ",".join((*FEATURE_ROW_COLUMNS, LABEL))
    assert read_back[0] == read_back[1] == read_back[2]
    labels = {r[-1] for r in read_back[0]}
    assert labels == {0, 1, None}  # a labelled day and unlabelled days in one output
    assert len(read_back[0]) == sum(len(oracle_features(events, d, BOT_PLAYS_30D)) for d in AS_OF_DAYS[-3:])


@pytest.mark.parametrize(
    ("uid", "bucket"),
    [
        # pmod(xxhash64(uid), 100), pinned: a change of hash would silently change every sample
        (168_000_000, 95),
        (168_000_007, 63),
        (1, 18),
    ],
)
def test_sample_hash_is_pinned(spark: SparkSession, uid: int, bucket: int) -> None:
    one = spark.createDataFrame([(uid,)], f"{UID} long")
    assert one.filter(in_sample(bucket + 1)).count() == 1
    assert one.filter(in_sample(bucket)).count() == 0


def test_sample_keeps_about_p_percent_and_nests(events_df: DataFrame) -> None:
    users = events_df.filter("uid IS NOT NULL").select(UID).distinct().cache()
    ten = {r[UID] for r in users.filter(in_sample(10)).collect()}
    twenty = {r[UID] for r in users.filter(in_sample(20)).collect()}
    total = users.count()
    assert ten < twenty  # a bigger sample holds the smaller one
    assert 0.03 * total < len(ten) < 0.2 * total  # roughly 10 %
