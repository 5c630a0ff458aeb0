"""`musicbox replay` against the real broker: every line arrives once, in order, with day ticks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from musicbox.events import Event
from musicbox.rawlogs import ReadStats, iter_logs
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from musicbox.topics import Topics
from tests.integration.conftest import consume_all, env_of, musicbox, replay_killed_at_random


@pytest.fixture(scope="module")
def week_of_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated week with every kind of dirt, including a missing shard (2017-04-03)."""
    out = tmp_path_factory.mktemp("logs")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "musicbox",
            "generate",
            "--users",
            "300",
            "--days",
            "7",
            "--seed",
            "11",
            "--out",
            str(out),
            "--force",
        ],
        check=True,
        capture_output=True,
    )
    return out


def _expected(logs: Path) -> tuple[list[Event], int, ReadStats]:
    stats = ReadStats()
    events, dead = [], 0
    for item in iter_logs(logs, stats=stats):
        if isinstance(item, Event):
            events.append(item)
        else:
            dead += 1
    return events, dead, stats


# The sinks of the replay: kafka-python from one process or two, and librdkafka's client.
SINKS = {
    "kafka-python": ["--client", "kafka-python", "--senders", "1"],
    "kafka-python x2": ["--client", "kafka-python", "--senders", "2"],
    "confluent-kafka": ["--client", "confluent-kafka"],
}


@pytest.mark.parametrize("sink", SINKS)
def test_replay_delivers_every_line_in_order_with_ticks(
    isolated: Settings, week_of_logs: Path, sink: str
) -> None:
    summary_file = isolated.var_dir / "replay-summary.json"
    musicbox(
        isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--no-metrics",
        "--summary-json", str(summary_file), *SINKS[sink],
    )  # fmt: skip
    events, dead, stats = _expected(week_of_logs)
    # The machine-readable summary counts what the reader made of the lines, and reconciles.
    summary = ReplaySummary.read(summary_file)
    assert summary.lines == stats.lines and summary.reconciles
    assert summary.events_by_type == Counter(e.type for e in events)
    assert summary.dead_letters_by_reason == stats.dead_letters_by_reason
    topics = Topics(isolated.topic_prefix)
    records = consume_all(isolated, [*topics.events, topics.dead_letters])

    payloads = [(t, p, json.loads(v), k) for t, p, _, k, v in records]
    got_events = [(t, p, v, k) for t, p, v, k in payloads if v.get("type") in ("play", "download", "search")]
    # Events per type per day equal the reader's counts.
    assert Counter((v["type"], v["date"]) for _, _, v, _ in got_events) == Counter(
        (e.type, e.date) for e in events
    )
    # Each event exactly once, byte-for-byte what the reader made of its line.
    assert sorted(json.dumps(v, sort_keys=True) for _, _, v, _ in got_events) == sorted(
        json.dumps(e.to_value(), sort_keys=True) for e in events
    )
    # Dead letters equal the rejected lines.
    dead_letters = [v for t, _, v, _ in payloads if t == topics.dead_letters]
    assert len(dead_letters) == dead == stats.dead_letters > 0
    assert Counter(d["reason"] for d in dead_letters) == stats.dead_letters_by_reason
    # Keyed by uid, on the partition of the Java client's partitioner (aiokafka's own copy of
    # it here); per user, order preserved (the reader's order) within its partition.
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(isolated.partitions))
    by_user: dict[tuple[str, int], list[str]] = defaultdict(list)
    for t, p, v, k in got_events:
        assert k == str(v["uid"]).encode()
        assert p == DefaultPartitioner()(k, partitions, partitions)
        by_user[(t, v["uid"])].append(v["event_id"])
    expected_by_user: dict[tuple[str, int], list[str]] = defaultdict(list)
    for e in events:
        expected_by_user[(topics.for_event_type(e.type), e.uid)].append(e.event_id)
    assert by_user == expected_by_user
    # A tick for every day after each replayed day, on every partition of every event topic.
    days = sorted({e.date for e in events})
    ticks = {(t, p, v["date"]) for t, p, v, _ in payloads if v.get("type") == "tick"}
    from musicbox.events import next_day

    for day in days:
        for topic in topics.events:
            for partition in range(isolated.partitions):
                assert (topic, partition, next_day(day)) in ticks


def _source_lines(settings: Settings) -> Counter[str]:
    """Every event id and dead-letter source a consumer sees, with how often it sees it."""
    topics = Topics(settings.topic_prefix)
    values = [json.loads(v) for *_, v in consume_all(settings, [*topics.events, topics.dead_letters])]
    return Counter(v.get("event_id") or v["source"] for v in values if v.get("type") != "tick")


@pytest.mark.parametrize("sink", SINKS)
def test_kill_9_anywhere_then_replay_again_holds_every_line_once(
    isolated: Settings, week_of_logs: Path, sink: str
) -> None:
    events, dead, _ = _expected(week_of_logs)
    # At a day every 2 s, a week takes ~14 s: kill it at a random moment of its first seconds.
    delay_s = replay_killed_at_random(
        isolated, week_of_logs, max_delay_s=4.0, checkpoint_every=500, extra=SINKS[sink]
    )
    before = _source_lines(isolated)
    assert 0 < sum(before.values()) < len(events) + dead, f"killed {delay_s:.2f} s in: nothing to resume"

    musicbox(isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--no-metrics", *SINKS[sink])
    seen = _source_lines(isolated)
    expected = Counter([e.event_id for e in events])
    assert len(expected) == len(events)
    # Every line once: each event id, and each dead letter's file:line, exactly once.
    assert {k: n for k, n in seen.items() if n > 1} == {}, f"killed {delay_s:.2f} s in"
    assert {k for k in seen if k in expected} == set(expected)
    assert len(seen) == len(events) + dead


def test_a_day_replayed_again_adds_nothing(isolated: Settings, week_of_logs: Path) -> None:
    musicbox(isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--no-metrics")
    topics = Topics(isolated.topic_prefix)
    everything = [*topics.events, topics.dead_letters]
    once = sorted(v for *_, v in consume_all(isolated, everything))
    musicbox(
        isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--no-metrics",
        "--from", "2017-04-01", "--to", "2017-04-01",
    )  # fmt: skip
    assert sorted(v for *_, v in consume_all(isolated, everything)) == once


def test_missing_topics_fail_at_once_with_what_to_do(stack: Settings, week_of_logs: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "replay", "--logs", str(week_of_logs), "--no-metrics"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_of(stack.model_copy(update={"topic_prefix": "nosuchprefix."})),
    )
    assert done.returncode != 0
    assert "nosuchprefix.plays" in done.stdout + done.stderr and "musicbox up" in done.stdout + done.stderr
    assert time.monotonic() - started < 30  # not after the producer's one-minute metadata wait
