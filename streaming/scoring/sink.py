"""Where the worker's outputs go: a protocol, a list for tests, and Kafka through aiokafka batches.

`publish` returns once Kafka has acknowledged every record, and the worker acknowledges its
input batch only after that: a crash in between re-reads the input and publishes again (at
least once; outputs are idempotent by key and identity fields). Records are placed with the
Java client's murmur2 partitioner, like the replay's and Spark's, so a uid lands on the same
partition number in every topic; `publish_at` places each record itself (a changelog write goes
to the partition of the input it came from). Batches are built directly (aiokafka's `create_batch`): one
future per batch instead of one per record, which is most of the cost of sending in Python.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

Record = tuple[bytes | None, bytes]  # (key, value)
MAX_REQUEST_BYTES = 16 * 1024 * 1024
PLACED_KEYS_MAX = 2_000_000  # the partition cache starts again beyond this many keys
# (partition, key, value): a changelog write (a None value deletes) or a day marker (no key).
Placed = tuple[int, bytes | None, bytes | None]
_ByPartition = dict[int, list[tuple[bytes | None, bytes | None]]]


class Sink(Protocol):
    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Send `records` and return once every one is acknowledged."""

    async def publish_at(self, topic: str, records: Sequence[Placed]) -> None:
        """Send each record to the partition it names; return once every one is acknowledged."""


class ListSink:
    """Records what would go to Kafka (tests, and dry runs)."""

    def __init__(self) -> None:
        self.records: dict[str, list[Record]] = defaultdict(list)
        self.placed: dict[str, list[Placed]] = defaultdict(list)

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        self.records[topic].extend(records)

    async def publish_at(self, topic: str, records: Sequence[Placed]) -> None:
        self.placed[topic].extend(records)


class KafkaSink:
    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._config = {
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "linger_ms": 5,
            "max_batch_size": 512 * 1024,
            "max_request_size": MAX_REQUEST_BYTES,  # one changelog record may pass 1 MB
            "request_timeout_ms": 30_000,
            **overrides,
        }
        self._producer: Any = None
        self._partitions: dict[str, list[int]] = {}
        # Partition of each key, per partition count: murmur2 in Python was 5 % of the worker's
        # time, and the same users come back every day.
        self._placed: dict[int, dict[bytes, int]] = {}
        self._starting: asyncio.Lock | None = None

    async def start(self) -> None:
        """Connect; `publish` calls it on first use, on the event loop it runs on."""
        from aiokafka import AIOKafkaProducer

        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(**self._config)
                await producer.start()
                self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _partitions_of(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        return self._partitions[topic]

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        if not records:
            return
        if self._producer is None:
            await self.start()
        partitions = await self._partitions_of(topic)
        placed = self._placed.setdefault(len(partitions), {})
        if len(placed) > PLACED_KEYS_MAX:
            placed.clear()
        by_partition: _ByPartition = defaultdict(list)
        for key, value in records:
            partition = placed.get(key) if key is not None else None
            if partition is None:
                partition = DefaultPartitioner()(key, partitions, partitions)  # no key: a random one
                if key is not None:
                    placed[key] = partition
            by_partition[partition].append((key, value))
        await self._send(topic, by_partition)

    async def publish_at(self, topic: str, records: Sequence[Placed]) -> None:
        if not records:
            return
        if self._producer is None:
            await self.start()
        by_partition: _ByPartition = defaultdict(list)
        for partition, key, value in records:
            by_partition[partition].append((key, value))
        await self._send(topic, by_partition)

    async def _send(self, topic: str, by_partition: _ByPartition) -> None:
        futures = []
        for partition, part in by_partition.items():
            batch = self._producer.create_batch()
            for key, value in part:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                    futures.append(await self._producer.send_batch(batch, topic, partition=partition))
                    batch = self._producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
