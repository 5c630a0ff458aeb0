"""A batch of play and download messages -> columns (numpy), ticks and rejects. Pure: no Kafka.

`messages.parse_event` defines what a usable event is, one message at a time (11 us a message
here, the cost of the recommendation side's old reader). This module decodes a whole batch in
one loop with a fast path for the shape the replay writes: a JSON object of the expected type,
an int uid in range, a day seen before in the batch (each distinct day string is checked once),
an int song id or null and finite numbers or nulls for the times. Anything else goes through
`parse_event` itself, so both paths give one verdict (the unit tests hold them equal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import orjson

from musicbox.events import TICK, UID_MAX
from streaming.scoring.messages import EventRecord, Incoming, Reject, TickRecord, is_day, parse_event

NO_SONG = -1  # song id column for an unknown song (null, < 1 or beyond int64)
SONG_MAX = 2**63 - 1
PLAY, DOWNLOAD = "play", "download"
ARRAYS = ("topic", "partition", "offset", "uid", "day", "song", "download", "play_time_s", "song_length_s")


@dataclass(frozen=True)
class TickAt:
    topic: str
    partition: int
    offset: int
    date: str  # the day that begins


@dataclass(frozen=True)
class EventColumns:
    """The usable events of a batch, one row each, in batch order."""

    topic: np.ndarray  # int8: index into `topics`
    partition: np.ndarray  # int32
    offset: np.ndarray  # int64
    uid: np.ndarray  # int64
    day: np.ndarray  # int16: index into `days`
    song: np.ndarray  # int64, NO_SONG when unknown
    download: np.ndarray  # bool: a download, else a play
    play_time_s: np.ndarray  # float64, NaN when unknown
    song_length_s: np.ndarray  # float64, NaN when unknown
    topics: tuple[str, ...]
    days: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.uid)

    def where(self, keep: np.ndarray) -> EventColumns:
        """The events where `keep` is True."""
        return replace(self, **{f: getattr(self, f)[keep] for f in ARRAYS})


@dataclass(frozen=True)
class DecodedEvents:
    events: EventColumns
    ticks: list[TickAt]
    rejects: list[Reject]  # position in the batch and reason


def _number(value: object) -> float | None:
    """The fast path's float: an int or a finite float, else None (the slow path decides)."""
    kind = type(value)
    if kind is int or (kind is float and value == value and value not in (float("inf"), float("-inf"))):
        return float(value)  # type: ignore[arg-type]
    return None


def decode_events(batch: Sequence[Incoming], expected: Mapping[str, str]) -> DecodedEvents:
    """Columns of the usable events of `batch`; `expected` maps each topic to its event type."""
    topics = tuple(expected)
    topic_index = {t: i for i, t in enumerate(topics)}
    day_index: dict[str, int] = {}
    ticks: list[TickAt] = []
    rejects: list[Reject] = []
    cols: tuple[list, ...] = ([], [], [], [], [], [], [], [], [])
    t_, p_, o_, u_, d_, s_, dl_, pt_, ln_ = cols
    nan = float("nan")
    loads, decode_error = orjson.loads, orjson.JSONDecodeError

    def add(m: Incoming, record: EventRecord) -> None:
        code = day_index.setdefault(record.date, len(day_index))
        song = record.song_id if record.song_id is not None and 1 <= record.song_id <= SONG_MAX else NO_SONG
        t_.append(topic_index[m.topic])
        p_.append(m.partition)
        o_.append(m.offset)
        u_.append(record.uid)
        d_.append(code)
        s_.append(song)
        dl_.append(record.type == DOWNLOAD)
        pt_.append(nan if record.play_time_s is None else record.play_time_s)
        ln_.append(nan if record.song_length_s is None else record.song_length_s)

    def slow(position: int, m: Incoming, kind: str) -> None:
        parsed = parse_event(m.value, kind)
        if isinstance(parsed, str):
            rejects.append(Reject(position, parsed))
        elif isinstance(parsed, TickRecord):
            ticks.append(TickAt(m.topic, m.partition, m.offset, parsed.date))
        else:
            add(m, parsed)

    for position, m in enumerate(batch):
        kind = expected[m.topic]
        try:
            value = loads(m.value) if m.value is not None else None
        except decode_error:
            value = None
        if type(value) is not dict:
            slow(position, m, kind)
            continue
        if value.get("type") != kind:
            if value.get("type") == TICK and type(value.get("date")) is str and value["date"] in day_index:
                ticks.append(TickAt(m.topic, m.partition, m.offset, value["date"]))
            else:
                slow(position, m, kind)
            continue
        uid, day, song = value.get("uid"), value.get("date"), value.get("song_id")
        code = day_index.get(day) if type(day) is str else None
        if code is None and type(day) is str and is_day(day):
            code = day_index.setdefault(day, len(day_index))
        play_s, length_s = value.get("play_time_s"), value.get("song_length_s")
        play_f, length_f = _number(play_s), _number(length_s)
        if (
            type(uid) is not int
            or not 1 <= uid <= UID_MAX
            or code is None
            or (song is not None and type(song) is not int)
            or (play_s is not None and play_f is None)
            or (length_s is not None and length_f is None)
        ):
            slow(position, m, kind)
            continue
        t_.append(topic_index[m.topic])
        p_.append(m.partition)
        o_.append(m.offset)
        u_.append(uid)
        d_.append(code)
        s_.append(song if song is not None and 1 <= song <= SONG_MAX else NO_SONG)
        dl_.append(kind == DOWNLOAD)
        # A download's times are not used (`parse_event` keeps them only for plays).
        pt_.append(nan if play_f is None or kind == DOWNLOAD else play_f)
        ln_.append(nan if length_f is None or kind == DOWNLOAD else length_f)
    events = EventColumns(
        topic=np.array(t_, dtype=np.int8),
        partition=np.array(p_, dtype=np.int32),
        offset=np.array(o_, dtype=np.int64),
        uid=np.array(u_, dtype=np.int64),
        day=np.array(d_, dtype=np.int16),
        song=np.array(s_, dtype=np.int64),
        download=np.array(dl_, dtype=bool),
        play_time_s=np.array(pt_, dtype=np.float64),
        song_length_s=np.array(ln_, dtype=np.float64),
        topics=topics,
        days=tuple(day_index),
    )
    return DecodedEvents(events, ticks, rejects)
