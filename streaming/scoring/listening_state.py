"""The recommendation side's state: listening per partition and day, bounded by the ratings window.

Per input partition p (plays and downloads are co-partitioned: a user lives in one p):
- `days`: the `listening.Rows` of each day, in parts (one per batch, summed when read);
- `pending`: per day, the users active that day whose recommendation was not refreshed since;
- `marks`: per topic, the last offset folded: a batch read again (a retry, a restart before
  the commit) skips what it already counted;
- `through`: the last day closed (every pending day up to it has been refreshed).

A day close reads only the pending users of the days it closes and the rows of those users in
the window's days (`of_users`: a binary search per day), never every user's entry. After a
close, days older than the window of the closed day are evicted, and so are the late rows that
arrive for them later: the state holds at most the window's days (plus the open ones).

Changelog (partition p of `<app>-listening-changelog`), one record per batch and partition:
`b|<p>|<n>` = {m: marks after the batch, rows: its rows by day, active: its active users by
day}; `c|<p>` = {through: day} after each close; `ticks|<p>` and `done|<p>` from the tick
ledger, which shares the changelog. Records are replayed in order on restore: a `c|` record
clears the activity of the records before it. A `b|` record whose days all left the window is
deleted at a close, except the partition's newest, which holds its marks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson

from streaming.scoring.changelog import Changelog, ChangelogStore
from streaming.scoring.event_columns import EventColumns
from streaming.scoring.listening import DayFold, Rows, UserRatings, user_ratings
from streaming.scoring.sink import Sink

COMPACT_PARTS = 32  # parts of an open day summed into one beyond this (a day never closed)
TICK_KEYS = ("ticks|", "done|")


def first_day(as_of: str, window_d: int) -> str:
    """The first day of the window of `window_d` days ending on `as_of`."""
    return (date.fromisoformat(as_of) - timedelta(days=window_d - 1)).isoformat()


@dataclass
class PartitionListening:
    days: dict[str, list[Rows]] = field(default_factory=dict)
    pending: dict[str, list[np.ndarray]] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    through: str | None = None
    records: dict[str, str] = field(default_factory=dict)  # changelog key -> latest day it holds
    seq: int = 0  # number of the next record

    def add_rows(self, day: str, rows: Rows) -> None:
        parts = self.days.setdefault(day, [])
        parts.append(rows)
        if len(parts) >= COMPACT_PARTS:
            parts[:] = [Rows.concat(parts)]

    def rows(self, day: str) -> Rows:
        parts = self.days.get(day)
        if not parts:
            return Rows.empty()
        if len(parts) > 1:
            parts[:] = [Rows.concat(parts)]
        return parts[0]

    def add_active(self, day: str, uids: np.ndarray) -> None:
        self.pending.setdefault(day, []).append(uids)

    def clear_through(self, day: str) -> None:
        for d in [d for d in self.pending if d <= day]:
            del self.pending[d]


def _encode_fold(days: dict[str, DayFold]) -> dict[str, Any]:
    names = sorted(days)
    rows = [days[d].rows for d in names]
    active = [days[d].active for d in names]
    return {
        "days": names,
        "rows": {
            "d": np.repeat(np.arange(len(names), dtype=np.int32), [len(r) for r in rows]),
            "u": np.concatenate([r.uid for r in rows]),
            "s": np.concatenate([r.song for r in rows]),
            "sh": np.concatenate([r.share for r in rows]),
            "dl": np.concatenate([r.downloads for r in rows]),
        },
        "active": {
            "d": np.repeat(np.arange(len(names), dtype=np.int32), [len(a) for a in active]),
            "u": np.concatenate(active),
        },
    }


def _decode_fold(value: dict[str, Any]) -> dict[str, DayFold]:
    names = value["days"]
    rows, active = value["rows"], value["active"]
    r_day = np.asarray(rows["d"], dtype=np.int64)
    a_day = np.asarray(active["d"], dtype=np.int64)
    u, s = np.asarray(rows["u"], dtype=np.int64), np.asarray(rows["s"], dtype=np.int64)
    sh, dl = np.asarray(rows["sh"], dtype=np.float64), np.asarray(rows["dl"], dtype=np.float64)
    au = np.asarray(active["u"], dtype=np.int64)
    out = {}
    for i, name in enumerate(names):
        r, a = r_day == i, a_day == i
        out[name] = DayFold(Rows(u[r], s[r], sh[r], dl[r]), au[a])
    return out


class ListeningState:
    """The listening of the users of this worker's partitions (a `batch_reader.RestorableState`)."""

    def __init__(self, topic: str, sink: Sink, window_d: int) -> None:
        self.changelog = Changelog(topic, sink)
        self.topic = topic
        self.window_d = window_d
        self.ticks = ChangelogStore(topic, sink, self.changelog)  # the tick ledger's store
        self.partitions: dict[int, PartitionListening] = {}

    def _of(self, partition: int) -> PartitionListening:
        return self.partitions.setdefault(partition, PartitionListening())

    # Folding.

    def unseen(self, events: EventColumns) -> np.ndarray:
        """Which events are not folded yet (offset beyond their topic-partition's mark)."""
        keep = np.ones(len(events), dtype=bool)
        for p, state in self.partitions.items():
            for topic, mark in state.marks.items():
                if topic in events.topics:
                    at = (events.partition == p) & (events.topic == events.topics.index(topic))
                    keep &= ~(at & (events.offset <= mark))
        return keep

    def add(self, partition: int, days: dict[str, DayFold], marks: dict[str, int]) -> None:
        """Fold a batch's days of `partition` in, with the last offsets it read per topic."""
        state = self._of(partition)
        window_start = first_day(state.through, self.window_d) if state.through else None
        # Rows of a day that left the window can never count again; its activity still does.
        kept = {
            d: f if window_start is None or d >= window_start else DayFold(Rows.empty(), f.active)
            for d, f in days.items()
        }
        for d, f in kept.items():
            if len(f.rows):
                state.add_rows(d, f.rows)
            state.add_active(d, f.active)
        state.marks = {**state.marks, **{t: max(o, state.marks.get(t, -1)) for t, o in marks.items()}}
        key = f"b|{partition}|{state.seq}"
        state.seq += 1
        state.records[key] = max(kept)
        self.changelog.put(partition, key, {"m": state.marks, **_encode_fold(kept)})

    # Closing.

    def pending_days(self, partition: int, up_to: str) -> list[str]:
        """The days up to `up_to` with users whose recommendation is not refreshed, in order."""
        state = self.partitions.get(partition)
        return sorted(d for d in state.pending if d <= up_to) if state else []

    def due(self, partition: int, day: str) -> np.ndarray:
        """Users of `partition` active on a pending day up to `day`, sorted, unique."""
        state = self.partitions.get(partition)
        if state is None:
            return np.zeros(0, dtype=np.int64)
        parts = [u for d, uids in state.pending.items() if d <= day for u in uids]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def window(self, partition: int, as_of: str) -> list[Rows]:
        """The rows of the days of the window ending on `as_of` (days after it are not counted),
        each day's parts summed: `user_ratings` reads them, on any thread."""
        state = self._of(partition)
        start = first_day(as_of, self.window_d)
        return [state.rows(d) for d in sorted(state.days) if start <= d <= as_of]

    def ratings(self, partition: int, users: np.ndarray, as_of: str) -> UserRatings:
        """The ratings of `users` over the window ending on `as_of`."""
        return user_ratings(users, self.window(partition, as_of))

    def refreshed(self, partition: int, day: str) -> None:
        """The users due up to `day` have their recommendation: nothing is pending up to it."""
        self._of(partition).clear_through(day)

    def closed(self, partition: int, day: str) -> int:
        """`day` is closed on `partition` and its users refreshed: record it, evict the days that
        left the window and the changelog records holding only those; returns the records deleted."""
        state = self._of(partition)
        state.clear_through(day)
        state.through = max(day, state.through or day)
        self.changelog.put(partition, f"c|{partition}", {"through": state.through})
        return self._evict(partition, state, delete=True)

    def _evict(self, partition: int, state: PartitionListening, delete: bool) -> int:
        """Drop the days that left the window; with `delete`, also the changelog records that
        hold only such days (after a restore they wait for the next close: its deletes are
        flushed with its other writes)."""
        if state.through is None:
            return 0
        start = first_day(state.through, self.window_d)
        for d in [d for d in state.days if d < start]:
            del state.days[d]
        if not delete:
            return 0
        newest = f"b|{partition}|{state.seq - 1}"
        old = [k for k, latest in state.records.items() if latest < start and k != newest]
        for key in old:
            del state.records[key]
            self.changelog.delete(partition, key)
        return len(old)

    # Restoring (batch_reader.RestorableState).

    def load(self, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
        touched = set()
        for partition, raw_key, raw_value in records:
            if raw_key is None:
                continue
            key = orjson.loads(raw_key)
            if key.startswith(TICK_KEYS):
                self.ticks.load_one(partition, key, raw_value)
                continue
            state = self._of(partition)
            touched.add(partition)
            if key.startswith("b|"):
                if raw_value is None:
                    state.records.pop(key, None)  # its days left the window: evicted below
                    continue
                value = orjson.loads(raw_value)
                days = _decode_fold(value)
                for d, f in days.items():
                    if len(f.rows):
                        state.add_rows(d, f.rows)
                    state.add_active(d, f.active)
                for topic, mark in value["m"].items():
                    state.marks[topic] = max(mark, state.marks.get(topic, -1))
                state.records[key] = max(days)
                state.seq = max(state.seq, int(key.rsplit("|", 1)[1]) + 1)
            elif key.startswith("c|") and raw_value is not None:
                state.through = orjson.loads(raw_value)["through"]
                state.clear_through(state.through)
        for partition in touched:
            self._evict(partition, self.partitions[partition], delete=False)
        return len(self)

    def drop(self, partitions: Iterable[int]) -> int:
        gone = 0
        for p in partitions:
            state = self.partitions.pop(p, None)
            gone += len(state.records) if state else 0
        return gone + self.ticks.drop(partitions)

    def __len__(self) -> int:
        return sum(len(s.records) for s in self.partitions.values()) + len(self.ticks)

    def rows_held(self) -> int:
        """Listening rows in memory, every partition and day (the state's size)."""
        return sum(len(r) for s in self.partitions.values() for parts in s.days.values() for r in parts)

    async def flush(self) -> None:
        await self.changelog.flush()


def marks_of(events: EventColumns) -> dict[int, dict[str, int]]:
    """partition -> topic -> the last offset among `events`."""
    out: dict[int, dict[str, int]] = {}
    for pi in np.unique(events.partition).tolist():
        mine = events.partition == pi
        for ti in np.unique(events.topic[mine]).tolist():
            out.setdefault(int(pi), {})[events.topics[ti]] = int(
                events.offset[mine & (events.topic == ti)].max()
            )
    return out
