"""The replay loop against a list sink: order, ticks, counts, checkpoints and resume."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from musicbox.rawlogs import ReadStats, group_by_day, select_logs
from musicbox.topics import Topics
from producers.replay.core import Replay
from producers.replay.errors import NotAcknowledgedError
from producers.replay.pacing import Pacer
from producers.replay.sink import ListSink
from producers.replay.state import Position, StateFile, logs_fingerprint

SEP = " \t"


def _line(*fields: object) -> str:
    return SEP.join(str(f) for f in fields) + " \n"


def _write_logs(root: Path) -> None:
    """Two days; day 1 has two play shards, a download, two searches and two bad lines."""
    (root / "20170330_1_play.log").write_text(
        _line(101, "ar", 5, 0, "s5", "a", 30, 200, 0)
        + "264715 \n"  # dead letter: wrong field count
        + _line(102, "ip", 6, 1, "s6", "b", 10, 100, 0)
    )
    (root / "20170330_2_play.log").write_text(_line(103, "ar", 7, 0, "s7", "c", 0, 180, 0))
    (root / "20170330_1_down.log").write_text(_line(101, "ar", 5, "s5", "a", 0))
    (root / "20170330_1_search.log").write_text(
        _line(102, "ip", "2017-03-30 23:00:00", "%E9%83%AD") + _line("x1", "ar", "2017-03-30 01:00:00", "q")
    )
    (root / "20170331_1_play.log").write_text(_line(101, "ar", 5, 0, "s5", "a", 40, 200, 0))


def _run(
    root: Path, sink: ListSink, state: StateFile | None = None, start: Position | None = None, every: int = 2
):
    stats = ReadStats()
    days = group_by_day(select_logs(root, stats=stats))
    replay = Replay(sink, Topics(), Pacer(None), state=state, checkpoint_every=every)
    return replay.run(days, stats, start), stats


def test_every_line_becomes_one_message_and_each_day_ends_with_ticks(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink(partitions=2)
    counts, stats = _run(tmp_path, sink)
    assert stats.lines == 8 == counts.events + counts.dead_letters
    assert counts.events_by_type == {"play": 4, "download": 1, "search": 1}
    assert counts.dead_letters_by_reason == {"field_count": 1, "bad_uid": 1}
    # 3 event topics x 2 partitions, after each of the 2 days.
    assert counts.ticks == 12
    payloads = [json.loads(v) for _, _, v, _ in sink.records]
    tick_at = [i for i, p in enumerate(payloads) if p.get("type") == "tick" and p["date"] == "2017-03-31"]
    assert {(sink.records[i][0], sink.records[i][3]) for i in tick_at} == {
        (t, p) for t in Topics().events for p in (0, 1)
    }
    # The tick for 03-31 comes after every line of 03-30 and before any line of 03-31.
    day_of = [p.get("date") or p["source"][:8] for p in payloads]
    assert all(d in ("2017-03-30", "20170330") for d in day_of[: tick_at[0]])
    assert all(d not in ("2017-03-30", "20170330") for d in day_of[tick_at[-1] + 1 :])


def test_events_are_keyed_by_uid_and_ordered_by_event_time_within_a_day(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink()
    _run(tmp_path, sink)
    events = [json.loads(v) for t, _, v, _ in sink.records if t != "musicbox.dead-letters"]
    events = [e for e in events if e["type"] != "tick"]
    day1 = [e for e in events if e["date"] == "2017-03-30"]
    assert [e["event_time_ms"] for e in day1] == sorted(e["event_time_ms"] for e in day1)
    for topic, key, value, _ in sink.records:
        payload = json.loads(value)
        if payload.get("type") in ("play", "download", "search"):
            assert key == str(payload["uid"]).encode()
            assert topic == Topics().for_event_type(payload["type"])
    # the last day's tick closes it
    assert json.loads(sink.records[-1][2]) == {
        "type": "tick",
        "date": "2017-04-01",
        "event_time_ms": 1491004800000,
    }


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
    assert 8 + 1 < stats.lines == counts.events + counts.dead_letters < 8 + 3000
    damage = [json.loads(v) for t, _, v, _ in sink.records if b"damaged_file" in v]
    assert [(d["stage"], d["source"]) for d in damage] == [("read", f"20170330_3_play.log:{stats.lines - 8}")]
    assert "20170330_3_play.log.gz is damaged" in damage[0]["raw"]


def test_nothing_unacknowledged_is_counted(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    sink = ListSink(fail_after=3)
    replay = Replay(sink, Topics(), Pacer(None), checkpoint_every=2)
    stats = ReadStats()
    with pytest.raises(NotAcknowledgedError):
        replay.run(group_by_day(select_logs(tmp_path, stats=stats)), stats)
    # The first checkpoint (2 items) was acknowledged; the third item was sent but not acked.
    assert replay.counts.events + replay.counts.dead_letters == 2


def test_resume_after_a_failure_sends_every_line_exactly_once_more_at_most(tmp_path: Path) -> None:
    _write_logs(tmp_path)
    logs = select_logs(tmp_path)
    state = StateFile(tmp_path / "state.json", logs_fingerprint(logs))
    failing = ListSink(fail_after=5)
    with pytest.raises(NotAcknowledgedError):
        _run(tmp_path, failing, state=state)
    position = state.load()
    assert position is not None and position.day == "2017-03-30" and position.items == 4

    resumed = ListSink()
    counts, stats = _run(tmp_path, resumed, state=state, start=position)
    assert counts.skipped_on_resume == 4
    assert counts.events + counts.dead_letters + counts.skipped_on_resume == stats.lines
    # Everything acknowledged before plus everything sent after = every source line, once.
    first = [v for t, _, v, _ in failing.records[: failing.flushed] if b'"tick"' not in v]
    second = [v for t, _, v, _ in resumed.records if b'"tick"' not in v]
    assert len(first) + len(second) == 8
    assert not set(first) & set(second)
    assert state.load() == Position("2017-04-01", 0)


def test_a_state_file_of_other_logs_is_not_resumed(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.json", "aaaa")
    state.save(Position("2017-03-30", 10))
    assert StateFile(tmp_path / "state.json", "bbbb").load() is None
