"""The feature reader's state store: writes reach the changelog at their partition, and a worker
rebuilds exactly the store from it (only the partitions it is given)."""

from __future__ import annotations

import asyncio

import pytest

from streaming.scoring.changelog import ChangelogStore
from streaming.scoring.sink import ListSink

pytestmark = pytest.mark.unit
TOPIC = "w-quality-changelog"


def written() -> tuple[ChangelogStore, ListSink]:
    sink = ListSink()
    store = ChangelogStore(TOPIC, sink)
    store.put(0, "s|2017-04-01|0|5", {"u": [1, 2], "p": [0.1, 0.9]})
    store.put(1, "s|2017-04-01|1|7", {"u": [3], "p": [0.5]})
    store.put(1, "c|1", {"c": 3, "days": ["2017-04-01"], "through": None})
    store.put(1, "c|1", {"c": 4, "days": ["2017-04-02"], "through": "2017-04-01"})
    store.delete(0, "s|2017-04-01|0|5")
    asyncio.run(store.flush())
    return store, sink


def test_flush_sends_every_write_in_order_at_its_partition_and_empties_the_queue() -> None:
    store, sink = written()
    assert [(p, k) for p, k, _ in sink.placed[TOPIC]] == [
        (0, b'"s|2017-04-01|0|5"'),
        (1, b'"s|2017-04-01|1|7"'),
        (1, b'"c|1"'),
        (1, b'"c|1"'),
        (0, b'"s|2017-04-01|0|5"'),
    ]
    assert sink.placed[TOPIC][-1][2] is None  # a delete is a tombstone
    assert store.pending == 0
    asyncio.run(store.flush())
    assert len(sink.placed[TOPIC]) == 5  # nothing sent twice


def test_loading_the_changelog_rebuilds_the_store() -> None:
    store, sink = written()
    rebuilt = ChangelogStore(TOPIC, ListSink())
    assert rebuilt.load(sink.placed[TOPIC]) == 2
    assert rebuilt.data == store.data
    assert rebuilt.partition_of == {"s|2017-04-01|1|7": 1, "c|1": 1}
    assert rebuilt.pending == 0  # loading is not writing


def test_a_failed_flush_keeps_its_writes_for_the_retry() -> None:
    class Failing(ListSink):
        fail = True

        async def publish_at(self, topic, records) -> None:
            if self.fail:
                raise ConnectionError("broker gone")
            await super().publish_at(topic, records)

    sink = Failing()
    store = ChangelogStore(TOPIC, sink)
    store.put(0, "a|2017-04-02|0|1", [1])
    with pytest.raises(ConnectionError):
        asyncio.run(store.flush())
    store.put(0, "a|2017-04-02|0|2", [2])
    sink.fail = False
    asyncio.run(store.flush())
    assert [k for _, k, _ in sink.placed[TOPIC]] == [b'"a|2017-04-02|0|1"', b'"a|2017-04-02|0|2"']


def test_dropping_partitions_forgets_only_their_keys() -> None:
    store, _ = written()
    store.put(2, "c|2", {"c": 1, "days": [], "through": None})
    assert store.drop([1]) == 2
    assert store.data == {"c|2": {"c": 1, "days": [], "through": None}}
