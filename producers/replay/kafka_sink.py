"""The replay's Kafka side: a transactional kafka-python sink, the ledger read back, fencing.

Each sink is a transactional producer (`acks=all`, idempotent): what it sends between two
commits, and the ledger records of that commit, become visible to `read_committed` consumers
together, or, if the process dies first, never (the broker aborts the transaction when the
next replay takes the same transactional id, or after `transaction_timeout_ms`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from musicbox.settings import Settings
from musicbox.topics import Topics
from producers.replay.core import NullObserver, Replay, ReplayObserver
from producers.replay.errors import NotAcknowledgedError, ReplayError
from producers.replay.ledger import Ledger, LedgerRecord
from producers.replay.pacing import Pacer
from producers.replay.routing import Router
from producers.replay.sink import Sink

log = logging.getLogger(__name__)

# No loss (acks from all replicas, idempotence), and the batching that bench/replay.py measured
# best on the local broker.
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
    "transaction_timeout_ms": 60_000,
}
LEDGER_PARTITION = 0
# kafka-python's commit_transaction has no timeout: with its brokers gone it waits forever.
# Beyond the transaction (60 s) and delivery (120 s) timeouts, a commit has failed.
COMMIT_TIMEOUT_S = 180.0
MAX_SENDERS = 4  # sender processes of one replay; the ids of all of them are fenced at start
KAFKA_PYTHON, CONFLUENT_KAFKA = "kafka-python", "confluent-kafka"
CLIENTS = (KAFKA_PYTHON, CONFLUENT_KAFKA)


def transactional_id(topic_prefix: str, sender: int) -> str:
    """`musicbox.` -> `musicbox-replay-0`: one id per sender, the same in every run, so a new
    replay fences (and aborts the open transaction of) the one it replaces."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", topic_prefix).strip("-") or "musicbox"
    return f"{stem}-replay-{sender}"


def _connect(
    bootstrap: str, config: dict[str, Any], wait_s: float, on_wait: Callable[[str], None] | None
) -> Any:
    """A producer, once a broker answers; says what it waits for, gives up after `wait_s`."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaProducer(bootstrap_servers=bootstrap, **config)
        except KafkaError as exc:  # kafka-python 3 raises a timeout when it cannot bootstrap
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"no Kafka broker answered at {bootstrap} for {wait_s:.0f} s: start it "
                    "(`musicbox up`) or set MUSICBOX_KAFKA_BOOTSTRAP"
                ) from exc
            (on_wait or log.warning)(f"waiting for Kafka at {bootstrap} (is it up? `musicbox up`)")
            time.sleep(2.0)


def _within(timeout_s: float, call: Callable[[], None]) -> None:
    """`call()` on a thread of its own; TimeoutError when it has not returned in `timeout_s` (the
    thread is left blocked: the caller gives the producer up)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, name="replay-commit", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise TimeoutError(f"no answer from Kafka in {timeout_s:.0f} s")
    if outcome[0] is not None:
        raise outcome[0]


class KafkaSink:
    """One transactional kafka-python producer; `commit` ends a transaction, begins the next."""

    def __init__(
        self,
        bootstrap: str,
        ledger_topic: str,
        transactional_id: str,
        wait_s: float = 300.0,
        on_wait: Callable[[str], None] | None = None,
        **overrides: Any,
    ) -> None:
        from kafka.errors import KafkaError

        config = {**PRODUCER_CONFIG, "transactional_id": transactional_id, **overrides}
        self._producer = _connect(bootstrap, config, wait_s, on_wait)
        self._ledger_topic = ledger_topic
        try:
            self._producer.init_transactions()  # fences an earlier replay with this id
            self._producer.begin_transaction()
        except KafkaError as exc:
            self._producer.close(timeout=5)
            raise ReplayError(f"could not start a Kafka transaction ({exc!r})") from exc

    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        from kafka.errors import KafkaError

        try:
            self._producer.send(topic, value=value, key=key, partition=partition)
        except KafkaError as exc:  # its buffer stayed full (Kafka away for max_block_ms)
            raise NotAcknowledgedError(f"Kafka took no more messages ({exc!r})") from exc

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        from kafka.errors import KafkaError

        producer = self._producer
        try:
            for key, value in ledger:
                producer.send(self._ledger_topic, value=value, key=key, partition=LEDGER_PARTITION)
            _within(COMMIT_TIMEOUT_S, producer.commit_transaction)
            producer.begin_transaction()
        except (KafkaError, TimeoutError) as exc:
            raise NotAcknowledgedError(
                f"Kafka did not take a transaction ({exc!r}): none of it is visible to consumers, "
                "and the ledger says where a new `musicbox replay` on the same logs goes on"
            ) from exc

    def close(self) -> None:
        # An open transaction is left to the broker: the next replay's fencing aborts it.
        self._producer.close(timeout=10)


