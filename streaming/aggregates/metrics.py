"""Prometheus metrics of the streaming job: Spark's query progress plus the job's own counts."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pyspark.sql.streaming import StreamingQueryListener

from musicbox.events import day_start_ms
from streaming.aggregates.job import BatchReport


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

    def record(self, report: BatchReport) -> None:
        self.batch_duration.observe(report.duration_s)
        self.messages.inc(report.messages)
        self.events.inc(report.events)
        for reason, n in report.dead_letters_by_reason.items():
            self.dead_letters.labels(reason).inc(n)
        if report.late_events:
            self.dead_letters.labels("late").inc(report.late_events)
            self.late_events.inc(report.late_events)
        self.feature_rows.inc(report.feature_rows)
        self.days_closed.inc(len(report.closed_days))
        if report.closed_days:
            self.last_closed_day.set(day_start_ms(report.closed_days[-1]) / 1000)
        self.last_batch.set_to_current_time()


class ProgressListener(StreamingQueryListener):
    """Feeds Spark's per-batch progress into the gauges."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        self.metrics.input_rate.set(progress.inputRowsPerSecond or 0.0)
        self.metrics.processed_rate.set(progress.processedRowsPerSecond or 0.0)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass
