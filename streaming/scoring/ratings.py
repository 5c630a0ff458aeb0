"""Each user's recent implicit ratings, kept per day in two partitioned stores (Faust tables).

The rating of a song is the study's, as in `models.ratings`:
`0.4 * sum over plays of min(play_time_s / L, 1) + 0.6 * downloads` over the last
`window_d` days. One difference, on purpose: L is the play's own `song_length_s` when it is
sane ([1, 4800] s), else the logs' median length, where the batch trainer uses the song's
mean sane length over the window. That mean needs every user's plays of the song (all
partitions) and would change a user's stored shares whenever anyone plays the song; the
play's own length is what the mean averages, and equals it whenever a song's length is
reported consistently. Skips, unknown play times and unknown songs (null or < 1) add nothing.

State per user (keys are str(uid); song ids and days are JSON object keys, so strings):
- `open`: {"p": partition, "d": {day: {song: [play_share_sum, downloads]}}, "o": {source: offset}}
  for days not closed on the user's partition yet, and the last offset folded per input topic;
  written once per user per batch, small;
- `recent`: {day: {song: [...]}} for the closed days of the window; written at a day close.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from models.ratings import DOWNLOAD_WEIGHT, FALLBACK_LENGTH_S, PLAY_WEIGHT, SANE_LENGTH_S
from streaming.scoring.messages import EventRecord
from streaming.scoring.state import PartitionedStore

UserDays = dict[str, dict[str, list[float]]]  # day -> song -> [play_share_sum, downloads]


def play_share(play_time_s: float | None, song_length_s: float | None) -> float:
    """min(play_time_s / L, 1) of one play; 0 for a skip or an unknown play time."""
    if play_time_s is None or play_time_s <= 0:
        return 0.0
    lo, hi = SANE_LENGTH_S
    length_s = song_length_s if song_length_s is not None and lo <= song_length_s <= hi else FALLBACK_LENGTH_S
    return min(play_time_s / length_s, 1.0)


def fold(events: Iterable[EventRecord]) -> dict[int, UserDays]:
    """A batch of plays and downloads -> per user, day and song: [play_share_sum, downloads].
    Every event marks its user's day active, even one that rates nothing (a skip, a song id the
    log lost): that user's recommendations are still refreshed when the day closes."""
    out: dict[int, UserDays] = defaultdict(lambda: defaultdict(dict))
    for e in events:
        songs = out[e.uid][e.date]
        if e.song_id is None or e.song_id < 1:
            continue
        share = play_share(e.play_time_s, e.song_length_s) if e.type == "play" else 0.0
        downloads = 1.0 if e.type == "download" else 0.0
        if share == 0.0 and downloads == 0.0:
            continue
        counts = songs.setdefault(str(e.song_id), [0.0, 0.0])
        counts[0] += share
        counts[1] += downloads
    return {uid: {day: dict(songs) for day, songs in days.items()} for uid, days in out.items()}


def merge(into: UserDays, more: UserDays) -> UserDays:
    """Sum `more` into a copy of `into`."""
    out = {day: {song: list(c) for song, c in songs.items()} for day, songs in into.items()}
    for day, songs in more.items():
        target = out.setdefault(day, {})
        for song, (share, downloads) in songs.items():
            c = target.setdefault(song, [0.0, 0.0])
            c[0] = round(c[0] + share, 6)
            c[1] += downloads
    return out


def first_day(as_of: str, window_d: int) -> str:
    return (date.fromisoformat(as_of) - timedelta(days=window_d - 1)).isoformat()


