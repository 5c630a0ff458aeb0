"""The worker without a broker: the app built as `musicbox worker` builds it, its two readers'
batch handling fed directly, a list sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from models.registry import current_version, load_als, load_churn
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.app import Dependencies, Layout, WorkerApp, app_id, build_app, changelog_topic
from streaming.scoring.messages import Incoming
from streaming.scoring.reload import ModelReloader
from streaming.scoring.sink import ListSink
from tests.fixtures.scoring import (
    download,
    encoded,
    feature_row,
    play,
    save_als_model,
    save_churn_model,
    tick,
)

PREFIX = "comp."
T = Topics(PREFIX)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    save_churn_model(root)
    save_als_model(root)
    return root


@pytest.fixture
def worker(registry: Path, tmp_path: Path) -> Iterator[tuple[WorkerApp, ListSink]]:
    settings = Settings(topic_prefix=PREFIX, var_dir=tmp_path, worker_batch_wait_s=0.05, worker_top_n=3)
    churn = ModelReloader("churn", partial(current_version, registry, "churn"), partial(load_churn, registry))
    als = ModelReloader("als", partial(current_version, registry, "als"), partial(load_als, registry))
    churn.poll()
    als.poll()
    sink = ListSink()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The broker is never contacted: the tests hand batches to the readers' handlers.
    yield build_app(settings, Dependencies(churn, als, sink), Layout(2, 2)), sink
    loop.close()


def run(coro) -> None:
    asyncio.get_event_loop().run_until_complete(asyncio.wait_for(coro, timeout=60))


def test_feature_batches_are_scored_and_their_pending_scores_go_to_the_changelog(worker) -> None:
    w, sink = worker
    batch = [
        Incoming(T.features, uid % 2, 10 + uid, encoded(feature_row(uid, "2017-04-05"))) for uid in (1, 2, 3)
    ]
    batch += [
        Incoming(T.features, 0, 20, encoded(feature_row(4, "2017-04-05", bot=True))),
        Incoming(T.features, 1, 21, b"garbage"),
    ]
    run(
        w.features_reader.handle(batch, w.features_reader.prepare(batch))
    )  # what the reader does with a fetched batch
    scores = [json.loads(v) for _, v in sink.records[T.churn_scores]]
    assert sorted(s["uid"] for s in scores) == [1, 2, 3]  # the bot is counted, not scored
    assert all(s["model_version"] == w.deps.churn.version for s in scores)
    assert [json.loads(v)["reason"] for _, v in sink.records[T.dead_letters]] == ["json"]
    assert w.features.counts.bots == 1
    pending = {k: v for k, v in w.tables["quality"].data.items() if k.startswith("s|")}
    assert sorted(uid for v in pending.values() for uid in v["u"]) == [1, 2, 3]
    assert {k.split("|")[2] for k in pending} == {"0", "1"}  # kept per source partition
    # Flushed to the changelog, each write at the partition of the input it came from.
    changelog = sink.placed[changelog_topic(app_id(PREFIX), "quality")]
    assert {json.loads(key): p for p, key, _ in changelog if json.loads(key).startswith("s|")} == {
        key: int(key.split("|")[2]) for key in pending
    }
    assert w.tables["quality"].pending == 0


def test_event_batches_fold_listening_and_recommend_at_the_tick(worker) -> None:
    w, sink = worker
    reader = w.events_reader
    assert set(reader.topics) == {T.plays, T.downloads}  # one reader, one consumer group, both topics
    first = [
        Incoming(T.plays, 0, 0, play(1, "2017-04-05", 1001)),
        Incoming(T.plays, 0, 1, play(1, "2017-04-05", 1002)),
        Incoming(T.downloads, 0, 0, download(1, "2017-04-05", 1003)),
        Incoming(T.plays, 1, 0, play(2, "2017-04-05", 1004)),
    ]
    run(reader.handle(first, reader.prepare(first)))
    assert w.events.counts.events == {"play": 3, "download": 1}
    assert not sink.records[T.recommendations]  # no tick yet: the day is open
    ticks = [Incoming(topic, p, 9, tick("2017-04-06")) for topic in (T.plays, T.downloads) for p in (0, 1)]
    run(reader.handle(ticks, reader.prepare(ticks)))
    recs = {json.loads(v)["uid"]: json.loads(v) for _, v in sink.records[T.recommendations]}
    assert sorted(recs) == [1, 2] and all(
        r["as_of"] == "2017-04-05" and r["source"] == "als" for r in recs.values()
    )
    assert len(recs[1]["items"]) == 3 and {1001, 1002, 1003}.isdisjoint(
        i["song_id"] for i in recs[1]["items"]
    )
    # The state went to its changelog, each write at the partition of the input it came from.
    changelog = sink.placed[changelog_topic(app_id(PREFIX), "listening")]
    by_key = {json.loads(key): p for p, key, _ in changelog}
    assert by_key["b|0|0"] == 0 and by_key["b|1|0"] == 1 and by_key["ticks|1"] == 1
    assert w.tables["listening"].changelog.pending == 0
