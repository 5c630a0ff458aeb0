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

from kafka.partitioner.default import murmur2

from musicbox.events import EVENT_TYPES, DeadLetter, Event
from musicbox.topics import Topics

Placed = tuple[str, int, bytes | None, bytes]  # (topic, partition, key, value)
KEY_CACHE_MAX = 4_000_000  # the cache of uid -> (key, murmur2 hash) starts again beyond this


def partition_of_key(key: bytes, partitions: int) -> int:
    """The Java client's default partitioner for a keyed record (positive murmur2 mod count)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Router:
    """Places events and dead letters; `partitions` is the partition count of each topic."""

    topics: Topics
    partitions: Mapping[str, int]
    _keys: dict[int, tuple[bytes, int]] = field(default_factory=dict, init=False, repr=False)
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
            key, hashed = self._key(item.uid)
            return topic, hashed % self.partitions[topic], key, item.to_json()
        topic = self.topics.dead_letters
        # crc32 of the source ("file:line"): stable across runs, unlike Python's str hash.
        partition = zlib.crc32(item.source.encode()) % self.partitions[topic]
        return topic, partition, None, item.to_json()

    def _key(self, uid: int) -> tuple[bytes, int]:
        """The key bytes and positive murmur2 of a uid, cached: the same users come back all
        the time, and murmur2 in Python costs ~4 us a call."""
        cached = self._keys.get(uid)
        if cached is None:
            if len(self._keys) >= KEY_CACHE_MAX:
                self._keys.clear()
            key = str(uid).encode()
            cached = self._keys[uid] = (key, murmur2(key) & 0x7FFFFFFF)
        return cached

    def event_partitions(self) -> list[tuple[str, int]]:
        """Every (topic, partition) of the event topics: each gets a tick at every day's end."""
        return [(t, p) for t in self.topics.events for p in range(self.partitions[t])]
