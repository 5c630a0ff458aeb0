"""The demo's timeline: series read from metrics text, the sampler, what the probe reads from the
processes, and the plot written from a few samples."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from demo.probes import StackProbe
from demo.processes import Processes
from demo.timeline import (
    DAYS_CLOSED,
    FEATURE_ROWS,
    RECOMMENDATIONS,
    REPLAY_LINES,
    SCORES,
    Sample,
    Sampler,
    metric_total,
)
from demo.timeline_plot import write_plot
from musicbox.rawlogs import ReadStats
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from producers.replay.metrics import ReplayMetrics
from streaming.scoring.metrics import WorkerMetrics
from tests.unit.test_demo_processes import FakeSpawner

TEXT = """# HELP musicbox_replay_events_total events acknowledged by Kafka, by type
# TYPE musicbox_replay_events_total counter
musicbox_replay_events_total{type="play"} 80.0
musicbox_replay_events_total{type="search"} 15.0
musicbox_replay_events_created{type="play"} 1.7e+09
musicbox_replay_events_totally_other 3.0
musicbox_replay_ticks_total 6.0
"""


def test_a_series_is_the_sum_of_its_samples_and_only_of_its_own() -> None:
    assert metric_total(TEXT, "musicbox_replay_events_total") == 95
    assert metric_total(TEXT, "musicbox_replay_ticks_total") == 6
    assert metric_total(TEXT, "musicbox_replay_dead_letters_total") is None


def test_the_series_the_probe_reads_are_the_ones_the_replay_and_the_worker_export() -> None:
    # A contract: renaming a metric would silently flatten the timeline.
    replay_registry, worker_registry = CollectorRegistry(), CollectorRegistry()
    replay = ReplayMetrics(replay_registry, ReadStats())
    replay.acknowledged(Counter(play=3, download=1), Counter(bad_uid=2), 100, 0.01)
    replay_text = generate_latest(replay_registry).decode()
    assert metric_total(replay_text, "musicbox_replay_events_total") == 4
    assert metric_total(replay_text, "musicbox_replay_dead_letters_total") == 2
    worker = WorkerMetrics(worker_registry)
    worker.scores.inc(5)
    worker.recommendations.labels("als").inc(2)
    worker.recommendations.labels("popularity-fallback").inc(1)
    worker_text = generate_latest(worker_registry).decode()
    assert metric_total(worker_text, "musicbox_worker_scores_total") == 5
    assert metric_total(worker_text, "musicbox_worker_recommendations_total") == 3


def test_the_probe_adds_the_replay_parts_up_from_their_metrics_then_their_summaries(tmp_path: Path) -> None:
    spawner = FakeSpawner()
    procs = Processes(spawner, tmp_path)
    settings = Settings(var_dir=tmp_path)
    answers = {
        f"http://127.0.0.1:{settings.replay_metrics_port}/metrics": TEXT,
        f"http://127.0.0.1:{settings.worker_metrics_port}/metrics": "musicbox_worker_scores_total 7.0\n",
    }
    probe = StackProbe(settings, procs, lambda name: tmp_path / f"{name}.json", {}, fetch=answers.get)
    assert probe.progress() == {REPLAY_LINES: 0, FEATURE_ROWS: 0, DAYS_CLOSED: 0}  # nothing runs yet
    procs.spawn("worker", "worker")
    procs.spawn("replay", "replay")
    assert probe.progress()[REPLAY_LINES] == 95  # while it runs: its metrics
    assert probe.progress()[SCORES] == 7 and RECOMMENDATIONS not in probe.progress()
    spawner.started["replay"].exit_code = 0
    ReplaySummary(120, {"play": 100}, {"bad_uid": 10}, already_in_kafka=10).write(tmp_path / "replay.json")
    assert probe.progress()[REPLAY_LINES] == 110  # ended: its summary (lines sent, not those in Kafka)
    procs.spawn("replay-rest", "replay")  # the same endpoint, the second part's counts
    assert probe.progress()[REPLAY_LINES] == 110 + 95
    assert set(probe.memory()) >= {"demo"}  # this very process, from the real /proc


def test_the_sampler_samples_until_stopped() -> None:
    ticks = threading.Event()
    calls: list[int] = []

    def progress() -> dict[str, int]:
        calls.append(1)
        if len(calls) >= 3:
            ticks.set()
        return {REPLAY_LINES: len(calls)}

    clock = iter(float(t) for t in range(100, 1000))
    sampler = Sampler(
        progress, lambda: {"demo": 1}, started=100.0, interval_s=0.001, clock=lambda: next(clock)
    )
    sampler.start()
    assert ticks.wait(5)
    samples = sampler.stop()
    assert len(samples) >= 3 and samples[0] == Sample(0.0, {REPLAY_LINES: 1}, {"demo": 1})
    assert [s.progress[REPLAY_LINES] for s in samples[:3]] == [1, 2, 3]
    assert len(sampler.samples) == len(samples)  # nothing after stop


def test_a_failing_read_loses_a_sample_not_the_sampler() -> None:
    answers: list[dict[str, int] | Exception] = [RuntimeError("endpoint half written"), {SCORES: 1}]
    done = threading.Event()

    def progress() -> dict[str, int]:
        answer = answers.pop(0) if answers else {SCORES: 2}
        if isinstance(answer, Exception):
            raise answer
        done.set()
        return answer

    sampler = Sampler(progress, dict, started=0.0, interval_s=0.001)
    sampler.start()
    assert done.wait(5)
    assert sampler.stop()[0].progress == {SCORES: 1}


def test_the_plot_is_written_from_a_few_samples(tmp_path: Path) -> None:
    samples = [
        Sample(0.0, {}, {"demo": 2**28}),
        Sample(10.0, {REPLAY_LINES: 500, FEATURE_ROWS: 0}, {"demo": 2**28, "replay": 2**29}),
        Sample(20.0, {REPLAY_LINES: 900, FEATURE_ROWS: 300, DAYS_CLOSED: 3, SCORES: 250}, {"stream": 2**30}),
        Sample(
            30.0, {REPLAY_LINES: 900, FEATURE_ROWS: 400, DAYS_CLOSED: 4, SCORES: 390, RECOMMENDATIONS: 90}, {}
        ),
    ]
    spans = {"generate": (0.0, 5.0), "retrain": (21.0, 25.0), "stream": (5.0, 30.0)}
    path = write_plot(samples, spans, tmp_path / "demo" / "timeline.png", "a test run")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_samples_go_to_json_and_back() -> None:
    s = Sample(1.234567, {SCORES: 3}, {"worker": 42})
    assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))) == Sample(1.23, {SCORES: 3}, {"worker": 42})
