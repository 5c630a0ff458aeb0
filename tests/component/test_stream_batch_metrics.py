"""The stream job's observed batch metrics (counts, dead letters by reason, late events, the
day-close marks per partition) on a Kafka-shaped batch with every kind of message, against
counts written out by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F

from musicbox.events import Event, Tick, day_start_ms
from musicbox.settings import Settings
from musicbox.spark import build_spark
from streaming.aggregates.buckets import daily_buckets
from streaming.aggregates.messages import (
    PARSED_FIELDS,
    batch_metrics,
    classify,
    events_of,
    read_batch_metrics,
)

P = "t."
PARTITIONS = [f"{P}plays/0", f"{P}plays/1", f"{P}downloads/0", f"{P}searches/0"]
DAY = "2017-04-02"
CLOSED_END_MS = day_start_ms(DAY)  # 2017-04-01 is closed: an event before DAY is late


def play(uid: int, day: str = DAY, at_s: int = 60, event_id: str | None = "e") -> bytes:
    event = Event("play", event_id or "", uid, day, day_start_ms(day) + at_s * 1000, "ip", song_id=7)
    value = event.to_value()
    if event_id is None:
        value.pop("event_id")
    return json.dumps(value).encode()


def download(uid: int) -> bytes:
    return Event("download", "d", uid, DAY, day_start_ms(DAY) + 5_000, "ar", song_id=8).to_json()


MESSAGES = [
    (f"{P}plays", 0, play(1, at_s=10)),
    (f"{P}plays", 0, play(2, at_s=99)),
    (f"{P}plays", 0, Tick("2017-04-03").to_json()),
    (f"{P}plays", 1, play(3, at_s=20)),
    (f"{P}plays", 1, b"{not json"),  # json
    (f"{P}plays", 1, play(0)),  # bad_uid
    (f"{P}plays", 1, download(4)),  # type: a download on the plays topic
    (f"{P}plays", 1, play(5, event_id=None)),  # missing_field
    (f"{P}plays", 1, json.dumps({**json.loads(play(6)), "date": "2017-04-05"}).encode()),  # date_mismatch
    (f"{P}downloads", 0, download(7)),
    (f"{P}downloads", 0, play(8, day="2017-04-01").replace(b'"play"', b'"download"')),  # late
]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    yield build_spark(Settings(), "test-stream-batch-metrics")


def test_observed_metrics_count_every_message_once(spark: SparkSession, tmp_path: Path) -> None:
    rows = [(topic, part, offset, value) for offset, (topic, part, value) in enumerate(MESSAGES)]
    batch = spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")
    classified = classify(batch, P)
    observation = Observation("test")
    late = F.col("event_time_ms") < CLOSED_END_MS
    observed = classified.observe(observation, *batch_metrics(PARTITIONS, late))
    daily_buckets(events_of(observed)).write.parquet(str(tmp_path / "buckets"))
    counts = read_batch_metrics(observation.get, PARTITIONS)

    assert counts.messages == len(MESSAGES)
    assert counts.events == 5  # uids 1, 2, 3, 7 and the late 8; the tick is not an event
    assert counts.dead_letters_by_reason == {
        "json": 1, "bad_uid": 1, "type": 1, "missing_field": 1, "date_mismatch": 1, "late": 1,
    }  # fmt: skip
    start = day_start_ms(DAY)
    assert counts.marks == [
        (f"{P}plays/0", day_start_ms("2017-04-03"), day_start_ms("2017-04-03"), start + 10_000),
        (f"{P}plays/1", None, start + 20_000, start + 20_000),  # only uid 3 is good there
        (f"{P}downloads/0", None, start + 5_000, day_start_ms("2017-04-01") + 60_000),
    ]  # searches/0 carried nothing: no mark
    # The buckets written in the same pass hold the 5 events.
    written = spark.read.parquet(str(tmp_path / "buckets"))
    assert written.agg(F.sum("plays") + F.sum("downloads")).collect()[0][0] == 5


def test_an_empty_batch_still_gives_its_counts(spark: SparkSession, tmp_path: Path) -> None:
    # pyspark 4.2.0's Observation.get fails on an empty batch; the job counts it again instead.
    from streaming.aggregates.job import _observed

    empty = spark.createDataFrame([], "topic string, partition int, offset long, value binary")
    classified = classify(empty, P)
    observation = Observation("empty")
    metrics = batch_metrics(PARTITIONS, F.lit(False))
    observed = classified.observe(observation, *metrics)
    daily_buckets(events_of(observed)).write.parquet(str(tmp_path / "buckets"))
    counts = read_batch_metrics(_observed(observation, classified, metrics), PARTITIONS)
    assert (counts.messages, counts.events, counts.dead_letters_by_reason, counts.marks) == (0, 0, {}, [])


def _with(**fields: object) -> bytes:
    """A good play of uid 9 with 30 play seconds, some fields replaced."""
    return json.dumps({**json.loads(play(9)), "play_time_s": 30, **fields}).encode()


# (value, reason, play_time_s after parsing): the job checks the fields it uses, only those.
PARSE_CASES = [
    (_with(), None, 30),  # the good play
    (_with(song_id="abc"), None, 30),  # an unused field of the wrong type: ignored
    (_with(song_name={"nested": [1, 2]}), None, 30),  # an unused field holding any JSON: ignored
    (_with(play_time_s="abc"), None, None),  # a used field of the wrong type: null, still an event
    (_with(uid="9"), "missing_field", 30),  # a required field of the wrong type: missing (others kept)
    (_with()[:-1] + b', "song_name": }', "json", None),  # broken JSON, if only in an unused field
]


def test_only_the_fields_the_job_uses_are_parsed_and_checked(spark: SparkSession) -> None:
    rows = [(f"{P}plays", 0, offset, value) for offset, (value, *_) in enumerate(PARSE_CASES)]
    batch = spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")
    classified = classify(batch, P)
    assert not {"song_id", "song_name", "singer", "query", "paid"} & set(classified.columns)
    got = [
        (r["reason"], r["play_time_s"])
        for r in classified.orderBy("offset").select(*PARSED_FIELDS, "reason").collect()
    ]
    assert got == [(reason, seconds) for _, reason, seconds in PARSE_CASES]
