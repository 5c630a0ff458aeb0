"""The batch reader's assignments: a worker restores the state of exactly the partitions it is
given (both topics' partition p go to one worker), and forgets those it loses."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import orjson

from streaming.scoring.batch_reader import BatchReader, ChangelogRecord
from streaming.scoring.changelog import ChangelogStore
from streaming.scoring.sink import ListSink

TOPICS = ("t.plays", "t.downloads")
CHANGELOG = "t-state-changelog"
# What the changelog holds: one key per partition 0-2.
HELD: list[ChangelogRecord] = [(p, orjson.dumps(f"k{p}"), orjson.dumps(p)) for p in range(3)]


def reader() -> tuple[BatchReader, ChangelogStore, list[set[int]]]:
    asked: list[set[int]] = []

    async def restore(topic: str, partitions: Collection[int]) -> list[ChangelogRecord]:
        assert topic == CHANGELOG
        asked.append(set(partitions))
        return [r for r in HELD if r[0] in partitions]

    async def handle(batch: list, prepared: object) -> None:
        return None

    state = ChangelogStore(CHANGELOG, ListSink())
    return BatchReader("-", TOPICS, "g", state, lambda b: None, handle, 10, 0.1, restore), state, asked


def assign(r: BatchReader, partitions: list[int]) -> None:
    asyncio.run(r.assigned([(t, p) for t in TOPICS for p in partitions]))


def test_a_worker_restores_the_partitions_it_gains_and_forgets_those_it_loses() -> None:
    r, state, asked = reader()
    assign(r, [0, 1])
    assert r.ready and r.owned == {0, 1} and asked == [{0, 1}]
    assert state.data == {"k0": 0, "k1": 1}
    assign(r, [1, 2])  # a rebalance: 0 went to another worker, 2 came from one
    assert asked[-1] == {2}  # partition 1 is not read again
    assert state.data == {"k1": 1, "k2": 2}


def test_two_workers_each_restore_only_their_own_partitions() -> None:
    first, first_state, _ = reader()
    second, second_state, _ = reader()
    assign(first, [0, 1])
    assign(second, [2])
    assert set(first_state.data) == {"k0", "k1"} and set(second_state.data) == {"k2"}
