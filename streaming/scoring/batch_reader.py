"""The worker's inputs: topics read in batches by a plain aiokafka consumer, state restored per partition.

Why not a Faust agent: Faust hands a stream one message at a time (an event object, an ack, a
queue hop each), which capped the worker at ~7 K messages/s on this machine while aiokafka's
`getmany` underneath delivers 400 K (BENCHMARKS.md, robinhood/faust#563). The worker runs two of
these readers in its event loop, each in its own consumer group: the feature topic
(`<app id>-features`) and the play and download topics together (`<app id>-events`).

At least once, without loss: a batch is handed to `handle` (which publishes its outputs and
flushes its state's changelog, each awaited until Kafka acknowledged it), and only then are its
offsets committed. Batches are handled one at a time, in order; only the next batch's fetch and
`prepare` overlap the handling of the one before. A crash anywhere before the commit re-reads
the batch. A commit refused because the group rebalanced meanwhile is logged: the new owner of
the partition reads the batch again.

`read_committed`: the replay writes in Kafka transactions, and a replay killed mid-transaction
leaves aborted records in the topics, which no musicbox consumer may see.

Co-partitioning: the state of partition p (of every topic read) lives in partition p of the
state's changelog. The range assignor gives a member the same partition numbers of every topic
it reads (the topics have the same partition count: `kafka_setup` checks it), so one worker owns
all of a partition's state. When the group assigns this worker partitions it did not hold, their
state is rebuilt from the changelog before any of their input is handled; partitions it lost
are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from functools import partial
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError

from streaming.scoring.messages import Incoming

log = logging.getLogger(__name__)

FETCH_MAX_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_MAX_BYTES = 16 * 1024 * 1024
SESSION_TIMEOUT_MS = 10_000  # a killed worker's partitions move on after 10 s
RESTORE_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0  # a batch in hand may be retrying (app.RETRY_DELAYS_S)
ISOLATION = "read_committed"

ChangelogRecord = tuple[int, bytes | None, bytes | None]  # (partition, key, value)


class RestorableState(Protocol):
    """State kept per input partition and backed by a changelog topic (`changelog.ChangelogStore`)."""

    topic: str  # the changelog

    def load(self, records: Iterable[ChangelogRecord]) -> int:
        """Replay changelog records, oldest first; returns how many keys are held afterwards."""

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget the state of `partitions`; returns how many keys went."""

    def __len__(self) -> int: ...


async def read_changelog(
    bootstrap: str, topic: str, partitions: Collection[int], timeout_s: float = RESTORE_TIMEOUT_S
) -> list[ChangelogRecord]:
    """Every record of `partitions` of `topic`, from the beginning to the end it has now."""
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=ISOLATION,
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_MAX_BYTES,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        # Explicit offsets: `seek_to_beginning` right after `assign` left the positions at the end
        # (aiokafka 0.14; found by the integration test, which restored nothing).
        for tp, first in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, first)
        records: list[ChangelogRecord] = []
        deadline = time.monotonic() + timeout_s
        todo = set(tps)
        while todo:
            for tp in list(todo):
                if await consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
            if not todo:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {topic} took more than {timeout_s:.0f} s")
            got = await consumer.getmany(*todo, timeout_ms=500)
            for tp, messages in got.items():
                records += [(tp.partition, m.key, m.value) for m in messages if m.offset < end[tp]]
        return records
    finally:
        await consumer.stop()


