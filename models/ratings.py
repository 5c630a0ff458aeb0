"""Implicit ratings per (uid, song_id) from plays and downloads: the study's formula, bugs fixed.

    rating = 0.4 * sum over plays of min(play_time_s / L, 1) + 0.6 * downloads

L is the song's mean length over its sane lengths ([1, 4800] s) in the events held. Decisions:
- a 0-second play counts 0 (a skip is a skip; the study replaced it by 248 s);
- a play whose play_time_s is unknown (null or negative) counts 0: we cannot tell it from a skip;
- a play of a song with no sane length anywhere in the data is weighed against the median L
  of the songs that have one (FALLBACK_LENGTH_S, the logs' median, only if no song has any);
- a row with a null or non-positive song_id (0 = unknown) is ignored, lengths included;
- downloads of songs never played count; a pair whose rating is 0 (only skips) is left out,
  since a recommender reads every listed pair as a positive.

`RatingAccumulator` is a fold (add, merge, expire days) so that the streaming worker and the
batch trainer compute the same numbers; it keeps exact integer counts per day and computes the
ratings from them, so any order of adds and merges gives bit-identical results.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import pandas as pd

from models.errors import ModelInputError

PLAY_WEIGHT = 0.4
DOWNLOAD_WEIGHT = 0.6
SANE_LENGTH_S = (1, 4800)
FALLBACK_LENGTH_S = 232.0  # median song length of the real logs (SEED_FACTS 1)
DEFAULT_WINDOW_D = 30
EVENT_COLUMNS = ("type", "uid", "song_id", "play_time_s", "song_length_s", "date")
RATING_COLUMNS = ("uid", "song_id", "rating")
_COMPACT_EVERY = 16  # parts kept per day and kind before they are summed into one

# Per day, three kinds of exact counts: plays by play time, downloads, and song length sums.
_KEYS = {
    "plays": ["uid", "song_id", "play_time_s"],
    "downloads": ["uid", "song_id"],
    "lengths": ["song_id"],
}


def _days(column: pd.Series) -> pd.Series:
    if pd.api.types.infer_dtype(column, skipna=False) == "string":
        return column
    return pd.to_datetime(column).dt.strftime("%Y-%m-%d")


def _count(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sum every other column by `keys`, sorted by keys."""
    return df.groupby(keys, sort=True, as_index=False).sum()


