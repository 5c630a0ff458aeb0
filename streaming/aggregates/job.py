"""The streaming feature job: Kafka event topics -> daily buckets -> feature rows at each day close.

One micro-batch (`foreachBatch`, a static DataFrame) does, in order:
1. classify every message: event, tick, or dead letter with a reason (`messages.classify`);
2. bucket the batch's events with the shared `daily_buckets` and store them as a delta, in one
   pass that also observes the counts and per-partition marks (`messages.batch_metrics`);
3. route dead letters, and events of days already closed (reason `late`: still counted in the
   buckets so later days stay right, but that day's row was emitted without them);
4. fold the batch's per-partition ticks and event times into the day-close state, and for
   every day that can close, compute its rows with the shared `rolling_features` over the
   stored buckets, write them to the feature log, then publish them from the log;
5. now and then compact the buckets (dropping days older than the 30-day window);
6. save the progress under the batch id (see `store` for why that makes a re-run exact).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from musicbox.features import COMPUTED_AT_MS, LOOKBACK_D
from musicbox.partitioning import UidKeys
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.aggregates.buckets import daily_buckets
from streaming.aggregates.day_close import day_end_ms, days_to_close
from streaming.aggregates.errors import StreamError
from streaming.aggregates.messages import (
    LATE,
    REASON,
    batch_metrics,
    classify,
    events_of,
    read_batch_metrics,
    rejects_of,
)
from streaming.aggregates.outputs import (
    FeatureLog,
    day_markers,
    publish_day_markers,
    publish_dead_letters,
    publish_features,
)
from streaming.aggregates.rolling import rolling_features
from streaming.aggregates.store import Progress, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    """What one micro-batch did, for metrics and the summary."""

    batch_id: int
    messages: int
    events: int
    dead_letters_by_reason: dict[str, int]
    late_events: int
    closed_days: list[str]
    feature_rows: int
    duration_s: float
    progress: Progress
    stage_s: dict[str, float] = field(default_factory=dict)  # where the batch's time went


class Laps:
    """Wall time between successive `lap(stage)` calls, summed per stage."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last = clock()
        self.stage_s: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = self.clock()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - self.last
        self.last = now


