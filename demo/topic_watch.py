"""The demo's view of Kafka: its topics recreated empty, and their records read back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from demo.errors import DemoError
from infra.local.kafka_broker import ensure_topics, topic_summary
from musicbox.markers import as_marker
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.kafka_setup import forget_state


def reset_topics(settings: Settings, timeout_s: float = 60) -> None:
    """Delete and recreate the musicbox topics, and delete the worker's changelogs and consumer
    groups: state restored from an earlier run would mark the new topics' offsets as already read."""
    forget_state(settings)
    ours = Topics(settings.topic_prefix).all()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        existing = [t for t in admin.list_topics() if t in set(ours)]
        if existing:
            admin.delete_topics(existing)
    finally:
        admin.close()
    wait_recreated(
        lambda: ensure_topics(settings), lambda: set(topic_summary(settings)), set(ours), timeout_s
    )


def wait_recreated(
    create: Callable[[], object],
    existing: Callable[[], set[str]],
    wanted: set[str],
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create `wanted` until all of them exist (deletion is asynchronous: a creation may fail
    or be refused while it is under way). Other topics under the prefix do not matter."""
    deadline = time.monotonic() + timeout_s
    while True:
        error: Exception | None = None
        try:
            create()
            missing = wanted - existing()
        except Exception as exc:  # the deletion still under way
            missing, error = wanted, exc
        if not missing:
            return
        if time.monotonic() > deadline:
            raise DemoError(
                f"the topics {', '.join(sorted(missing))} were not recreated in {timeout_s:.0f} s"
                + (f" ({error})" if error else "")
            ) from error
        sleep(1)


Keep = Callable[[dict[str, Any], int], Any]  # (record, partition) -> what the reader keeps of it


def whole(value: dict[str, Any], partition: int) -> dict[str, Any]:
    return value


class TopicTail:
    """A topic's JSON records from its beginning (`read_committed`, as every musicbox consumer);
    each `read` returns those added since the last, as `keep` makes them (the whole record by
    default). Day-complete markers are not records: they are kept apart, in `markers`
    (musicbox.markers)."""

    def __init__(self, settings: Settings, topic: str, keep: Keep = whole) -> None:
        self.keep = keep
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        partitions = self.consumer.partitions_for_topic(topic) or []
        self.parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.parts)
        self.consumer.seek_to_beginning(*self.parts)
        self.markers: list[dict[str, Any]] = []

    def read(self) -> list[Any]:
        end = self.consumer.end_offsets(self.parts)
        values: list[Any] = []
        keep = self.keep
        while any(self.consumer.position(tp) < end[tp] for tp in self.parts):
            for tp, records in self.consumer.poll(timeout_ms=1000, max_records=50_000).items():
                for r in records:
                    marker = as_marker(r.value)
                    if marker is None:
                        values.append(keep(orjson.loads(r.value), tp.partition))
                    else:
                        self.markers.append(marker)
        return values

    def days_complete(self) -> set[str]:
        """The days whose marker came on every partition."""
        seen: dict[str, set[int]] = {}
        for m in self.markers:
            seen.setdefault(str(m["as_of"]), set()).add(int(m["partition"]))
        return {day for day, parts in seen.items() if len(parts) == len(self.parts)}

    def close(self) -> None:
        self.consumer.close()


def consume(settings: Settings, topic: str, keep: Keep = whole) -> list[Any]:
    """Every record of `topic` so far (markers aside): a tail read once."""
    return consume_with_markers(settings, topic, keep)[0]


def consume_with_markers(
    settings: Settings, topic: str, keep: Keep = whole
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every record of `topic` so far, and its day-complete markers."""
    tail = TopicTail(settings, topic, keep)
    try:
        return tail.read(), tail.markers
    finally:
        tail.close()
