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
from musicbox.markers import as_marker
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.aggregates.outputs import FeatureLog
from streaming.aggregates.store import Progress, StateStore
from tests.integration.conftest import consume_all, env_of, musicbox, replay_killed_at_random

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
    """The feature rows of the topic (its day-complete markers checked and set aside)."""
    records = consume_all(settings, [Topics(settings.topic_prefix).features])
    _assert_markers_close_their_days(records)
    return [json.loads(v) for *_, v in records if as_marker(v) is None]


def _assert_markers_close_their_days(records: list[tuple[str, int, int, bytes | None, bytes]]) -> None:
    """Each closed day has a day-complete marker on every partition, after all of its rows there,
    counting them (bots too); a marker or row sent again (a restarted job) is identical."""
    rows: dict[tuple[str, int], dict[int, tuple[int, bool]]] = defaultdict(dict)
    markers: dict[tuple[str, int], list[tuple[int, bytes]]] = defaultdict(list)
    partitions = {p for _, p, *_ in records}
    for _, partition, offset, _, value in records:
        marker = as_marker(value)
        if marker is None:
            row = json.loads(value)
            # The first copy of each user's row: a re-published one may follow the marker.
            rows[(row["as_of"], partition)].setdefault(row["uid"], (offset, bool(row["is_bot"])))
        else:
            assert marker["partition"] == partition
            markers[(marker["as_of"], partition)].append((offset, value))
    days = {d for d, _ in rows} | {d for d, _ in markers}
    for day in days:
        for partition in partitions:
            found = markers.get((day, partition))
            assert found, f"no day-complete marker for {day} on partition {partition}"
            assert len({v for _, v in found}) == 1, "a marker sent again differs"
            first = json.loads(found[0][1])
            here = rows.get((day, partition), {}).values()
            assert (first["rows"], first["bots"]) == (len(here), sum(bot for _, bot in here))
            assert all(offset < found[0][0] for offset, _ in here), f"a row of {day} after its marker"


def _assert_topic_matches_log(settings: Settings) -> None:
    """The topic holds every row of the feature log, and nothing else: each (uid, as_of) with the
    same values (a re-published row is an identical message)."""
    import pyarrow.parquet as pq

    variants: dict[tuple[object, object], set[str]] = defaultdict(set)
    for m in _feature_messages(settings):
        m.pop("computed_at_ms")
        variants[(m["uid"], m["as_of"])].add(json.dumps(m, sort_keys=True))
    assert all(len(v) == 1 for v in variants.values()), "a row published with two different values"
    table = pq.read_table(FeatureLog(settings.feature_log_dir).root).to_pylist()
    logged = {}
    for row in table:
        row.pop("computed_at_ms")
        row = {
            k: str(v) if k == "as_of" else v for k, v in row.items() if v is not None
        }  # to_json drops nulls
        logged[(row["uid"], row["as_of"])] = json.dumps(row, sort_keys=True)
    assert len(logged) == len(table), "the feature log holds a (uid, as_of) twice"
    assert {k: next(iter(v)) for k, v in variants.items()} == logged


def _progress(settings: Settings) -> Progress:
    """The stream job's own tally after its last batch (its state store)."""
    return StateStore(settings.stream_dir).progress_before(2**62)


def test_stream_then_parity_is_exact(isolated: Settings, three_weeks: Path) -> None:
    musicbox(isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics")
    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    days = FeatureLog(isolated.feature_log_dir).days()
    assert len(days) == 21  # every day closes, the last one too (its tick)
    assert _progress(isolated).close.closed_through == days[-1]
    musicbox(isolated, "parity", "--logs", str(three_weeks))  # exits 1 on any difference
    _assert_topic_matches_log(isolated)


def test_a_replay_killed_anywhere_and_a_day_replayed_twice_keep_parity(
    isolated: Settings, three_weeks: Path
) -> None:
    """Exactly once from log line to feature row: a replay killed at a random moment and run
    again, then a day replayed a second time, give the features of one clean replay."""
    delay_s = replay_killed_at_random(isolated, three_weeks, max_delay_s=8.0, checkpoint_every=700)
    musicbox(isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics")
    again = ["--from", "2017-04-10", "--to", "2017-04-10"]
    musicbox(isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics", *again)
    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    assert len(FeatureLog(isolated.feature_log_dir).days()) == 21
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "parity", "--logs", str(three_weeks)],
        capture_output=True,
        text=True,
        env=env_of(isolated),
    )
    assert done.returncode == 0, f"killed {delay_s:.2f} s in; parity:\n{done.stdout[-3000:]}"
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
    musicbox(isolated, "parity", "--logs", str(three_weeks))  # exits 1 on any difference
    _assert_topic_matches_log(isolated)


def test_late_and_malformed_messages_are_counted_dead_letters(isolated: Settings, three_weeks: Path) -> None:
    from kafka import KafkaProducer

    musicbox(
        isolated, "replay", "--logs", str(three_weeks), "--max-speed", "--no-metrics", "--to", "2017-04-05"
    )
    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    late_before = _progress(isolated).late_events
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

    musicbox(isolated, "stream", "--available-now", "--no-metrics", env=STREAM_ENV)
    assert _progress(isolated).late_events - late_before == 1
    after = Counter(json.loads(v)["reason"] for *_, v in consume_all(isolated, [topics.dead_letters]))
    assert after - before == Counter({"late": 1, "json": 1, "missing_field": 1, "type": 1})
    sources = [json.loads(v) for *_, v in consume_all(isolated, [topics.dead_letters])]
    stream_rejects = [d for d in sources if d["stage"] == "stream"]
    assert all(d["source"].startswith(isolated.topic_prefix) for d in stream_rejects)
    assert any(d["raw"] == "not json at all" for d in stream_rejects)
