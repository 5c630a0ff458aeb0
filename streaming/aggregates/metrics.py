"""Prometheus metrics of the streaming job: Spark's query progress plus the job's own counts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pyspark.sql.streaming import StreamingQueryListener

from musicbox.events import day_start_ms
from streaming.aggregates.day_close import CloseState
from streaming.aggregates.job import BatchReport
from streaming.aggregates.messages import DEAD_LETTER_REASONS, LATE


def kafka_lag(end_offset: str | None, latest_offset: str | None) -> dict[tuple[str, str], int]:
    """Records not yet read per (topic, partition), from a Kafka source's progress: its offsets
    are JSON (`{"topic": {"0": 42}}`). Empty when either is missing or not Kafka's."""
    try:
        end, latest = json.loads(end_offset or "null"), json.loads(latest_offset or "null")
    except ValueError:
        return {}
    if not isinstance(end, dict) or not isinstance(latest, dict):
        return {}
    return {
        (topic, partition): max(0, int(offset) - int(end[topic][partition]))
        for topic, offsets in latest.items()
        if isinstance(offsets, dict) and isinstance(end.get(topic), dict)
        for partition, offset in offsets.items()
        if partition in end[topic]
    }


def open_day_s(close: CloseState) -> float | None:
    """Start of the oldest day not closed yet (epoch s); None before the first event."""
    if close.closed_through is not None:
        return day_start_ms(close.closed_through + timedelta(days=1)) / 1000
    if close.first_day is not None:
        return day_start_ms(close.first_day) / 1000
    return None


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.input_rate = Gauge(
            "musicbox_stream_input_rows_per_second",
            "Kafka records read per second (last batch)",
            registry=registry,
        )
        self.processed_rate = Gauge(
            "musicbox_stream_processed_rows_per_second",
            "records processed per second (last batch)",
            registry=registry,
        )
        self.batch_duration = Histogram(
            "musicbox_stream_batch_duration_seconds",
            "wall time of one micro-batch",
            buckets=(0.5, 1, 2, 4, 8, 16, 32, 64, 128),
            registry=registry,
        )
        self.messages = Counter("musicbox_stream_messages", "Kafka messages processed", registry=registry)
        self.events = Counter("musicbox_stream_events", "well-formed events bucketed", registry=registry)
        self.dead_letters = Counter(
            "musicbox_stream_dead_letters",
            "messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in (*DEAD_LETTER_REASONS, LATE):  # at 0: the first dead letter is an increase
            self.dead_letters.labels(reason)
        self.late_events = Counter(
            "musicbox_stream_late_events", "events for a day already closed", registry=registry
        )
        self.feature_rows = Counter(
            "musicbox_stream_feature_rows", "feature rows emitted at day closes", registry=registry
        )
        self.last_closed_day = Gauge(
            "musicbox_stream_last_closed_day_timestamp_seconds",
            "start of the last closed day (epoch s)",
            registry=registry,
        )
        self.days_closed = Counter("musicbox_stream_days_closed", "days closed", registry=registry)
        self.last_batch = Gauge(
            "musicbox_stream_last_batch_timestamp_seconds",
            "wall time the last micro-batch ended",
            registry=registry,
        )
        self.last_progress = Gauge(
            "musicbox_stream_last_progress_timestamp_seconds",
            "wall time the query last said it is alive: a micro-batch's progress, or idle and waiting "
            "for input (Spark says so every 10 s); the process start until then",
            registry=registry,
        )
        self.last_progress.set_to_current_time()
        self.event_time = Gauge(
            "musicbox_stream_event_time_timestamp_seconds",
            "newest event (or tick) time read on any input partition (epoch s)",
            registry=registry,
        )
        self.open_day = Gauge(
            "musicbox_stream_open_day_timestamp_seconds",
            "start of the oldest day not closed yet (epoch s)",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "musicbox_stream_consumer_lag",
            "records not yet read per input partition, when the last micro-batch was planned",
            ["topic", "partition"],
            registry=registry,
        )

    def record(self, report: BatchReport) -> None:
        self.batch_duration.observe(report.duration_s)
        self.messages.inc(report.messages)
        self.events.inc(report.events)
        for reason, n in report.dead_letters_by_reason.items():
            self.dead_letters.labels(reason).inc(n)
        if report.late_events:
            self.dead_letters.labels(LATE).inc(report.late_events)
            self.late_events.inc(report.late_events)
        self.feature_rows.inc(report.feature_rows)
        self.days_closed.inc(len(report.closed_days))
        close = report.progress.close
        if close.closed_through is not None:  # from the job's state: right again after a restart
            self.last_closed_day.set(day_start_ms(close.closed_through) / 1000)
        if close.max_time_ms:
            self.event_time.set(max(close.max_time_ms.values()) / 1000)
        open_day = open_day_s(close)
        if open_day is not None:
            self.open_day.set(open_day)
        self.last_batch.set_to_current_time()

    def progress(self, sources: list[Any]) -> None:
        """A micro-batch's progress: the query is alive, and how far behind Kafka each partition is."""
        self.last_progress.set_to_current_time()
        for source in sources:
            for (topic, partition), lag in kafka_lag(source.endOffset, source.latestOffset).items():
                self.consumer_lag.labels(topic, partition).set(lag)


class ProgressListener(StreamingQueryListener):
    """Feeds Spark's per-batch progress into the gauges."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics

    def onQueryStarted(self, event: Any) -> None:
        self.metrics.last_progress.set_to_current_time()

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        self.metrics.input_rate.set(progress.inputRowsPerSecond or 0.0)
        self.metrics.processed_rate.set(progress.processedRowsPerSecond or 0.0)
        self.metrics.progress(list(progress.sources))

    def onQueryIdle(self, event: Any) -> None:
        self.metrics.last_progress.set_to_current_time()

    def onQueryTerminated(self, event: Any) -> None:
        pass
