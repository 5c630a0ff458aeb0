"""Faults of one machine, each a test on a stack of the test's own (its broker is stopped and
started here, never the stack of the defaults): what the system does, and that every count
still reconciles. The README's table of faults names these tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicbox.events import Event
from musicbox.rawlogs import iter_logs
from musicbox.replay_summary import ReplaySummary
from musicbox.settings import Settings
from musicbox.topics import Topics
from tests.fixtures.own_stack import OwnStack, own_stack_at
from tests.fixtures.waiting import wait_until
from tests.integration.conftest import consume_all


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logs")
    argv = ["generate", "--users", "300", "--days", "7", "--seed", "11", "--out", str(out), "--force"]
    subprocess.run([sys.executable, "-m", "musicbox", *argv], check=True, capture_output=True)
    return out


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[OwnStack]:
    with own_stack_at(tmp_path) as stack:
        yield stack


def _settings(stack: OwnStack) -> Settings:
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{stack.ports['kafka']}",
        var_dir=stack.var_dir,
        topic_prefix="musicbox.",
    )


def _source_lines(settings: Settings) -> Counter[str]:
    topics = Topics(settings.topic_prefix)
    values = [json.loads(v) for *_, v in consume_all(settings, [*topics.events, topics.dead_letters])]
    return Counter(v.get("event_id") or v["source"] for v in values if v.get("type") != "tick")


def _replay(stack: OwnStack, logs: Path, summary: Path, *extra: str) -> subprocess.Popen[str]:
    argv = ["replay", "--logs", str(logs), "--no-metrics", "--summary-json", str(summary), *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "musicbox", *argv],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kafka_up(stack: OwnStack) -> None:
    done = stack.musicbox("up")
    assert done.returncode == 0, done.stdout + done.stderr


def _kafka_down(stack: OwnStack) -> None:
    done = stack.musicbox("down")
    assert done.returncode == 0, done.stdout + done.stderr


def _assert_every_line_once(settings: Settings, logs: Path, summary_file: Path) -> None:
    expected = Counter(item.event_id if isinstance(item, Event) else item.source for item in iter_logs(logs))
    seen = _source_lines(settings)
    assert {k: n for k, n in seen.items() if n > 1} == {}, "a line is on the topics twice"
    assert set(seen) == set(expected), "a line is missing from the topics"
    summary = ReplaySummary.read(summary_file)
    assert summary.reconciles, summary


def test_kafka_down_when_the_replay_starts(own_stack: OwnStack, week: Path, tmp_path: Path) -> None:
    """The replay says what it waits for, and goes once Kafka is there."""
    _kafka_up(own_stack)  # topics created, then the broker stopped again
    _kafka_down(own_stack)
    summary = tmp_path / "summary.json"
    proc = _replay(own_stack, week, summary, "--max-speed")
    time.sleep(8)  # the fault lasts a while: not a wait for anything
    assert proc.poll() is None, "the replay gave up while Kafka was down"
    _kafka_up(own_stack)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert "waiting for Kafka" in out  # the words a user sees while it waits
    _assert_every_line_once(_settings(own_stack), week, summary)


def test_kafka_going_away_mid_replay(own_stack: OwnStack, week: Path, tmp_path: Path) -> None:
    """Kafka stopped mid-replay and started again: the replay goes on from its ledger, every
    line reaches the topics once, and its counts reconcile (the lines of the transaction Kafka
    did not take are read again)."""
    _kafka_up(own_stack)
    settings = _settings(own_stack)
    summary = tmp_path / "summary.json"
    # At a day every 2 s a week takes ~14 s; small transactions, so some commit before the stop.
    proc = _replay(own_stack, week, summary, "--speed", "43200", "--checkpoint-every", "300")
    ledger = Topics(settings.topic_prefix).replay_ledger
    wait_until(lambda: bool(consume_all(settings, [ledger], idle_ms=500)), 60, "a first commit", 0.5)
    _kafka_down(own_stack)
    time.sleep(5)  # the fault lasts a while: not a wait for anything
    assert proc.poll() is None, "the replay gave up while Kafka was away"
    _kafka_up(own_stack)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    assert "waiting for Kafka" in out  # it said what it waited for
    _assert_every_line_once(settings, week, summary)
