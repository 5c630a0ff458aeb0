"""Which partition a keyed record lands on: the Java client's default partitioner.

Every musicbox topic is keyed by uid, and a user's records must land on the same partition
number of every topic (the worker's state is co-partitioned with its inputs; the day markers
count rows per partition). The replay and the streaming job's markers compute it here; Spark's
Kafka sink and the Java and Python clients compute the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka.partitioner.default import murmur2

CACHE_MAX = 4_000_000  # the cache of uid -> (key, hash) starts again beyond this many users


def partition_of_key(key: bytes, partitions: int) -> int:
    """Positive murmur2 of the key bytes modulo the partition count (Kafka's `Utils.toPositive`)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class UidKeys:
    """A uid's key bytes and positive murmur2, cached: murmur2 in Python costs ~4 us a call, and
    the same users come back all the time."""

    _cache: dict[int, tuple[bytes, int]] = field(default_factory=dict, repr=False)

    def key_and_hash(self, uid: int) -> tuple[bytes, int]:
        cached = self._cache.get(uid)
        if cached is None:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            key = str(uid).encode()
            cached = self._cache[uid] = (key, murmur2(key) & 0x7FFFFFFF)
        return cached

    def partition(self, uid: int, partitions: int) -> int:
        return self.key_and_hash(uid)[1] % partitions