class FeatureBatchProcessor:
    """The `foreachBatch` function of the job; state lives in `StateStore` and the feature log."""

    def __init__(
        self,
        settings: Settings,
        partitions: Sequence[str],
        store: StateStore,
        feature_log: FeatureLog,
        on_report: Callable[[BatchReport], None] = lambda report: None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        feature_partitions: int | None = None,
    ) -> None:
        self.settings = settings
        # Partitions of the feature topic, for the day-complete markers (musicbox.markers).
        self.feature_partitions = feature_partitions or settings.partitions
        self.keys = UidKeys()
        self.topics = Topics(settings.topic_prefix)
        self.partitions = list(partitions)
        self.store = store
        self.feature_log = feature_log
        self.on_report = on_report
        self.clock_ms = clock_ms

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        report = self._process(batch.sparkSession, batch, batch_id, started)
        self.on_report(report)

    def _process(self, spark: SparkSession, batch: DataFrame, batch_id: int, started: float) -> BatchReport:
        """One pass over the batch: Kafka -> classify -> buckets delta, with the counts and the
        day-close marks observed on the way (`batch_metrics`); a second read of the batch only
        when it holds dead letters or late events. (Caching the classified batch and counting
        it with separate actions made this 2.8x slower.)"""
        bootstrap, dead_topic = self.settings.kafka_bootstrap, self.topics.dead_letters
        previous = self.store.progress_before(batch_id)
        closed = previous.close.closed_through
        laps = Laps()

        classified = classify(batch, self.settings.topic_prefix)
        late = F.col("event_time_ms") < day_end_ms(closed) if closed is not None else F.lit(False)
        observation = Observation(f"musicbox-stream-batch-{batch_id}")
        metrics = batch_metrics(self.partitions, late)
        observed = classified.observe(observation, *metrics)
        # Always written, empty too: the observed metrics come with this one action.
        self.store.write_delta(daily_buckets(events_of(observed)), batch_id)
        counts = read_batch_metrics(_observed(observation, classified, metrics), self.partitions)
        laps.lap("read + classify + buckets")
        if counts.dead_letters_by_reason:
            late_rows = events_of(classified).filter(late).withColumn(REASON, F.lit(LATE))
            publish_dead_letters(rejects_of(classified).unionByName(late_rows), bootstrap, dead_topic)
            laps.lap("dead letters (a second read)")
        dead = dict(counts.dead_letters_by_reason)
        late_events = dead.pop(LATE, 0)

        close = previous.close.observe(counts.marks)
        due = days_to_close(close, self.partitions, self.settings.stream_allowed_lateness_s * 1000)
        feature_rows = 0
        progress = replace(previous, batch_id=batch_id, close=close)
        if due:
            buckets = self.store.read(spark, progress, batch_id)
            rows = rolling_features(buckets, due, self.settings.bot_plays_30d).withColumn(
                COMPUTED_AT_MS, F.lit(self.clock_ms()).cast("long")
            )
            self.feature_log.write_new(rows, due)
            laps.lap("day close: features to the log")
            published = self.feature_log.read(spark, due)
            feature_rows = published.count()
            publish_features(published, bootstrap, self.topics.features)
            # Only once every row is acknowledged: a marker follows its day's rows.
            markers = day_markers(published, due, self.feature_partitions, self.keys)
            publish_day_markers(spark, markers, bootstrap, self.topics.features)
            laps.lap("day close: publish")
            close = replace(close, closed_through=due[-1])
            progress = replace(progress, close=close)

        if due and batch_id - previous.compacted_through >= self.settings.stream_compact_every:
            keep_from = due[-1] - timedelta(days=LOOKBACK_D - 2)  # the next close needs D-28..D+1
            compacted = self.store.compact(spark, progress, batch_id, keep_from)
            progress = replace(progress, compacted_through=compacted)
            laps.lap("compaction")

        progress = replace(
            progress,
            late_events=previous.late_events + late_events,
            dead_letters=previous.dead_letters + sum(dead.values()),
            feature_rows=previous.feature_rows + feature_rows,
        )
        self.store.save_progress(progress)
        self.store.collect_garbage(progress, previous)
        laps.lap("progress")
        return BatchReport(
            batch_id=batch_id,
            messages=counts.messages,
            events=counts.events,
            dead_letters_by_reason=dead,
            late_events=late_events,
            closed_days=[d.isoformat() for d in due],
            feature_rows=feature_rows,
            duration_s=time.monotonic() - started,
            progress=progress,
            stage_s=laps.stage_s,
        )


def _observed(observation: Observation, classified: DataFrame, metrics: list[Column]) -> dict[str, Any]:
    """The observed metrics; computed again (a second read of the batch) when Spark has none to
    give: on an empty micro-batch (the first one of a live query started on empty topics),
    `Observation.get` fails an assertion in `PythonSQLUtils.toPyRow` (pyspark 4.2.0)."""
    try:
        return observation.get
    except Py4JJavaError:
        log.warning("no observed metrics for this micro-batch: counting it with a second read")
        return classified.agg(*metrics).collect()[0].asDict()


def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """The three event topics through Spark's Kafka connector, from the earliest offsets.

    `read_committed`: the replay writes in transactions, and a replay killed mid-transaction
    leaves records that its successor aborts; they must never be counted."""
    topics = Topics(settings.topic_prefix)
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", ",".join(topics.events))
        .option("kafka.isolation.level", "read_committed")
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(settings.stream_max_offsets))
        .load()
    )


def partition_count(settings: Settings, topic: str) -> int:
    """The partitions of `topic`; an error saying what to do when it does not exist."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic)
    finally:
        consumer.close()
    if not partitions:
        raise StreamError(f"topic {topic} does not exist: `musicbox up` creates the musicbox topics")
    return len(partitions)


def event_partitions(settings: Settings) -> list[str]:
    """ "topic/partition" of every partition of the event topics (each must tick for a day to close)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        found = []
        for topic in Topics(settings.topic_prefix).events:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise StreamError(f"topic {topic} does not exist: `musicbox up` creates the musicbox topics")
            found += [f"{topic}/{p}" for p in sorted(partitions)]
        return found
    finally:
        consumer.close()