class RatingAccumulator:
    """Exact per-day counts from which `ratings()` computes the implicit ratings of a window."""

    def __init__(self, window_d: int = DEFAULT_WINDOW_D) -> None:
        self.window_d = window_d
        self._parts: dict[str, dict[str, list[pd.DataFrame]]] = defaultdict(lambda: defaultdict(list))

    @property
    def days(self) -> list[str]:
        return sorted(self._parts)

    def add(self, events: pd.DataFrame) -> RatingAccumulator:
        """Fold in a frame of events (EVENT_COLUMNS; searches and other types are ignored)."""
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise ModelInputError(f"the events frame lacks columns {missing}: it needs {list(EVENT_COLUMNS)}")
        song = pd.to_numeric(events["song_id"], errors="coerce").to_numpy(dtype=np.float64)
        known = ~np.isnan(song) & (song >= 1)
        ev = pd.DataFrame(
            {
                "day": _days(events["date"]).to_numpy()[known],
                "uid": events["uid"].to_numpy(dtype=np.int64)[known],
                "song_id": song[known].astype(np.int64),
                "n": np.ones(int(known.sum()), dtype=np.int64),
            }
        )
        kind = events["type"].to_numpy()[known]
        play_s = pd.to_numeric(events["play_time_s"], errors="coerce").to_numpy(dtype=np.float64)[known]
        length_s = pd.to_numeric(events["song_length_s"], errors="coerce").to_numpy(dtype=np.float64)[known]
        lo, hi = SANE_LENGTH_S
        sane = (length_s >= lo) & (length_s <= hi)
        lengths = ev.loc[sane, ["day", "song_id", "n"]].assign(length_sum_s=length_s[sane])
        # Plays of unknown duration and skips add 0 to any rating: only plays of > 0 s are kept.
        played = (kind == "play") & (play_s > 0)
        plays = ev.loc[played].assign(play_time_s=play_s[played])
        downloads = ev.loc[kind == "download"]
        for name, frame in (("lengths", lengths), ("plays", plays), ("downloads", downloads)):
            if len(frame):
                self._add_parts(name, _count(frame, ["day", *_KEYS[name]]))
        return self

    def _add_parts(self, kind: str, counted: pd.DataFrame) -> None:
        days = counted["day"].to_numpy()
        for day in np.unique(days):
            parts = self._parts[str(day)][kind]
            parts.append(counted.loc[days == day].drop(columns="day"))
            if len(parts) >= _COMPACT_EVERY:
                parts[:] = [self._sum(kind, parts)]

    @staticmethod
    def _sum(kind: str, parts: list[pd.DataFrame]) -> pd.DataFrame:
        return _count(pd.concat(parts, ignore_index=True), _KEYS[kind])

    def merge(self, other: RatingAccumulator) -> RatingAccumulator:
        """Add another accumulator's counts to this one (e.g. from another partition)."""
        for day, kinds in other._parts.items():
            for kind, parts in kinds.items():
                self._parts[day][kind].extend(parts)
        return self

    def expire(self, as_of: str) -> list[str]:
        """Drop the days older than the window ending on `as_of`; returns the days dropped."""
        first = (date.fromisoformat(as_of) - timedelta(days=self.window_d - 1)).isoformat()
        old = [d for d in self._parts if d < first]
        for d in old:
            del self._parts[d]
        return sorted(old)

    def _window(self, kind: str, as_of: str | None) -> pd.DataFrame:
        first = (date.fromisoformat(as_of) - timedelta(days=self.window_d - 1)).isoformat() if as_of else ""
        parts = [
            p
            for day, kinds in self._parts.items()
            if first <= day and (as_of is None or day <= as_of)
            for p in kinds.get(kind, [])
        ]
        if not parts:
            names = _KEYS[kind] + (["length_sum_s", "n"] if kind == "lengths" else ["n"])
            return pd.DataFrame(
                {c: pd.Series(dtype="float64" if c.endswith("_s") else "int64") for c in names}
            )
        return self._sum(kind, parts)

    def song_lengths(self, as_of: str | None = None) -> pd.Series:
        """L per song_id: the mean of its sane lengths in the window."""
        lengths = self._window("lengths", as_of)
        return pd.Series(
            lengths["length_sum_s"].to_numpy() / lengths["n"].to_numpy(),
            index=lengths["song_id"],
            dtype="float64",
        )

    def ratings(self, as_of: str | None = None) -> pd.DataFrame:
        """uid, song_id, rating (> 0) over the window ending on `as_of` (default: every day held)."""
        song_length = self.song_lengths(as_of)
        fallback_s = float(song_length.median()) if len(song_length) else FALLBACK_LENGTH_S
        plays = self._window("plays", as_of)
        length_s = plays["song_id"].map(song_length).fillna(fallback_s).to_numpy()
        plays["part"] = plays["n"].to_numpy() * np.minimum(plays["play_time_s"].to_numpy() / length_s, 1.0)
        played = plays.groupby(["uid", "song_id"], sort=True)["part"].sum()
        downloaded = self._window("downloads", as_of).set_index(["uid", "song_id"])["n"]
        both = pd.concat([played.rename("played"), downloaded.rename("downloads")], axis=1).fillna(0.0)
        both["rating"] = PLAY_WEIGHT * both["played"] + DOWNLOAD_WEIGHT * both["downloads"]
        out = both.loc[both["rating"] > 0, ["rating"]].sort_index().reset_index()
        return out.astype({"uid": "int64", "song_id": "int64", "rating": "float64"})[list(RATING_COLUMNS)]


def compute_ratings(events: pd.DataFrame, as_of: str, window_d: int = DEFAULT_WINDOW_D) -> pd.DataFrame:
    """Batch ratings of the window of `window_d` days ending on `as_of`."""
    return RatingAccumulator(window_d).add(events).ratings(as_of)