def ratings_of(days: UserDays, as_of: str, window_d: int) -> dict[int, float]:
    """song_id -> rating (> 0) over the window of `window_d` days ending on `as_of`."""
    start = first_day(as_of, window_d)
    share: dict[int, float] = defaultdict(float)
    downloads: dict[int, float] = defaultdict(float)
    for day, songs in days.items():
        if start <= day <= as_of:
            for song, (s, d) in songs.items():
                share[int(song)] += s
                downloads[int(song)] += d
    out = {
        song: PLAY_WEIGHT * share[song] + DOWNLOAD_WEIGHT * downloads[song]
        for song in share.keys() | downloads.keys()
    }
    return {song: r for song, r in sorted(out.items()) if r > 0}


class UserRatings:
    """The open and recent ratings of the users of the worker's partitions."""

    def __init__(self, open_days: PartitionedStore, recent: PartitionedStore, window_d: int) -> None:
        self.open_days = open_days
        self.recent = recent
        self.window_d = window_d

    def add(self, partition: int, source: str, events: Sequence[tuple[int, EventRecord]]) -> int:
        """Fold (offset, event) pairs read from one partition of `source` into the users' open
        days; returns the users written. Each user's open value carries the last offset folded
        per source, written with the counts in one change: events at or below it are skipped,
        so a batch read again (a retry, a restart before the commit) counts once."""
        by_user: dict[int, list[tuple[int, EventRecord]]] = defaultdict(list)
        for offset, event in events:
            by_user[event.uid].append((offset, event))
        written = 0
        for uid, items in by_user.items():
            key = str(uid)
            current: dict[str, Any] = self.open_days.get(key) or {"p": partition, "d": {}, "o": {}}
            seen = current["o"].get(source, -1)
            days = fold(e for offset, e in items if offset > seen).get(uid)
            if days:
                marks = {**current["o"], source: max(offset for offset, _ in items)}
                self.open_days.put(
                    partition, key, {"p": partition, "d": merge(current["d"], days), "o": marks}
                )
                written += 1
        return written

    def open_days_until(self, partition: int, closed_day: str) -> list[str]:
        """The days with open activity of users of `partition`, on or before `closed_day`, in order."""
        return sorted(
            {
                day
                for _, value in self.open_days.items()
                if value["p"] == partition
                for day in value["d"]
                if day <= closed_day
            }
        )

    def due(self, partition: int, closed_day: str) -> list[int]:
        """Users of `partition` with open activity on or before `closed_day`, by uid."""
        return sorted(
            int(key)
            for key, value in self.open_days.items()
            if value["p"] == partition and value["d"] and min(value["d"]) <= closed_day
        )

    def _split(self, uid: int, closed_day: str) -> tuple[UserDays, UserDays, UserDays]:
        """(open days up to closed_day, open days after it, recent days merged with the first)."""
        key = str(uid)
        current = (self.open_days.get(key) or {"d": {}})["d"]
        closing = {d: songs for d, songs in current.items() if d <= closed_day}
        still_open = {d: songs for d, songs in current.items() if d > closed_day}
        start = first_day(closed_day, self.window_d)
        kept = {d: s for d, s in merge(self.recent.get(key) or {}, closing).items() if d >= start}
        return closing, still_open, kept

    def ratings(self, uid: int, closed_day: str) -> dict[int, float]:
        """The user's ratings (song_id -> rating) over the window ending on `closed_day`,
        counting its open days up to then; changes nothing (see `close`)."""
        return ratings_of(self._split(uid, closed_day)[2], closed_day, self.window_d)

    def close(self, partition: int, uid: int, closed_day: str) -> None:
        """Move the user's open days up to `closed_day` into `recent`, dropping days that left
        the window. Done after its recommendation is published: a crash in between repeats it."""
        key = str(uid)
        closing, still_open, kept = self._split(uid, closed_day)
        if not closing:
            return
        # The entry stays, days or not: its offsets keep a re-read batch from counting twice.
        marks = (self.open_days.get(key) or {}).get("o", {})
        self.open_days.put(partition, key, {"p": partition, "d": still_open, "o": marks})
        if kept:
            self.recent.put(partition, key, kept)
        elif self.recent.get(key) is not None:
            self.recent.delete(partition, key)
