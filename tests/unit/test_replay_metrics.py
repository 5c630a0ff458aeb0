"""The replay's dead-letter series exist at 0 from the start, so the first rejects are an increase."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry

from musicbox.rawlogs import ReadStats
from producers.replay.metrics import ReplayMetrics


def test_dead_letter_series_start_at_zero_and_count_what_was_acknowledged() -> None:
    # A series born at its first value shows Prometheus no increase: the dead-letter share alert
    # (rate over a window) would miss the first rejects of each reason.
    registry = CollectorRegistry()
    metrics = ReplayMetrics(registry, ReadStats())
    name = "musicbox_replay_dead_letters_total"
    for reason in ("empty", "undecodable", "field_count", "bad_uid"):
        assert registry.get_sample_value(name, {"reason": reason}) == 0
    metrics.acknowledged(Counter(play=100), Counter(field_count=3), nbytes=1000, flush_s=0.01)
    assert registry.get_sample_value(name, {"reason": "field_count"}) == 3
    assert registry.get_sample_value("musicbox_replay_events_total", {"type": "play"}) == 100
