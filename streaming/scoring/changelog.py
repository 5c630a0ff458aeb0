"""A `PartitionedStore` kept in memory and backed by a compacted Kafka topic (its changelog).

The churn side of the worker reads `musicbox.features` with a plain batch consumer rather than
a Faust stream (Faust's per-message path was the worker's ceiling, BENCHMARKS.md), so its state
(the live-quality store) cannot be a Faust table. This store does what such a table does, in
batches: every write is remembered with the input partition it belongs to, `flush` sends the
writes of a batch to the same partition of the changelog topic and waits for Kafka's
acknowledgement (the caller commits its input offsets only after that), and a worker that is
assigned a partition rebuilds that partition's keys from the changelog (`load`) before it reads
any input of it.

Wire format, as Faust's tables with JSON serializers: key and value are JSON, a delete is a
record with a null value (a tombstone, which compaction eventually removes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from streaming.scoring.sink import Placed, Sink


class ChangelogStore:
    def __init__(self, topic: str, sink: Sink) -> None:
        self.topic = topic
        self.sink = sink
        self.data: dict[str, Any] = {}
        self.partition_of: dict[str, int] = {}
        self._pending: list[Placed] = []

    def get(self, key: str) -> Any | None:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self.data[key] = value
        self.partition_of[key] = partition
        self._pending.append((partition, orjson.dumps(key), orjson.dumps(value)))

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)
        self.partition_of.pop(key, None)
        self._pending.append((partition, orjson.dumps(key), None))

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)

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

    def load(self, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
        """Replay changelog records (partition, key, value), oldest first; returns how many keys
        the store holds afterwards. A null value deletes its key."""
        for partition, raw_key, raw_value in records:
            if raw_key is None:
                continue  # not ours: every write here has a key
            key = orjson.loads(raw_key)
            if raw_value is None:
                self.data.pop(key, None)
                self.partition_of.pop(key, None)
            else:
                self.data[key] = orjson.loads(raw_value)
                self.partition_of[key] = partition
        return len(self.data)

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget the keys of `partitions` (revoked from this worker); returns how many."""
        gone = set(partitions)
        keys = [k for k, p in self.partition_of.items() if p in gone]
        for key in keys:
            self.data.pop(key, None)
            del self.partition_of[key]
        return len(keys)
