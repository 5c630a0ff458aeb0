"""Where each replayed item goes: its topic, partition, key and value bytes (pure, no I/O).

The replay places every message itself instead of leaving it to the client's partitioner:
- an event goes to the partition of its key (the uid) under the Java client's murmur2
  partitioner, the one Spark and the worker's sink use, so a user lives on the same partition
  number of every topic and its events stay in order;
- a dead letter (no key) goes to a partition chosen from its source line, so that the same
  line always lands on the same partition.
Being deterministic is what lets the replay ledger (`ledger`) count what each partition of a
day already holds, and a resumed replay skip exactly that.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from musicbox.events import EVENT_TYPES, DeadLetter, Event
from musicbox.partitioning import UidKeys
from musicbox.topics import Topics

Placed = tuple[str, int, bytes | None, bytes]  # (topic, partition, key, value)


@dataclass
class Router:
    """Places events and dead letters; `partitions` is the partition count of each topic."""

    topics: Topics
    partitions: Mapping[str, int]
    _keys: UidKeys = field(default_factory=UidKeys, init=False, repr=False)
    _topic_of: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._topic_of = {t: self.topics.for_event_type(t) for t in EVENT_TYPES}
        needed = [*self.topics.events, self.topics.dead_letters]
        missing = [t for t in needed if self.partitions.get(t, 0) < 1]
        if missing:
            raise ValueError(f"no partition count for {', '.join(missing)}")

    def place(self, item: Event | DeadLetter) -> Placed:
        if isinstance(item, Event):
            topic = self._topic_of[item.type]
            key, hashed = self._keys.key_and_hash(item.uid)
            return topic, hashed % self.partitions[topic], key, item.to_json()
        topic = self.topics.dead_letters
        # crc32 of the source ("file:line"): stable across runs, unlike Python's str hash.
        partition = zlib.crc32(item.source.encode()) % self.partitions[topic]
        return topic, partition, None, item.to_json()

    def event_partitions(self) -> list[tuple[str, int]]:
        """Every (topic, partition) of the event topics: each gets a tick at every day's end."""
        return [(t, p) for t in self.topics.events for p in range(self.partitions[t])]
