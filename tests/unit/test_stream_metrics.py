"""The stream job's metrics carry what its alerts read: liveness, day-close progress, Kafka lag."""

from __future__ import annotations

import time
from datetime import date
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from musicbox.events import day_start_ms
from streaming.aggregates.day_close import CloseState
from streaming.aggregates.job import BatchReport
from streaming.aggregates.metrics import ProgressListener, StreamMetrics, kafka_lag, open_day_s
from streaming.aggregates.store import Progress

D1, D2, D3 = date(2017, 3, 30), date(2017, 3, 31), date(2017, 4, 1)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def report(close: CloseState, closed_days: list[str] | None = None) -> BatchReport:
    return BatchReport(
        batch_id=7, messages=10, events=9, dead_letters_by_reason={}, late_events=0,
        closed_days=closed_days or [], feature_rows=0, duration_s=1.0, progress=Progress(7, close),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("end", "latest", "lag"),
    [
        # two partitions of one topic: what the latest offsets are ahead of the batch's end
        ('{"p":{"0":10,"1":20}}', '{"p":{"0":15,"1":20}}', {("p", "0"): 5, ("p", "1"): 0}),
        # a partition the batch has no end for yet (just added) is left out, not guessed
        ('{"p":{"0":10}}', '{"p":{"0":10,"1":4}}', {("p", "0"): 0}),
        # a source without a latest offset (Spark gives the string "None"): nothing known
        ('{"p":{"0":10}}', "None", {}),
        (None, None, {}),
    ],
)
def test_kafka_lag_from_a_sources_offsets(
    end: str | None, latest: str | None, lag: dict[tuple[str, str], int]
) -> None:
    assert kafka_lag(end, latest) == lag


@pytest.mark.parametrize(
    ("close", "open_day"),
    [
        (CloseState(), None),  # nothing read yet
        (CloseState(first_day=D1), D1),  # nothing closed: the first day read is open
        (CloseState(closed_through=D2, first_day=D1), D3),  # the day after the last closed one
    ],
)
def test_open_day(close: CloseState, open_day: date | None) -> None:
    assert open_day_s(close) == (None if open_day is None else day_start_ms(open_day) / 1000)


def test_a_batch_shows_the_day_close_state_even_when_it_closes_nothing() -> None:
    # After a restart the first batch closes nothing; the last closed day must still show the
    # job's state (not 0), or the day-close alert would see a day close "not advancing" from 0.
    registry = CollectorRegistry()
    m = StreamMetrics(registry)
    close = CloseState(closed_through=D2, first_day=D1, max_time_ms={"p/0": day_start_ms(D3) + 5000})
    m.record(report(close))
    assert value(registry, "musicbox_stream_last_closed_day_timestamp_seconds") == day_start_ms(D2) / 1000
    assert value(registry, "musicbox_stream_open_day_timestamp_seconds") == day_start_ms(D3) / 1000
    assert value(registry, "musicbox_stream_event_time_timestamp_seconds") == day_start_ms(D3) / 1000 + 5


def test_dead_letter_series_start_at_zero() -> None:
    registry = CollectorRegistry()
    StreamMetrics(registry)
    for reason in ("json", "type", "missing_field", "bad_uid", "date_mismatch", "late"):
        assert value(registry, "musicbox_stream_dead_letters_total", reason=reason) == 0


def test_the_listener_says_the_query_is_alive_when_idle_and_shows_kafka_lag() -> None:
    # An idle query (no input: the ordinary pause) is alive; only a query that reports nothing,
    # neither progress nor idleness, is stalled.
    registry = CollectorRegistry()
    m = StreamMetrics(registry)
    listener = ProgressListener(m)
    m.last_progress.set(0)
    before = time.time()
    listener.onQueryIdle(SimpleNamespace())
    assert (value(registry, "musicbox_stream_last_progress_timestamp_seconds") or 0) >= before
    m.last_progress.set(0)
    source = SimpleNamespace(
        endOffset='{"musicbox.plays":{"0":100}}', latestOffset='{"musicbox.plays":{"0":250}}'
    )
    progress = SimpleNamespace(inputRowsPerSecond=5.0, processedRowsPerSecond=7.0, sources=[source])
    listener.onQueryProgress(SimpleNamespace(progress=progress))
    assert (value(registry, "musicbox_stream_last_progress_timestamp_seconds") or 0) >= before
    assert value(registry, "musicbox_stream_consumer_lag", topic="musicbox.plays", partition="0") == 150
    assert value(registry, "musicbox_stream_input_rows_per_second") == 5.0
