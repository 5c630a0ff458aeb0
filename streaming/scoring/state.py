"""Where the worker keeps state: a key-value store whose writes name their Kafka partition.

The worker handles messages in batches of many partitions, so no single "current event" tells
a store where a write belongs. Each write here names the partition of the input it came from
instead: a store written this way is co-partitioned with its source topic, and a restarted
worker recovers, from the store's changelog, the state of the partitions it owns.
`DictStore` stands in for one in unit tests; `changelog.ChangelogStore` is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class PartitionedStore(Protocol):
    def get(self, key: str) -> Any | None: ...

    def put(self, partition: int, key: str, value: Any) -> None:
        """Set `key`; the change belongs to `partition` (of the source topic and the changelog)."""

    def delete(self, partition: int, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, Any]]:
        """A snapshot of every (key, value): safe to write to the store while iterating."""

    def __len__(self) -> int: ...


class DictStore:
    """A dict that remembers each key's partition (what a changelog would hold)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.partition_of: dict[str, int] = {}
        self.writes = 0

    def get(self, key: str) -> Any | None:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self.data[key] = value
        self.partition_of[key] = partition
        self.writes += 1

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)
        self.partition_of.pop(key, None)
        self.writes += 1

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)
