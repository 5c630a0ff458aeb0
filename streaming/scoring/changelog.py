"""State kept in memory and backed by a compacted Kafka topic (its changelog).

The worker reads its inputs with plain batch consumers rather than Faust streams (Faust's
per-message path was the worker's ceiling, BENCHMARKS.md), so its state cannot be Faust tables.
It does what such a table does, in batches: every write is remembered with the input partition
it belongs to, `flush` sends the writes of a batch to the same partition of the changelog topic
and waits for Kafka's acknowledgement (the caller commits its input offsets only after that),
and a worker that is assigned a partition rebuilds that partition's keys from the changelog
(`load`) before it reads any input of it.

`Changelog` is the write side (a queue of writes and its flush); `ChangelogStore` a dict on top
of one, the `PartitionedStore` of the live-quality state and of the tick ledger. Several stores
may share one changelog (the listening state and its tick ledger): their writes then reach
Kafka in the order they were made.

Wire format, as Faust's tables with JSON serializers: key and value are JSON (numpy arrays as
JSON arrays), a delete is a record with a null value (a tombstone, which compaction eventually
removes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from streaming.scoring.sink import Placed, Sink

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode_key(key: str) -> bytes:
    return orjson.dumps(key)


class Changelog:
    """Writes bound for one changelog topic, each at the partition of the input it came from."""

    def __init__(self, topic: str, sink: Sink) -> None:
        self.topic = topic
        self.sink = sink
        self._pending: list[Placed] = []

    def put(self, partition: int, key: str, value: Any) -> None:
        self._pending.append((partition, encode_key(key), orjson.dumps(value, option=JSON_OPTIONS)))

    def delete(self, partition: int, key: str) -> None:
        self._pending.append((partition, encode_key(key), None))

    @property
    def pending(self) -> int:
        """Writes not sent yet."""
        return len(self._pending)

    async def flush(self) -> None:
        """Send the writes made since the last flush; returns once Kafka has acknowledged them."""
        if self._pending:
            writes, self._pending = self._pending, []
            try:
                await self.sink.publish_at(self.topic, writes)
            except BaseException:
                self._pending = writes + self._pending  # a retried batch sends them again
                raise


class ChangelogStore:
    def __init__(self, topic: str, sink: Sink, changelog: Changelog | None = None) -> None:
        self.changelog = changelog or Changelog(topic, sink)
        self.topic = self.changelog.topic
        self.data: dict[str, Any] = {}
        self.partition_of: dict[str, int] = {}

    def get(self, key: str) -> Any | None:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self.data[key] = value
        self.partition_of[key] = partition
        self.changelog.put(partition, key, value)

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)
        self.partition_of.pop(key, None)
        self.changelog.delete(partition, key)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)

    @property
    def pending(self) -> int:
        return self.changelog.pending

    async def flush(self) -> None:
        await self.changelog.flush()

    def load_one(self, partition: int, key: str, raw_value: bytes | None) -> None:
        """Replay one changelog record whose key is already decoded."""
        if raw_value is None:
            self.data.pop(key, None)
            self.partition_of.pop(key, None)
        else:
            self.data[key] = orjson.loads(raw_value)
            self.partition_of[key] = partition

    def load(self, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
        """Replay changelog records (partition, key, value), oldest first; returns how many keys
        the store holds afterwards. A null value deletes its key."""
        for partition, raw_key, raw_value in records:
            if raw_key is not None:  # not ours otherwise: every write here has a key
                self.load_one(partition, orjson.loads(raw_key), raw_value)
        return len(self.data)

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget the keys of `partitions` (revoked from this worker); returns how many."""
        gone = set(partitions)
        keys = [k for k, p in self.partition_of.items() if p in gone]
        for key in keys:
            self.data.pop(key, None)
            del self.partition_of[key]
        return len(keys)
