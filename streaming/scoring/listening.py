"""Listening per user, song and day, folded a batch at a time with numpy; ratings from it. Pure.

The rating of a song is the study's, as in `models.ratings`:
`0.4 * sum over plays of min(play_time_s / L, 1) + 0.6 * downloads` over the last
`window_d` days. One difference, on purpose: L is the play's own `song_length_s` when it is
sane ([1, 4800] s), else the logs' median length, where the batch trainer uses the song's
mean sane length over the window. That mean needs every user's plays of the song (all
partitions) and would change a user's stored shares whenever anyone plays the song; the
play's own length is what the mean averages, and equals it whenever a song's length is
reported consistently. Skips, unknown play times and unknown songs (null or < 1) add nothing,
but every event makes its user's day active: that user's recommendations are refreshed.

`Rows` holds, for one partition and day, one row per (uid, song): the sum of play shares and
the downloads, sorted by uid then song. A batch folds into one `Rows` per (partition, day)
(`fold`); a day's parts are summed when it is read (`Rows.concat`), and the rows of a
window's days for the users being refreshed give their ratings (`user_ratings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.ratings import DOWNLOAD_WEIGHT, FALLBACK_LENGTH_S, PLAY_WEIGHT, SANE_LENGTH_S
from streaming.scoring.event_columns import EventColumns


def play_shares(play_time_s: np.ndarray, song_length_s: np.ndarray) -> np.ndarray:
    """min(play_time_s / L, 1) of each play; 0 for a skip or an unknown (NaN) play time."""
    lo, hi = SANE_LENGTH_S
    with np.errstate(invalid="ignore"):
        sane = (song_length_s >= lo) & (song_length_s <= hi)
        length_s = np.where(sane, song_length_s, FALLBACK_LENGTH_S)
        played = play_time_s > 0
    return np.where(played, np.minimum(np.where(played, play_time_s, 0.0) / length_s, 1.0), 0.0)


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal key tuples in arrays sorted by those keys."""
    if not len(keys[0]):
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


@dataclass(frozen=True)
class Rows:
    """One row per (uid, song): play share sum and downloads; sorted by uid then song."""

    uid: np.ndarray  # int64
    song: np.ndarray  # int64
    share: np.ndarray  # float64
    downloads: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.uid)

    @classmethod
    def empty(cls) -> Rows:
        i, f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return cls(i, i, f, f)

    @classmethod
    def summed(cls, uid: np.ndarray, song: np.ndarray, share: np.ndarray, downloads: np.ndarray) -> Rows:
        """Rows of any (uid, song) pairs, duplicates summed."""
        order = np.lexsort((song, uid))
        uid, song, share, downloads = uid[order], song[order], share[order], downloads[order]
        starts = _runs(uid, song)
        if len(starts) == len(uid):
            return cls(uid, song, share, downloads)
        return cls(
            uid[starts], song[starts], np.add.reduceat(share, starts), np.add.reduceat(downloads, starts)
        )

    @classmethod
    def concat(cls, parts: Sequence[Rows]) -> Rows:
        """The sum of several parts (of one day, or of a window's days)."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls.summed(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._fields()))

    @staticmethod
    def _fields() -> tuple[str, str, str, str]:
        return ("uid", "song", "share", "downloads")

    def of_users(self, users: np.ndarray) -> Rows:
        """The rows of `users` (sorted, unique), still sorted."""
        start = np.searchsorted(self.uid, users, side="left")
        end = np.searchsorted(self.uid, users, side="right")
        lengths = end - start
        if not lengths.any():
            return Rows.empty()
        # Every index start..end-1 of every user, without a Python loop.
        offsets = np.cumsum(lengths) - lengths
        at = np.arange(lengths.sum()) - np.repeat(offsets - start, lengths)
        return Rows(self.uid[at], self.song[at], self.share[at], self.downloads[at])


@dataclass(frozen=True)
class DayFold:
    """What a batch adds to one partition's day."""

    rows: Rows  # songs rated
    active: np.ndarray  # uids with any event that day, sorted, unique


def fold(events: EventColumns) -> dict[int, dict[str, DayFold]]:
    """Events -> partition -> day -> (rows, active users). The per-event definition is
    `models.ratings`' formula above; the unit tests hold this fold equal to it."""
    out: dict[int, dict[str, DayFold]] = {}
    if not len(events):
        return out
    share = np.where(events.download, 0.0, play_shares(events.play_time_s, events.song_length_s))
    downloads = events.download.astype(np.float64)
    rated = (events.song >= 1) & ((share > 0) | (downloads > 0))
    partition, day, uid = events.partition, events.day.astype(np.int64), events.uid
    order = np.lexsort((uid, day, partition))
    p_sorted, d_sorted, u_sorted = partition[order], day[order], uid[order]
    bounds = _runs(p_sorted, d_sorted)
    ends = np.append(bounds[1:], len(order))
    for start, end in zip(bounds.tolist(), ends.tolist(), strict=True):
        rows_at = order[start:end]
        mine = rows_at[rated[rows_at]]
        folded = Rows.summed(uid[mine], events.song[mine], share[mine], downloads[mine])
        users = u_sorted[start:end]
        active = users[_runs(users)]
        p, d = int(p_sorted[start]), events.days[int(d_sorted[start])]
        out.setdefault(p, {})[d] = DayFold(folded, active)
    return out


@dataclass(frozen=True)
class UserRatings:
    """Ratings of many users as CSR rows: user i's songs are song[indptr[i]:indptr[i+1]]."""

    users: np.ndarray  # int64, sorted, unique: every user asked for, rated or not
    indptr: np.ndarray  # int64, len(users) + 1
    song: np.ndarray  # int64, sorted within a user
    rating: np.ndarray  # float64, > 0

    def of(self, i: int) -> dict[int, float]:
        """User i's ratings as a dict (tests and the fallback's exclusions)."""
        a, b = self.indptr[i], self.indptr[i + 1]
        return dict(zip(self.song[a:b].tolist(), self.rating[a:b].tolist(), strict=True))

    def __len__(self) -> int:
        return len(self.users)


def user_ratings(users: np.ndarray, window: Sequence[Rows]) -> UserRatings:
    """The ratings of `users` (sorted, unique) from the rows of a window's days."""
    rows = Rows.concat([r.of_users(users) for r in window])
    rating = PLAY_WEIGHT * rows.share + DOWNLOAD_WEIGHT * rows.downloads
    keep = rating > 0
    uid = rows.uid[keep]
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(
        np.searchsorted(uid, users, side="right") - np.searchsorted(uid, users, side="left")
    )
    return UserRatings(users, indptr, rows.song[keep], rating[keep])