class BatchReader:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        state: RestorableState,
        prepare: Callable[[list[Incoming]], Any],
        handle: Callable[[list[Incoming], Any], Awaitable[None]],
        batch_rows: int,
        batch_wait_s: float,
        restore: Callable[[str, Collection[int]], Awaitable[list[ChangelogRecord]]] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.restore = restore or partial(read_changelog, bootstrap)
        self.topics = tuple(topics)
        self.group_id = group_id
        self.state = state
        self.prepare = prepare
        self.handle = handle
        self.batch_rows = batch_rows
        self.batch_wait_ms = max(1, int(batch_wait_s * 1000))
        self.consumer: Any = None
        self.owned: set[int] = set()  # partition numbers whose state is loaded
        self.ready = False  # True once the first assignment's state is restored
        self.position: dict[tuple[str, int], int] = {}  # next offset to read, per (topic, partition) handled
        self._settled = asyncio.Event()  # set while no rebalance is under way
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level=ISOLATION,
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_poll_records=self.batch_rows,
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_MAX_BYTES,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=2_000,
        )
        self.consumer.subscribe(list(self.topics), listener=_Listener(self))
        await self.consumer.start()
        in_hand: asyncio.Future[None] | None = None  # the previous batch, being handled and committed
        try:
            while not self._stopping.is_set():
                got = await self.consumer.getmany(timeout_ms=self.batch_wait_ms, max_records=self.batch_rows)
                # aiokafka may hand out records of new partitions while their state is still being
                # restored (seen: the first batch came before `assigned` ended): wait for it.
                while not self._settled.is_set() and not self._stopping.is_set():
                    await asyncio.sleep(0.05)
                if self._stopping.is_set():
                    break  # these records are not committed: the next run reads them
                batch = [
                    Incoming(tp.topic, tp.partition, m.offset, m.value)
                    for tp, messages in got.items()
                    for m in messages
                    if tp.partition in self.owned  # lost in a rebalance since: its new owner reads it
                ]
                prepared = self.prepare(batch) if batch else None
                if in_hand is not None:
                    await in_hand
                    in_hand = None
                if batch:
                    in_hand = asyncio.ensure_future(self._handle_and_commit(batch, prepared))
            if in_hand is not None:
                await in_hand
        finally:
            try:
                if in_hand is not None and not in_hand.done():
                    in_hand.cancel()  # cancelled from outside: not committed, the batch is read again
                await self.consumer.stop()
            finally:
                self._stopped.set()

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """End after the batch in hand (handled and committed) and leave the group."""
        self._stopping.set()
        if self.consumer is not None:
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout_s)
            except TimeoutError:
                log.warning(
                    "the reader of %s did not stop in %.0f s: its batch is read again", self.topics, timeout_s
                )

    async def _handle_and_commit(self, batch: list[Incoming], prepared: Any) -> None:
        await self.handle(batch, prepared)
        await self._commit(batch)

    async def _commit(self, batch: list[Incoming]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        for m in batch:
            key = (m.topic, m.partition)
            offsets[key] = max(offsets.get(key, -1), m.offset + 1)
        self.position.update(offsets)
        try:
            await self.consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("offsets of a handled batch not committed (%s): its new owner reads it again", exc)

    def revoked(self) -> None:
        """A rebalance begins: hold the next batch until the new assignment's state is in place."""
        self._settled.clear()

    async def assigned(self, assignment: Collection[tuple[str, int]]) -> None:
        """Load the state of partitions gained, forget that of partitions lost."""
        by_topic = {t: {p for topic, p in assignment if topic == t} for t in self.topics}
        if len({frozenset(ps) for ps in by_topic.values()}) > 1:
            log.error("%s: the topics' partitions were not assigned alike: %s", self.group_id, by_topic)
        now = {p for _, p in assignment}
        lost, gained = self.owned - now, now - self.owned
        dropped = self.state.drop(lost) if lost else 0
        if gained:
            self.state.load(await self.restore(self.state.topic, gained))
        self.owned = now
        for key in [k for k in self.position if k[1] in lost]:
            del self.position[key]
        self.ready = True
        self._settled.set()
        log.info(
            "%s partitions %s: restored %s (%d keys held), dropped %s (%d keys)",
            "+".join(self.topics), sorted(now), sorted(gained), len(self.state), sorted(lost), dropped,
        )  # fmt: skip

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages not handled yet, per assigned (topic, partition) whose end is known."""
        if self.consumer is None:
            return {}
        out = {}
        for topic in self.topics:
            for p in sorted(self.owned):
                highwater = self.consumer.highwater(TopicPartition(topic, p))
                if highwater is not None and (topic, p) in self.position:
                    out[(topic, p)] = max(0, highwater - self.position[(topic, p)])
        return out


class _Listener(ConsumerRebalanceListener):
    """aiokafka's rebalance callbacks."""

    def __init__(self, reader: BatchReader) -> None:
        self.reader = reader

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # The batch in hand still commits (or fails to, harmlessly); state is settled on assignment.
        self.reader.revoked()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.reader.assigned([(tp.topic, tp.partition) for tp in assigned])
