"""Prometheus metrics of the replay (DESIGN 8), fed from acknowledged counts only."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from musicbox.events import day_start_ms
from musicbox.rawlogs import ReadStats
from musicbox.rawlogs.parse import DEAD_LETTER_REASONS


class ReplayMetrics:
    """A ReplayObserver that exports what Kafka acknowledged."""

    def __init__(self, registry: CollectorRegistry, stats: ReadStats) -> None:
        self._stats = stats
        self._repairs_seen: Counter[str] = Counter()
        self.events = PromCounter(
            "musicbox_replay_events", "events acknowledged by Kafka, by type", ["type"], registry=registry
        )
        self.dead_letters = PromCounter(
            "musicbox_replay_dead_letters",
            "lines rejected and sent as dead letters, by reason",
            ["reason"],
            registry=registry,
        )
        for reason in DEAD_LETTER_REASONS:  # at 0: the first dead letters are an increase
            self.dead_letters.labels(reason)
        self.repairs = PromCounter(
            "musicbox_replay_repaired_fields",
            "fields set to null by the reader, by field",
            ["field"],
            registry=registry,
        )
        self.bytes = PromCounter(
            "musicbox_replay_bytes", "message value bytes acknowledged", registry=registry
        )
        self.ticks = PromCounter("musicbox_replay_ticks", "day ticks acknowledged", registry=registry)
        self.flush_latency = Histogram(
            "musicbox_replay_ack_latency_seconds",
            "time for Kafka to acknowledge everything pending at a checkpoint",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.current_day = Gauge(
            "musicbox_replay_current_day_timestamp_seconds",
            "start of the day being replayed (epoch s)",
            registry=registry,
        )
        self.days_done = PromCounter("musicbox_replay_days", "days completed (ticks sent)", registry=registry)

    def acknowledged(self, events: Counter[str], dead: Counter[str], nbytes: int, flush_s: float) -> None:
        for kind, n in events.items():
            self.events.labels(kind).inc(n)
        for reason, n in dead.items():
            self.dead_letters.labels(reason).inc(n)
        self.bytes.inc(nbytes)
        self.flush_latency.observe(flush_s)
        repairs = self._stats.repairs_by_field
        for name, n in (repairs - self._repairs_seen).items():
            self.repairs.labels(name).inc(n)
        self._repairs_seen = repairs

    def day_started(self, day: str) -> None:
        self.current_day.set(day_start_ms(day) / 1000)

    def day_done(self, day: str, ticks: int) -> None:
        self.ticks.inc(ticks)
        self.days_done.inc()