class PatientSink:
    """A sink whose commits say what they wait for: every `every_s` seconds that a commit has
    not returned (Kafka away, or a broker restarting), `on_wait` hears it. The commit itself
    waits as long as the client does (transaction and delivery timeouts)."""

    def __init__(self, sink: Sink, on_wait: Callable[[str], None], every_s: float = 5.0) -> None:
        self.sink = sink
        self.on_wait = on_wait
        self.every_s = every_s

    def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        self.sink.send(topic, partition, key, value)

    def commit(self, ledger: Sequence[LedgerRecord]) -> None:
        done = threading.Event()
        started = time.monotonic()

        def nag() -> None:
            while not done.wait(self.every_s):
                waited = time.monotonic() - started
                self.on_wait(f"waiting for Kafka to take a transaction ({waited:.0f} s; is it up?)")

        watcher = threading.Thread(target=nag, name="replay-commit-watch", daemon=True)
        watcher.start()
        try:
            self.sink.commit(ledger)
        finally:
            done.set()
            watcher.join()

    def close(self) -> None:
        self.sink.close()


def fence(bootstrap: str, transactional_ids: Iterable[str]) -> None:
    """Abort any open transaction of these ids (a replay killed with more senders than now):
    until then, `read_committed` consumers, the ledger's reader too, cannot read past them."""
    for tid in transactional_ids:
        producer = _connect(bootstrap, {**PRODUCER_CONFIG, "transactional_id": tid}, 60.0, None)
        try:
            producer.init_transactions()
        finally:
            producer.close(timeout=5)


def topic_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """The partition count of each topic; fails at once, and clearly, when one is missing."""
    from kafka import KafkaConsumer

    wanted = list(topics)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        existing = consumer.topics()
        missing = sorted(set(wanted) - existing)
        if missing:
            raise ReplayError(
                f"topics {', '.join(missing)} do not exist: `musicbox up` creates the topics of the "
                "configured MUSICBOX_TOPIC_PREFIX (run it with the same prefix)"
            )
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in wanted}
    finally:
        consumer.close()


def read_ledger(bootstrap: str, topic: str, timeout_s: float = 120.0) -> Ledger:
    """The committed ledger records, from the beginning to the end (`read_committed`)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    try:
        tp = TopicPartition(topic, LEDGER_PARTITION)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]  # the last stable offset: nothing open is read
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise ReplayError(f"reading the replay ledger {topic} took more than {timeout_s:.0f} s")
            for batch in consumer.poll(timeout_ms=1000).values():
                records += [(r.key, r.value) for r in batch if r.offset < end]
        return Ledger.from_records(records)
    finally:
        consumer.close()


@contextmanager
def kafka_replay(
    settings: Settings,
    pacer: Pacer,
    observer: ReplayObserver | None = None,
    checkpoint_every: int = 50_000,
    senders: int = 1,
    client: str = KAFKA_PYTHON,
    on_wait: Callable[[str], None] | None = None,
    producer: dict[str, Any] | None = None,
) -> Iterator[Replay]:
    """A `Replay` into the topics of `settings`, its ledger read: what the command and the
    benchmarks run. With kafka-python, `senders` > 1 sends from that many processes (`fanout`);
    confluent-kafka sends from this one (librdkafka's own threads). `producer` overrides the
    kafka-python producer's settings (the benchmark's sweeps). Closed on the way out."""
    from producers.replay.confluent_sink import ConfluentSink
    from producers.replay.fanout import FanOutSink

    if client not in CLIENTS:
        raise ReplayError(f"unknown Kafka client {client!r}: one of {', '.join(CLIENTS)}")
    if client == CONFLUENT_KAFKA:
        senders = 1
    if not 1 <= senders <= MAX_SENDERS:
        raise ReplayError(f"--senders must be 1..{MAX_SENDERS}, not {senders}")
    topics = Topics(settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap
    tids = [transactional_id(settings.topic_prefix, k) for k in range(MAX_SENDERS)]
    sink: Sink
    if client == CONFLUENT_KAFKA:
        sink = ConfluentSink(bootstrap, topics.replay_ledger, tids[0], on_wait=on_wait)
    elif senders == 1:
        sink = KafkaSink(bootstrap, topics.replay_ledger, tids[0], on_wait=on_wait)
    else:
        sink = FanOutSink(
            bootstrap, topics.replay_ledger, tids[:senders], [*topics.events, topics.dead_letters]
        )
    if on_wait is not None:
        sink = PatientSink(sink, on_wait)
    try:
        # An earlier replay may have sent from more processes: abort what they left open.
        fence(bootstrap, tids[senders:])
        partitions = topic_partitions(bootstrap, [*topics.events, topics.dead_letters, topics.replay_ledger])
        # Read once every transaction an earlier replay left open is aborted (the sinks fenced
        # their own ids): `read_committed` reads no further than the first open one.
        ledger = read_ledger(bootstrap, topics.replay_ledger)
        yield Replay(
            sink,
            Router(topics, partitions),
            pacer,
            ledger=ledger,
            observer=observer or NullObserver(),
            checkpoint_every=checkpoint_every,
        )
    finally:
        sink.close()
