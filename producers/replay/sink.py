"""Where the replay writes: a protocol with a Kafka implementation and a list for tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from producers.replay.errors import NotAcknowledgedError, ReplayError

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None: ...

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise NotAcknowledgedError otherwise."""

    def partitions_for(self, topic: str) -> list[int]: ...

    def close(self) -> None: ...


@dataclass
class ListSink:
    """In-memory sink for tests (quix's `sdf.test()` idea): records what would go to Kafka."""

    partitions: int = 2
    records: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    flushed: int = 0  # records acknowledged (all up to the last flush)
    fail_after: int | None = None  # simulate a broker that stops acknowledging

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self.records.append((topic, key, value, partition))

    def flush(self) -> None:
        if self.fail_after is not None and len(self.records) > self.fail_after:
            del self.records[self.fail_after :]
            raise NotAcknowledgedError(f"{self.fail_after - self.flushed} acknowledged, the rest not")
        self.flushed = len(self.records)

    def partitions_for(self, topic: str) -> list[int]:
        return list(range(self.partitions))

    def close(self) -> None:
        pass


# Producer settings for no loss (acks from all replicas, idempotence, bounded in-flight) and
# the batching/compression that bench/replay.py measured best on the local broker.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "retries": 2**31 - 1,
    "max_in_flight_requests_per_connection": 5,
    "delivery_timeout_ms": 120_000,
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "compression_type": None,
    "allow_auto_create_topics": False,  # `musicbox up` creates the topics with their config
    "metrics_enabled": False,  # the client's own sensors cost CPU on every send; we export ours
    "bootstrap_timeout_ms": 10_000,  # then say what we wait for, and try again
}


class KafkaSink:
    """kafka-python producer; counts what Kafka did not acknowledge and raises at flush."""

    def __init__(
        self,
        bootstrap: str,
        wait_s: float = 300.0,
        on_wait: Callable[[str], None] | None = None,
        **overrides: Any,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        config = {**PRODUCER_CONFIG, **overrides}
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._producer = KafkaProducer(bootstrap_servers=bootstrap, **config)
                break
            except KafkaError as exc:  # kafka-python 3 raises a timeout when it cannot bootstrap
                if time.monotonic() > deadline:
                    raise ReplayError(
                        f"no Kafka broker answered at {bootstrap} for {wait_s:.0f} s: start it "
                        "(`musicbox up`) or set MUSICBOX_KAFKA_BOOTSTRAP"
                    ) from exc
                (on_wait or log.warning)(f"waiting for Kafka at {bootstrap} (is it up? `musicbox up`)")
                time.sleep(2.0)
        self._failures: list[BaseException] = []
        self._bootstrap = bootstrap

    def _failed(self, exc: BaseException) -> None:
        self._failures.append(exc)

    def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        future = self._producer.send(topic, key=key, value=value, partition=partition)
        future.add_errback(self._failed)

    def flush(self) -> None:
        self._producer.flush()
        if self._failures:
            failures, self._failures = self._failures, []
            raise NotAcknowledgedError(
                f"Kafka did not acknowledge {len(failures)} messages (first: {failures[0]!r}); "
                "nothing after the last checkpoint counts as sent: fix the broker, then `--resume`"
            )

    def require_topics(self, topics: Iterable[str]) -> None:
        """Fail at once, and clearly, when a topic is missing (the producer would otherwise log
        "not found in cluster metadata" ten times a second for a minute before giving up)."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        try:
            missing = sorted(set(topics) - consumer.topics())
        finally:
            consumer.close()
        if missing:
            raise ReplayError(
                f"topics {', '.join(missing)} do not exist: `musicbox up` creates the topics of the "
                "configured MUSICBOX_TOPIC_PREFIX (run it with the same prefix)"
            )

    def partitions_for(self, topic: str) -> list[int]:
        partitions = self._producer.partitions_for(topic)
        if not partitions:
            raise ReplayError(f"topic {topic} does not exist: `musicbox up` creates the musicbox topics")
        return sorted(partitions)

    def close(self) -> None:
        self._producer.close()
