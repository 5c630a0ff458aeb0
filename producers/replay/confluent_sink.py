"""The replay's optional librdkafka client: a transactional confluent-kafka sink.

Same contract as `kafka_sink.KafkaSink` (a transaction per commit, the ledger records in it),
for `--client confluent-kafka`. librdkafka builds and sends records in C on its own threads,
so one process keeps up with the reader without the sender processes kafka-python needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from producers.replay.errors import NotAcknowledgedError, ReplayError
from producers.replay.ledger import LedgerRecord

LEDGER_PARTITION = 0
FULL_QUEUE_S = 60.0  # a send waits this long for room in librdkafka's queue, then fails
# The settings of kafka_sink.PRODUCER_CONFIG in librdkafka's names.
CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "max.in.flight.requests.per.connection": 5,
    "delivery.timeout.ms": 60_000,  # librdkafka: at most transaction.timeout.ms
    "linger.ms": 20,
    "batch.size": 512 * 1024,
    "queue.buffering.max.messages": 500_000,
    "transaction.timeout.ms": 60_000,
    "allow.auto.create.topics": False,
}


class ConfluentSink:
    """One transactional confluent-kafka producer; `commit` ends a transaction, begins the next."""

    def __init__(
        self,
        bootstrap: str,
        ledger_topic: str,
        transactional_id: str,
        wait_s: float = 300.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        from confluent_kafka import KafkaException, Producer

        try:
            self._producer = Producer(
                {**CONFIG, "bootstrap.servers": bootstrap, "transactional.id": transactional_id}
            )
        except KafkaException as exc:
            raise ReplayError(f"could not create the confluent-kafka producer ({exc})") from exc
        self._ledger_topic = ledger_topic
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._producer.init_transactions(10.0)  # fences an earlier replay with this id
                break
            except KafkaException as exc:
                if time.monotonic() > deadline or not exc.args[0].retriable():
                    raise ReplayError(f"could not start a Kafka transaction at {bootstrap} ({exc})") from exc
                if on_wait is not None:
                    on_wait(f"waiting for Kafka at {bootstrap} (is it up? `musicbox up`)")
        self._producer.begin_transaction()

    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        try:
            self._producer.produce(topic, value, key, partition)
        except BufferError:  # librdkafka's queue is full: let it send, for a while
            deadline = time.monotonic() + FULL_QUEUE_S
            while True:
                self._producer.poll(0.05)
                try:
                    self._producer.produce(topic, value, key, partition)
                    return
                except BufferError:
                    if time.monotonic() > deadline:
                        raise NotAcknowledgedError(
                            f"Kafka took no more messages for {FULL_QUEUE_S:.0f} s (is it up?)"
                        ) from None

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        from confluent_kafka import KafkaException

        try:
            for key, value in ledger:
                self.send(self._ledger_topic, LEDGER_PARTITION, key, value)
            self._producer.commit_transaction()
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise NotAcknowledgedError(
                f"Kafka did not take a transaction ({exc}): none of it is visible to consumers, "
                "and the ledger says where a new `musicbox replay` on the same logs goes on"
            ) from exc

    def close(self) -> None:
        # An open transaction is left to the broker: the next replay's fencing aborts it.
        self._producer.flush(10.0)
