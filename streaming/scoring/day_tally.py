"""Per feature partition and as-of day: how many rows the worker scored and how many bots it
skipped, for the day-complete marker it writes to `musicbox.churn-scores` (musicbox.markers).

Counted once per input offset: each tally keeps the last offset it counted, and a row at or
below it (a batch read again after a restart) is not counted twice. The tallies live in the
worker's changelog-backed store co-partitioned with the feature topic, so a restarted worker,
or the one a partition moved to, goes on counting where the last left off. A day's tally stays
after its marker (a re-read marker must say the same) and goes `KEEP_D` days later.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from streaming.scoring.state import PartitionedStore

KEEP_D = 31  # a tally this many days older than the latest marker of its partition goes
_PREFIX = "tally|"


def _key(partition: int, as_of: str) -> str:
    return f"{_PREFIX}{partition}|{as_of}"


class DayTally:
    def __init__(self, store: PartitionedStore) -> None:
        self.store = store

    def count(
        self, partition: int, as_of: str, offsets: np.ndarray, scored: np.ndarray, bot: np.ndarray
    ) -> None:
        """Fold rows of one (partition, as_of): their offsets, and which were scored or bots."""
        key = _key(partition, as_of)
        current = self.store.get(key) or {"o": -1, "scored": 0, "bots": 0}
        new = offsets > current["o"]
        if not new.any():
            return
        self.store.put(
            partition,
            key,
            {
                "o": int(offsets.max()),
                "scored": current["scored"] + int(scored[new].sum()),
                "bots": current["bots"] + int(bot[new].sum()),
            },
        )

    def complete(self, partition: int, as_of: str) -> tuple[int, int]:
        """(scored, bots skipped) of the day on the partition; old tallies of it are dropped."""
        tally = self.store.get(_key(partition, as_of)) or {"scored": 0, "bots": 0}
        oldest = (date.fromisoformat(as_of) - timedelta(days=KEEP_D)).isoformat()
        mine = f"{_PREFIX}{partition}|"
        for key, _ in self.store.items():
            if key.startswith(mine) and key[len(mine) :] < oldest:
                self.store.delete(partition, key)
        return int(tally["scored"]), int(tally["bots"])
