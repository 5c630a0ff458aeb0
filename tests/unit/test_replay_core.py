"""The replay loop against a list sink: order, ticks, counts, transactions, and exactly once
after a failure at any point or a day replayed again."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from musicbox.partitioning import partition_of_key
from musicbox.rawlogs import ReadStats, group_by_day, select_logs
from musicbox.topics import Topics
from producers.replay.core import Replay, ReplayCounts
from producers.replay.errors import NotAcknowledgedError
from producers.replay.ledger import Ledger, LedgerMismatchError
from producers.replay.pacing import Pacer
from producers.replay.routing import Router
from producers.replay.sink import ListSink

SEP = " \t"
TOPICS = Topics()
PARTITIONS = {t: 2 for t in (*TOPICS.events, TOPICS.dead_letters)}


def _line(*fields: object) -> str:
    return SEP.join(str(f) for f in fields) + " \n"


def _write_logs(root: Path) -> None:
    """Two days; day 1 has two play shards, a download, two searches and two bad lines."""
    (root / "20170330_1_play.log").write_text(
        _line(101, "ar", 5, 0, "s5", "a", 30, 200, 0)
        + "264715 \n"  # dead letter: wrong field count
        + _line(102, "ip", 6, 1, "s6", "b", 10, 100, 0)
        + _line(104, "ar", 8, 0, "s8", "d", 50, 100, 0)
        + _line(105, "ar", 9, 0, "s9", "e", 60, 100, 0)
    )
    (root / "20170330_2_play.log").write_text(_line(103, "ar", 7, 0, "s7", "c", 0, 180, 0))
    (root / "20170330_1_down.log").write_text(_line(101, "ar", 5, "s5", "a", 0))
    (root / "20170330_1_search.log").write_text(
        _line(102, "ip", "2017-03-30 23:00:00", "%E9%83%AD") + _line("x1", "ar", "2017-03-30 01:00:00", "q")
    )
    (root / "20170331_1_play.log").write_text(
        _line(101, "ar", 5, 0, "s5", "a", 40, 200, 0) + _line(106, "ip", 5, 0, "s5", "a", 40, 200, 0)
    )


def _run(
    root: Path, sink: ListSink, ledger: Ledger | None = None, every: int = 2, **select: str
) -> tuple[ReplayCounts, ReadStats]:
    stats = ReadStats()
    days = group_by_day(select_logs(root, stats=stats, **select))
    replay = Replay(
        sink, Router(TOPICS, PARTITIONS), Pacer(None), ledger=ledger or Ledger(), checkpoint_every=every
    )
    return replay.run(days, stats), stats


def _no_ticks(records: list) -> list:
    return [r for r in records if b'"tick"' not in r[3]]


def test_every_line_becomes_one_message_and_each_day_ends_with_ticks(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink()
    counts, stats = _run(tmp_path, sink)
    assert stats.lines == 11 == counts.lines == counts.events + counts.dead_letters
    assert counts.summary().reconciles
    assert counts.events_by_type == {"play": 7, "download": 1, "search": 1}
    assert counts.dead_letters_by_reason == {"field_count": 1, "bad_uid": 1}
    # 3 event topics x 2 partitions, after each of the 2 days.
    assert counts.ticks == 12
    payloads = [json.loads(v) for *_, v in sink.records]
    tick_at = [i for i, p in enumerate(payloads) if p.get("type") == "tick" and p["date"] == "2017-03-31"]
    assert {sink.records[i][:2] for i in tick_at} == {(t, p) for t in TOPICS.events for p in (0, 1)}
    # The tick for 03-31 comes after every line of 03-30 and before any line of 03-31.
    day_of = [p.get("date") or p["source"][:8] for p in payloads]
    assert all(d in ("2017-03-30", "20170330") for d in day_of[: tick_at[0]])
    assert all(d not in ("2017-03-30", "20170330") for d in day_of[tick_at[-1] + 1 :])
    # A day's ticks are a transaction of their own: they become visible only after every line
    # of the day is (DESIGN 3: a tick means "day D is complete").
    tick_only = [t for t in sink.transactions if t and all(b'"tick"' in r[3] for r in t)]
    assert [len(t) for t in tick_only] == [6, 6]
    assert not [t for t in sink.transactions if t not in tick_only and any(b'"tick"' in r[3] for r in t)]
    assert counts.commits == len(sink.transactions)


def test_events_are_placed_by_the_java_partitioner_and_ordered_by_event_time(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink()
    _run(tmp_path, sink)
    events = [(t, p, k, json.loads(v)) for t, p, k, v in sink.records if t != TOPICS.dead_letters]
    events = [e for e in events if e[3]["type"] != "tick"]
    day1 = [v for *_, v in events if v["date"] == "2017-03-30"]
    assert [v["event_time_ms"] for v in day1] == sorted(v["event_time_ms"] for v in day1)
    for topic, partition, key, value in events:
        assert key == str(value["uid"]).encode()
        assert topic == TOPICS.for_event_type(value["type"])
        assert partition == partition_of_key(key, 2)
    # the last day's tick closes it
    assert json.loads(sink.records[-1][3]) == {
        "type": "tick",
        "date": "2017-04-01",
        "event_time_ms": 1491004800000,
    }


@pytest.mark.parametrize(
    ("key", "signed_murmur2"),
    [
        # Kafka's own UtilsTest.testMurmur2 vectors: our placement is the Java client's.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"abc", 479470107),
    ],
)
def test_partition_of_key_is_the_java_clients(key: bytes, signed_murmur2: int) -> None:
    assert partition_of_key(key, 1_000_003) == (signed_murmur2 & 0x7FFFFFFF) % 1_000_003


def test_a_damaged_file_is_sent_as_one_dead_letter_and_the_replay_goes_on(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    packed = gzip.compress(
        "".join(_line(200 + n, "ar", n, 0, "s", "a", 30, 200, 0) for n in range(3000)).encode()
    )
    (tmp_path / "20170330_3_play.log.gz").write_bytes(packed[: len(packed) // 2])  # cut short
    sink = ListSink()
    counts, stats = _run(tmp_path, sink, every=500)
    # Both days are replayed, the lines before the cut included, and the summary reconciles.
    assert counts.days_completed == 2
    assert counts.dead_letters_by_reason == {"field_count": 1, "bad_uid": 1, "damaged_file": 1}
    assert 11 + 1 < stats.lines == counts.events + counts.dead_letters < 11 + 3000
    damage = [json.loads(v) for *_, v in sink.records if b"damaged_file" in v]
    assert [(d["stage"], d["source"]) for d in damage] == [
        ("read", f"20170330_3_play.log:{stats.lines - 11}")
    ]
    assert "20170330_3_play.log.gz is damaged" in damage[0]["raw"]


def test_nothing_uncommitted_is_counted(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink(fail_after=3)
    stats = ReadStats()
    replay = Replay(sink, Router(TOPICS, PARTITIONS), Pacer(None), checkpoint_every=2)
    with pytest.raises(NotAcknowledgedError):
        replay.run(group_by_day(select_logs(tmp_path, stats=stats)), stats)
    # The first transaction (2 items) committed; the second would pass 3 messages: aborted.
    assert replay.counts.events + replay.counts.dead_letters == 2 == len(sink.records)
    # Every line read is accounted for: committed, or read into the transaction that failed.
    assert replay.counts.aborted == 2
    assert replay.counts.summary().reconciles


def _by_partition(records: list) -> dict:
    """The messages (ticks aside) of each partition, in order: what a consumer of it reads."""
    return {slot: [r for r in _no_ticks(records) if r[:2] == slot] for slot in {r[:2] for r in records}}


def _clean_replay(root: Path) -> list:
    sink = ListSink()
    _run(root, sink)
    return sink.records


@pytest.mark.parametrize("every", [1, 2, 5])
def test_a_replay_killed_anywhere_then_run_again_holds_every_line_once(tmp_path: Path, every: int) -> None:
    """Whatever message the broker stops at, the first run's commits plus the second run's
    are exactly one clean replay: the same messages on the same partitions, in the same order."""
    _write_logs(tmp_path)
    clean = _clean_replay(tmp_path)
    for stop in range(len(clean)):
        first = ListSink(fail_after=stop)
        with pytest.raises(NotAcknowledgedError):
            _run(tmp_path, first, every=every)
        second = ListSink()
        counts, _ = _run(tmp_path, second, Ledger.from_records(first.ledger), every=every)
        assert counts.summary().reconciles, stop
        combined = first.records + second.records
        assert _by_partition(combined) == _by_partition(clean), f"failed at message {stop}"
        # Ticks may be sent again (a day whose ticks did not commit): a tick is idempotent.
        assert {r for r in combined if b'"tick"' in r[3]} == {r for r in clean if b'"tick"' in r[3]}


def test_a_day_replayed_again_sends_nothing(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    first = ListSink()
    _run(tmp_path, first)
    again = ListSink()
    counts, stats = _run(tmp_path, again, Ledger.from_records(first.ledger), from_day="2017-03-31")
    assert again.records == []
    assert counts.days_already_done == ["2017-03-31"]
    assert stats.lines == 0  # a day the topics hold whole is not even read


def test_the_ledger_refuses_another_data_set_of_the_same_day(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    first = ListSink()
    _run(tmp_path, first)
    (tmp_path / "20170331_1_play.log").write_text(_line(107, "ar", 5, 0, "s5", "a", 40, 200, 0))
    with pytest.raises(LedgerMismatchError, match="other log files"):
        _run(tmp_path, ListSink(), Ledger.from_records(first.ledger))


def test_the_ledger_refuses_a_topic_whose_partitions_changed(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    first = ListSink(fail_after=4)
    with pytest.raises(NotAcknowledgedError):
        _run(tmp_path, first)
    stats = ReadStats()
    fewer = {t: 1 for t in PARTITIONS}
    replay = Replay(ListSink(), Router(TOPICS, fewer), Pacer(None), Ledger.from_records(first.ledger))
    with pytest.raises(LedgerMismatchError, match="partition count changed"):
        replay.run(group_by_day(select_logs(tmp_path, stats=stats)), stats)


def test_a_paced_replay_commits_before_a_long_wait(tmp_path: Path) -> None:
    """At live speed the lines of one wait must not stay invisible for the whole wait."""
    _write_logs(tmp_path)
    now = [0.0]
    waits: list[tuple[float, int]] = []
    sink = ListSink()

    def sleep(s: float) -> None:
        waits.append((s, len(sink.records)))
        now[0] += s

    pacer = Pacer(1.0, clock=lambda: now[0], sleep=sleep, check_every=1)
    stats = ReadStats()
    replay = Replay(sink, Router(TOPICS, PARTITIONS), pacer, checkpoint_every=1000, clock=lambda: now[0])
    replay.run(group_by_day(select_logs(tmp_path, stats=stats)), stats)
    assert waits, "at 1x the replay waits between events"
    # Before each wait of a second or more, everything sent so far was committed.
    committed_before = [n for s, n in waits if s >= 1.0]
    assert committed_before == sorted(committed_before) and committed_before[0] >= 1
    assert not sink.pending


def test_ledger_latest_record_wins_and_a_day_is_done_only_when_every_partition_ticked() -> None:
    from producers.replay.ledger import Entry, encode

    slots = [(t, p) for t in TOPICS.events for p in (0, 1)]
    partial = [encode("2017-03-30", s, Entry(3, True, "f", 2)) for s in slots[:-1]]
    ledger = Ledger.from_records([*partial, encode("2017-03-30", slots[-1], Entry(1, False, "f", 2))])
    status = ledger.day("2017-03-30", "f", PARTITIONS, TOPICS.events)
    assert not status.done and status.sent[slots[-1]] == 1
    ledger = Ledger.from_records([*partial, encode("2017-03-30", slots[-1], Entry(2, True, "f", 2))])
    status = ledger.day("2017-03-30", "f", PARTITIONS, TOPICS.events)
    assert status.done and status.items == 3 * 5 + 2
    assert Counter(ledger.days()) == Counter({"2017-03-30": 1})
