"""When is a day closed for the recommendations? The ticks of the event topics, per partition.

The replay sends, once every event of day D is acknowledged, a tick for D+1 to every partition
of every event topic (DESIGN 3). The worker reads plays and downloads: day D is closed on
partition p once BOTH topics have carried, on p, a tick for a day after D. Every event of D on
p has then been read (a partition is read in order), so the users of p with activity on D can
be refreshed. The latest tick per (topic, partition) is kept in a changelog-backed store, so a
restarted worker does not wait for ticks it already read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from streaming.scoring.state import PartitionedStore


def day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


class TickLedger:
    def __init__(self, topics: Sequence[str], store: PartitionedStore) -> None:
        self.topics = tuple(topics)
        self.store = store

    @staticmethod
    def _key(partition: int) -> str:
        return f"ticks|{partition}"

    def done(self, partition: int) -> str | None:
        """The last day whose close finished on `partition` (see EventFlow.close), if any."""
        value = self.store.get(f"done|{partition}")
        return str(value) if value is not None else None

    def mark_done(self, partition: int, day: str) -> None:
        if (self.done(partition) or "") < day:
            self.store.put(partition, f"done|{partition}", day)

    def closed(self, partition: int) -> str | None:
        """The last closed day on `partition`, or None while some topic has not ticked there."""
        seen = self.store.get(self._key(partition)) or {}
        if not all(t in seen for t in self.topics):
            return None
        return day_before(min(seen[t] for t in self.topics))

    def observe(self, topic: str, partition: int, tick_day: str) -> str | None:
        """Fold in a tick; returns the newly closed day when this tick closes one, else None."""
        before = self.closed(partition)
        seen = dict(self.store.get(self._key(partition)) or {})
        if tick_day <= seen.get(topic, ""):
            return None  # a re-read or older tick changes nothing
        seen[topic] = tick_day
        self.store.put(partition, self._key(partition), seen)
        after = self.closed(partition)
        return after if after is not None and (before is None or after > before) else None
