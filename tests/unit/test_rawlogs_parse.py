"""parse_line on real-looking lines, one row per dirt class of SEED_FACTS 1, plus properties."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musicbox.events import EVENT_TYPES as TYPES
from musicbox.events import UID_MAX, VALUE_FIELDS, DeadLetter, Event, day_start_ms
from musicbox.rawlogs.parse import FIELD_COUNTS, LineContext, clock_seconds, parse_line

DAY = "2017-03-30"
DAY0 = day_start_ms(DAY)
OFFSET_MS = 12_345  # the reader's byte-offset time of the line, used by play and download
LOG_NAMES = {
    "play": "20170330_2_play.log",
    "download": "20170330_2_down.log",
    "search": "20170330_2_search.log",
}
REPAIRABLE = {"device", "song_id", "song_type", "play_time_s", "song_length_s", "paid", "time_stamp", "query"}


def ctx(event_type: str, line_no: int = 7) -> LineContext:
    return LineContext(LOG_NAMES[event_type], DAY, event_type, line_no, DAY0 + OFFSET_MS, DAY0)


def line(*fields: str, sep: str = " \t", end: str = "\n") -> bytes:
    """A line as the real logs write it: every field followed by a space, then a TAB."""
    return (sep.join(fields) + end).encode()


def play(**changes: str) -> bytes:
    fields = {
        "uid": "168547035",
        "device": "ar",
        "song_id": "2835290",
        "song_type": "2",
        "song_name": "江南Style(纽约版)",
        "singer": "Psy",
        "play_time": "159",
        "song_length": "232",
        "paid": "0",
    }
    fields.update(changes)
    return line(*fields.values())


def down(**changes: str) -> bytes:
    fields = {
        "uid": "168019810",
        "device": "ar",
        "song_id": "442554",
        "name": "小酒窝",
        "singer": "林俊杰",
        "paid": "0",
    }
    fields.update(changes)
    return line(*fields.values())


def search(**changes: str) -> bytes:
    fields = {
        "uid": "154436633",
        "device": "ip",
        "ts": "2017-03-01 00:00:24",
        "query": "%e9%83%ad%e5%be%b7%e7%ba%b2",
    }
    fields.update(changes)
    return line(*fields.values())


# (event type, raw line, dead-letter reason or None, expected event fields, expected repairs)
REJECTED: list[tuple[str, bytes, str]] = [
    # A TAB inside the song name and the singer: 11 fields, the values cannot be placed.
    ("play", play(song_name="Gangnam\tStyle", singer="P\tsy"), "field_count"),
    # A TAB inside a download's name: 7 fields.
    ("download", down(name="小\t酒窝"), "field_count"),
    # A line holding only a uid (quoted in the real logs).
    ("play", b"264715\n", "field_count"),
    # Shifted: the device slot is missing, 8 fields.
    ("play", line("168547035", "2835290", "2", "x", "Psy", "159", "232", "0"), "field_count"),
    # Shifted right: a leading TAB pushes every field over, 10 fields.
    ("play", b" \t" + play(), "field_count"),
    # Shifted with the right count: the device sits in the uid slot.
    ("search", line("ar", "154436633", "2017-03-01 00:00:24", "abc"), "bad_uid"),
    # uid 0 is in the logs but names nobody.
    ("play", play(uid="0"), "bad_uid"),
    # Negative, decimal, exponent, over 2^63-1, full-width digits: none is a uid.
    ("play", play(uid="-5"), "bad_uid"),
    ("play", play(uid="168547035.0"), "bad_uid"),
    ("download", down(uid="1.6e8"), "bad_uid"),
    ("download", down(uid=str(UID_MAX + 1)), "bad_uid"),
    ("search", search(uid="１６８５４７０３５"), "bad_uid"),
    # A blank uid in a line of the right shape.
    ("search", search(uid=""), "bad_uid"),
    # Bytes that are not UTF-8 (a GBK-encoded name): the line cannot be read at all.
    ("play", play(song_name="x").replace(b"x", "江南".encode("gbk")), "undecodable"),
    # Empty and whitespace-only lines are counted, never silently dropped.
    ("play", b"\n", "empty"),
    ("download", b"  \r\n", "empty"),
    ("search", b" \t \t \t \n", "empty"),
]


@pytest.mark.parametrize(("event_type", "raw", "reason"), REJECTED)
def test_rejected_lines_become_dead_letters(event_type: str, raw: bytes, reason: str) -> None:
    item, repairs = parse_line(raw, ctx(event_type))
    assert isinstance(item, DeadLetter)
    assert (item.stage, item.reason, item.source) == ("read", reason, f"{LOG_NAMES[event_type]}:7")
    assert repairs == ()
    assert not item.raw.endswith(("\n", "\r"))  # the line's text, without its line break


def test_undecodable_line_keeps_its_bytes_visible() -> None:
    item, _ = parse_line(b"168 \tar \t\xff\xfe \n", ctx("download"))
    assert isinstance(item, DeadLetter)
    assert item.raw == "168 \tar \t\\xff\\xfe "


ACCEPTED: list[tuple[str, bytes, dict[str, Any], set[str]]] = [
    # A clean play: every value as written, the time from the reader's offset.
    (
        "play",
        play(),
        {
            "uid": 168547035,
            "song_id": 2835290,
            "song_type": 2,
            "play_time_s": 159,
            "song_length_s": 232,
            "paid": 0,
            "singer": "Psy",
            "event_time_ms": DAY0 + OFFSET_MS,
        },
        set(),
    ),
    # Windows line ends: the \r is not part of the last field.
    ("play", play().replace(b"\n", b"\r\n"), {"paid": 0, "song_length_s": 232}, set()),
    # Fields with no trailing space (TAB only) read the same.
    (
        "play",
        line("168547035", "ar", "1", "", "a", "b", "5", "6", "0", sep="\t"),
        {"song_id": 1, "play_time_s": 5},
        set(),
    ),
    # The last line of a file may lack its newline.
    ("download", down().rstrip(b"\n"), {"paid": 0, "song_id": 442554}, set()),
    # song_id 0 means unknown: null, counted.
    ("play", play(song_id="0"), {"song_id": None}, {"song_id"}),
    # Sentinel song ids: -1, other negatives, beyond 2^63-1 (up to ~2^64), not a number.
    ("play", play(song_id="-1"), {"song_id": None}, {"song_id"}),
    ("play", play(song_id="-2147483648"), {"song_id": None}, {"song_id"}),
    ("play", play(song_id="18446744073709551615"), {"song_id": None}, {"song_id"}),
    ("download", down(song_id="abc"), {"song_id": None}, {"song_id"}),
    # The largest valid song id stays (a 19-digit id, past the inline fast path).
    ("play", play(song_id=str(UID_MAX)), {"song_id": UID_MAX}, set()),
    # Blank song_type is the format's "no type": null, not counted as a repair.
    ("play", play(song_type=""), {"song_type": None}, set()),
    # A song_type outside 0..3 is dirt: null, counted.
    ("play", play(song_type="7"), {"song_type": None}, {"song_type"}),
    # The INT_MIN sentinel in play_time.
    ("play", play(play_time="-2147483648"), {"play_time_s": None}, {"play_time_s"}),
    # Absurd durations (1e8 s written out, and literally as an exponent).
    ("play", play(play_time="100000000"), {"play_time_s": None}, {"play_time_s"}),
    ("play", play(play_time="1e12"), {"play_time_s": None}, {"play_time_s"}),
    # The IP address the study quotes in play_time.
    ("play", play(play_time="71>=(223.104.12.211)TM"), {"play_time_s": None}, {"play_time_s"}),
    # Decimals are truncated to whole seconds; 0 s is a real skip and stays 0.
    ("play", play(play_time="12.9"), {"play_time_s": 12}, set()),
    ("play", play(play_time="0"), {"play_time_s": 0}, set()),
    # Bounds: a whole day of play is the most there can be.
    ("play", play(play_time="86400"), {"play_time_s": 86400}, set()),
    ("play", play(play_time="86401"), {"play_time_s": None}, {"play_time_s"}),
    # song_length 0 (unknown), -1 and huge garbage become null; 4,800 s is the longest kept.
    ("play", play(song_length="0"), {"song_length_s": None}, {"song_length_s"}),
    ("play", play(song_length="-1"), {"song_length_s": None}, {"song_length_s"}),
    ("play", play(song_length="99999999"), {"song_length_s": None}, {"song_length_s"}),
    ("play", play(song_length="4800"), {"song_length_s": 4800}, set()),
    ("play", play(song_length="232.7"), {"song_length_s": 232}, set()),
    # Two faults in one line: both repaired, both counted, the event stays.
    (
        "play",
        play(song_id="0", song_length="0"),
        {"song_id": None, "song_length_s": None},
        {"song_id", "song_length_s"},
    ),
    # The rare Mac client is a device like any other.
    ("play", play(device="mc"), {"device": "mc"}, set()),
    # A blank device is unknown: null, counted.
    ("search", search(device=""), {"device": None}, {"device"}),
    # paid_flag other than 0/1 is unknown.
    ("download", down(paid="2"), {"paid": None}, {"paid"}),
    ("play", play(paid=""), {"paid": None}, {"paid"}),
    # Names are kept as written, even empty.
    ("download", down(name="", singer=""), {"song_name": "", "singer": ""}, set()),
    # Search: the clock time is placed on the file's date.
    (
        "search",
        search(ts="2017-03-01 23:59:59"),
        {"event_time_ms": DAY0 + 86_399_000, "query": "郭德纲"},
        set(),
    ),
    # An unparsable time stamp leaves the search at the start of its day, counted.
    ("search", search(ts="2017-03-01 24:00:00"), {"event_time_ms": DAY0}, {"time_stamp"}),
    ("search", search(ts="yesterday"), {"event_time_ms": DAY0}, {"time_stamp"}),
    ("search", search(ts=""), {"event_time_ms": DAY0}, {"time_stamp"}),
    # Percent-encoding that is not UTF-8 (a cut multi-byte character): the raw text is kept, counted.
    ("search", search(query="%e9%83"), {"query": "%e9%83"}, {"query"}),
    # An escape that is not one stays as written, like urllib's unquote: no repair.
    ("search", search(query="100%zz"), {"query": "100%zz"}, set()),
    # '+' is not a space here (unquote, not unquote_plus).
    ("search", search(query="a+b%20c"), {"query": "a+b c"}, set()),
    # A query typed in Chinese, not encoded, mixed with an escape.
    ("search", search(query="周杰伦%20稻香"), {"query": "周杰伦 稻香"}, set()),
    # A blank query is an (empty) search.
    ("search", search(query=""), {"query": ""}, set()),
]


@pytest.mark.parametrize(("event_type", "raw", "expected", "repairs"), ACCEPTED)
def test_accepted_lines_and_their_repairs(
    event_type: str, raw: bytes, expected: dict[str, Any], repairs: set[str]
) -> None:
    item, repaired = parse_line(raw, ctx(event_type))
    assert isinstance(item, Event), item
    assert {name: getattr(item, name) for name in expected} == expected
    assert sorted(repaired) == sorted(repairs)
    assert (item.type, item.event_id, item.date) == (event_type, f"{LOG_NAMES[event_type]}:7", DAY)


def test_event_carries_only_its_types_fields_on_the_wire() -> None:
    item, _ = parse_line(down(), ctx("download"))
    assert isinstance(item, Event)
    value = item.to_value()
    assert value["type"] == "download" and "play_time_s" not in value and "query" not in value


@pytest.mark.parametrize("event_type", TYPES)
def test_each_types_value_holds_exactly_its_contract_fields_in_order(event_type: str) -> None:
    # The hot-path encoders spell the fields out: they must stay the contract's, in its order.
    event = Event(event_type, "f.log:1", 7, DAY, 0, "ar")
    assert tuple(event.to_value()) == VALUE_FIELDS[event_type]


@pytest.mark.parametrize(
    ("time_stamp", "seconds"),
    [
        ("2017-03-01 00:00:00", 0),  # midnight
        ("2017-03-01 13:05:09", 13 * 3600 + 5 * 60 + 9),  # any clock time
        ("2017-03-01 12:60:00", None),  # minute 60 is not a time
        ("2017-03-01T12:00:00", None),  # ISO 'T' is not the log format
        ("2017-03-01 1:00:00", None),  # unpadded hour
        ("2017-03-01 ١٢:00:00", None),  # non-ASCII digits
    ],
)
def test_clock_seconds(time_stamp: str, seconds: int | None) -> None:
    assert clock_seconds(time_stamp) == seconds


def _check_one_item(raw: bytes, event_type: str) -> None:
    item, repairs = parse_line(raw, ctx(event_type))
    assert isinstance(item, Event | DeadLetter)
    if isinstance(item, DeadLetter):
        assert repairs == ()
        assert item.reason in {"empty", "undecodable", "field_count", "bad_uid"}
        return
    assert set(repairs) <= REPAIRABLE and len(set(repairs)) == len(repairs)
    assert item.type == event_type and 1 <= item.uid <= UID_MAX
    assert DAY0 <= item.event_time_ms < DAY0 + 86_400_000
    assert item.song_id is None or 1 <= item.song_id <= UID_MAX
    assert item.play_time_s is None or 0 <= item.play_time_s <= 86_400
    assert item.song_length_s is None or 1 <= item.song_length_s <= 4_800
    assert item.paid in (None, 0, 1) if event_type != "search" else item.paid is None
    item.to_json()  # whatever was read can be sent


EVENT_TYPES = st.sampled_from(sorted(FIELD_COUNTS))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200), event_type=EVENT_TYPES)
def test_random_bytes_give_exactly_one_event_or_dead_letter(raw: bytes, event_type: str) -> None:
    _check_one_item(raw, event_type)


FIELD = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**65), max_value=2**65).map(str),
    st.sampled_from(
        ["", " ", "0", "-1", "1e8", "12.5", ".5", "5.", "2017-03-01 00:00:24", "%e9%83", "%zz", "\r"]
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.lists(FIELD, min_size=1, max_size=11),
    event_type=EVENT_TYPES,
    sep=st.sampled_from(["\t", " \t"]),
)
def test_random_tab_joined_fields_give_exactly_one_event_or_dead_letter(
    fields: list[str], event_type: str, sep: str
) -> None:
    _check_one_item(sep.join(fields).encode("utf-8", "surrogatepass"), event_type)


QUERY = st.lists(
    st.one_of(st.sampled_from(["%e9", "%83", "%AD", "%20", "%zz", "%", "+", "周", "a"]), st.text(max_size=3)),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(query=QUERY)
def test_query_decoding_is_urllib_unquote_strict(query: str) -> None:
    # The ASCII fast path must give what urllib.parse.unquote(q, errors="strict") gives.
    query = query.replace("\t", " ").strip()
    item, repairs = parse_line(search(query=query), ctx("search"))
    assert isinstance(item, Event)
    repaired: tuple[str, ...] = ()
    try:
        expected = unquote(query, errors="strict")
    except UnicodeDecodeError:
        expected, repaired = query, ("query",)
    assert (item.query, repairs) == (expected, repaired)
