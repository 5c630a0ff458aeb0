"""The real Music Box lines in tests/data/real-lines: what its README says a reader must make of them."""

from __future__ import annotations

import pytest

from musicbox.events import DAY_MS, DeadLetter, Event, day_start_ms
from musicbox.rawlogs import ReadStats, find_log_files, iter_file, iter_logs
from tests.fixtures.real_lines import REAL_LINES

DAY_MS_0 = day_start_ms("2017-03-30")


def _read(file_type: str) -> list[Event | DeadLetter]:
    assert REAL_LINES.is_dir(), f"{REAL_LINES} is missing: it is part of the repository"  # fail, never skip
    (log,) = [log for log in find_log_files(REAL_LINES) if log.file_type == file_type]
    return list(iter_file(log))


def _events(file_type: str) -> list[Event]:
    items = _read(file_type)
    events = [item for item in items if isinstance(item, Event)]
    assert events == items, "every line of this file is a valid event"
    return events


@pytest.fixture(scope="module")
def plays() -> list[Event | DeadLetter]:
    return _read("play")


def test_play_file_gives_four_events_and_the_uid_only_line_as_a_dead_letter(plays: list) -> None:
    assert [type(item).__name__ for item in plays] == ["Event", "Event", "Event", "DeadLetter", "Event"]
    dead = plays[3]
    assert isinstance(dead, DeadLetter)
    assert (dead.stage, dead.reason, dead.raw, dead.source) == (
        "read",
        "field_count",
        "264715",
        "20170330_1_play.log:4",
    )


def test_play_values_and_repairs(plays: list) -> None:
    first, second, third, _, fifth = plays
    # A clean line keeps every value, Chinese names intact; 22,013 s is under a day, so it stays.
    assert (first.uid, first.device, first.song_id, first.song_type) == (154422682, "ar", 20870993, 1)
    assert (first.song_name, first.singer) == ("用情", "狮子合唱团")
    assert (first.play_time_s, first.song_length_s, first.paid) == (22013, 332, 0)
    assert (second.song_name, second.singer, second.play_time_s, second.song_length_s) == (
        "表情不要悲伤",
        "伯贤&D.O.&张艺兴&朴灿烈",
        96,
        161,
    )
    # 275,249 s is over 86,400: null; song_length 0 is unknown: null; the event still counts.
    assert (third.uid, third.play_time_s, third.song_length_s, third.singer) == (
        154422626,
        None,
        None,
        "SpeXial",
    )
    # The IP-address play_time of the study's quote becomes null, the rest of the line stays.
    assert (fifth.uid, fifth.song_name, fifth.singer, fifth.play_time_s, fifth.song_length_s) == (
        168547035,
        "江南Style(纽约版)",
        "Psy",
        None,
        None,
    )
    assert [e.event_id for e in (first, second, third, fifth)] == [
        f"20170330_1_play.log:{n}" for n in (1, 2, 3, 5)
    ]
    assert {e.date for e in (first, second, third, fifth)} == {"2017-03-30"}


def test_play_times_spread_over_the_file_date_in_file_order(plays: list) -> None:
    times = [e.event_time_ms for e in plays if isinstance(e, Event)]
    assert times[0] == DAY_MS_0  # the first line starts at byte 0
    assert times == sorted(times) and len(set(times)) == 4
    assert all(DAY_MS_0 <= t < DAY_MS_0 + DAY_MS for t in times)


def test_downloads_keep_chinese_and_japanese_names() -> None:
    first, second = _events("down")
    assert (first.type, first.uid, first.song_id, first.song_name, first.singer, first.paid) == (
        "download",
        168019810,
        442554,
        "小酒窝",
        "林俊杰&蔡卓妍",
        0,
    )
    assert second.song_name == "なんでもないや-[没什么大不了](Movie Ver.)-(动画电影《你的名字。》片尾曲)"
    assert (second.singer, second.song_id) == ("RADWIMPS", 9327383)


def test_search_queries_decode_and_clock_time_lands_on_the_file_date() -> None:
    first, second = _events("search")
    assert (first.query, second.query) == ("郭德纲", "毯子舞")  # lower- and upper-case escapes both decode
    assert (first.device, second.device) == ("ip", "ar")
    # The time stamps say 2017-03-01, the file says 2017-03-30: the file's date wins, the clock stays.
    assert (first.event_time_ms, second.event_time_ms) == (DAY_MS_0 + 24_000, DAY_MS_0 + 53_000)


def test_whole_folder_counts_add_up() -> None:
    stats = ReadStats()
    items = list(iter_logs(REAL_LINES, stats=stats))
    assert stats.lines == len(items) == 9
    assert (stats.events, stats.dead_letters) == (8, 1)
    assert stats.events_by_type == {"play": 4, "download": 2, "search": 2}
    assert dict(stats.dead_letters_by_reason) == {"field_count": 1}
    assert dict(stats.repairs_by_field) == {"play_time_s": 2, "song_length_s": 2}
    assert [s.path.name for s in stats.skipped] == ["README.md"]  # reported, not an error
    # The day is merged in event-time order.
    assert [i.event_time_ms for i in items if isinstance(i, Event)] == sorted(
        i.event_time_ms for i in items if isinstance(i, Event)
    )
