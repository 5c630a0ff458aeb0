"""The streaming feature job on the real stack: exact parity with batch, restart, late and bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from musicbox.events import day_start_ms
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.aggregates.outputs import FeatureLog
from tests.integration.conftest import consume_all, env_of, musicbox

# Small micro-batches and frequent compaction, so days close across many batches.
STREAM_ENV = {"MUSICBOX_STREAM_MAX_OFFSETS": "6000", "MUSICBOX_STREAM_COMPACT_EVERY": "3"}


@pytest.fixture(scope="module")
def three_weeks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated weeks, dirt on (malformed lines, garbage fields, a missing shard)."""
    out = tmp_path_factory.mktemp("logs")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "musicbox",
            "generate",
            "--users",
            "400",
            "--days",
            "21",
            "--seed",
            "5",
            "--out",
            str(out),
            "--force",
        ],
        check=True,
        capture_output=True,
    )
    return out


def _feature_messages(settings: Settings) -> list[dict[str, object]]:
    return [json.loads(v) for *_, v in consume_all(settings, [Topics(settings.topic_prefix).features])]


def _assert_topic_matches_log(settings: Settings) -> None:
    """Each (uid, as_of) of the log is on the topic; any duplicate there is an identical message."""
    messages = _feature_messages(settings)
    variants: dict[tuple[object, object], set[str]] = defaultdict(set)
    for m in messages:
        variants[(m["uid"], m["as_of"])].add(json.dumps(m, sort_keys=True))
    assert all(len(v) == 1 for v in variants.values())
    log_days = FeatureLog(settings.feature_log_dir).days()
    assert {d for _, d in variants} == {d.isoformat() for d in log_days}


def test_stream_then_parity_is_exact(isolated: Settings, three_weeks: Path) -> None:
    musicbox(isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics")
    out = musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    assert "days closed" in out
    days = FeatureLog(isolated.feature_log_dir).days()
    assert len(days) == 21  # every day closes, the last one too (its tick)
    parity = musicbox(isolated, "parity", "--logs", str(three_weeks))
    assert "zero differences" in parity
    _assert_topic_matches_log(isolated)


def test_kill_9_and_restart_keeps_parity(isolated: Settings, three_weeks: Path) -> None:
    musicbox(isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics")
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicbox", "stream", "--no-metrics"],
        env=env_of(isolated, **{**STREAM_ENV, "MUSICBOX_STREAM_MAX_OFFSETS": "3000"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = FeatureLog(isolated.feature_log_dir)
    deadline = time.monotonic() + 300
    while len(log.days()) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, "the stream job stopped by itself"
    assert len(log.days()) >= 3, "no day closed within 5 minutes"
    proc.send_signal(signal.SIGKILL)  # mid-stream: the JVM goes with its Python driver
    proc.wait()
    assert len(log.days()) < 21, "everything closed before the kill: nothing was tested"

    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    assert len(log.days()) == 21
    assert "zero differences" in musicbox(isolated, "parity", "--logs", str(three_weeks))
    _assert_topic_matches_log(isolated)


def test_late_and_malformed_messages_are_counted_dead_letters(isolated: Settings, three_weeks: Path) -> None:
    from kafka import KafkaProducer

    musicbox(
        isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics", "--to", "2017-04-05"
    )
    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    topics = Topics(isolated.topic_prefix)
    before = Counter(json.loads(v)["reason"] for *_, v in consume_all(isolated, [topics.dead_letters]))

    producer = KafkaProducer(bootstrap_servers=isolated.kafka_bootstrap, acks="all")
    late = {
        "type": "play",
        "event_id": "late.log:1",
        "uid": 42,
        "date": "2017-04-01",
        "event_time_ms": day_start_ms("2017-04-01") + 1000,
        "device": "ar",
        "song_id": 7,
        "song_type": 0,
        "song_name": "x",
        "singer": "y",
        "play_time_s": 30,
        "song_length_s": 200,
        "paid": 0,
    }
    wrong_topic = {**late, "event_id": "late.log:2", "type": "search"}
    sends = [
        (topics.plays, json.dumps(late).encode()),  # a day already closed: late
        (topics.plays, b"not json at all"),  # json
        (topics.downloads, b'{"type": "download", "uid": "abc"}'),  # uid not a number: missing_field
        (topics.plays, json.dumps(wrong_topic).encode()),  # a search on the plays topic: type
    ]
    for topic, value in sends:
        producer.send(topic, key=b"42", value=value).get(timeout=30)
    producer.close()

    out = musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    assert "late (still bucketed)" in out
    after = Counter(json.loads(v)["reason"] for *_, v in consume_all(isolated, [topics.dead_letters]))
    assert after - before == Counter({"late": 1, "json": 1, "missing_field": 1, "type": 1})
    sources = [json.loads(v) for *_, v in consume_all(isolated, [topics.dead_letters])]
    stream_rejects = [d for d in sources if d["stage"] == "stream"]
    assert all(d["source"].startswith(isolated.topic_prefix) for d in stream_rejects)
    assert any(d["raw"] == "not json at all" for d in stream_rejects)
