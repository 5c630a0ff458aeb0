"""`musicbox replay` against the real broker: every line arrives once, in order, with day ticks."""

from __future__ import annotations

import json
import signal
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
from tests.integration.conftest import consume_all, env_of, musicbox


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


def test_replay_delivers_every_line_in_order_with_ticks(isolated: Settings, week_of_logs: Path) -> None:
    summary_file = isolated.var_dir / "replay-summary.json"
    musicbox(
        isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--no-metrics",
        "--summary-json", str(summary_file),
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
    # Keyed by uid; per user, order preserved (the reader's order) within its partition.
    by_user: dict[tuple[str, int], list[str]] = defaultdict(list)
    for t, _, v, k in got_events:
        assert k == str(v["uid"]).encode()
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


def test_kill_9_mid_replay_then_resume_loses_nothing(isolated: Settings, week_of_logs: Path) -> None:
    events, dead, _ = _expected(week_of_logs)
    # At a day every 2 s, a week takes ~14 s: kill it a few seconds in, mid-day.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "musicbox",
            "replay",
            "--logs",
            str(week_of_logs),
            "--speed",
            "43200",
            "--no-metrics",
            "--checkpoint-every",
            "500",
        ],
        env=env_of(isolated),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = isolated.var_dir / "replay" / "state.json"
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    assert proc.poll() is None, "the replay finished before it could be killed: slow it down"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = json.loads(state.read_text())

    out = musicbox(isolated, "replay", "--logs", str(week_of_logs), "--max-speed", "--resume", "--no-metrics")
    # It picked up mid-way: the summary counts what the killed run had acknowledged.
    assert interrupted_at["day"] > "2017-03-30" or interrupted_at["items"] > 0
    assert "reconciles" in out
    if interrupted_at["items"]:
        assert "already sent before the resume" in out
    topics = Topics(isolated.topic_prefix)
    records = consume_all(isolated, [*topics.events, topics.dead_letters])
    values = [json.loads(v) for *_, v in records]
    got_ids = Counter(v["event_id"] for v in values if v.get("type") in ("play", "download", "search"))
    # Every source event is in Kafka; any duplicate is the very same message.
    assert set(got_ids) == {e.event_id for e in events}
    by_id: dict[str, set[str]] = defaultdict(set)
    for v in values:
        if "event_id" in v:
            by_id[v["event_id"]].add(json.dumps(v, sort_keys=True))
    assert all(len(variants) == 1 for variants in by_id.values())
    assert len({v["source"] for v in values if "stage" in v}) == dead


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
