"""The worker's two flows without Faust or Kafka: a list sink and dict stores stand in for them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models.registry import LoadedAls, LoadedChurn, load_als, load_churn
from musicbox.topics import Topics
from streaming.scoring.app import EXIT_FAILED_BATCH, handle_with_retry
from streaming.scoring.errors import NoModelError
from streaming.scoring.event_flow import EventFlow
from streaming.scoring.feature_flow import FeatureFlow
from streaming.scoring.listening_state import ListeningState
from streaming.scoring.messages import Incoming
from streaming.scoring.quality import LiveQuality
from streaming.scoring.recommender import Recommender
from streaming.scoring.reload import Served
from streaming.scoring.service import ScoringService
from streaming.scoring.sink import ListSink, Placed, Record
from streaming.scoring.state import DictStore
from streaming.scoring.ticks import TickLedger
from tests.fixtures.scoring import (
    download,
    encoded,
    feature_row,
    play,
    save_als_model,
    save_churn_model,
    tick,
)

T = Topics("t.")
REC_FIELDS = {"uid", "as_of", "items", "model_version", "source", "generated_at_ms"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Served[LoadedChurn], Served[LoadedAls]]:
    root: Path = tmp_path_factory.mktemp("models")
    churn, als = save_churn_model(root), save_als_model(root)
    return Served(load_churn(root), churn), Served(load_als(root), als)


def feature_flow(churn: Served[LoadedChurn], sink: ListSink, window_d: int = 2) -> FeatureFlow:
    return FeatureFlow(ScoringService(lambda: churn), LiveQuality(DictStore(), window_d), sink, T)


def event_flow(als: Served[LoadedAls] | None, sink: ListSink) -> EventFlow:
    state = ListeningState("t-listening-changelog", sink, 30)
    return EventFlow(
        state,
        TickLedger([T.plays, T.downloads], state.ticks),
        Recommender(lambda: als, top_n=5, clock_ms=lambda: 42),
        sink,
        T,
    )


def features(
    day: str, uids: range, start: int, partition: int = 0, c: int = 1, active: set[int] | None = None
):
    return [
        Incoming(
            T.features,
            partition,
            start + i,
            encoded(feature_row(uid, day, computed_at_ms=c, active=uid in (active or set()))),
        )
        for i, uid in enumerate(uids)
    ]


def test_a_batch_prepared_before_a_model_is_served_is_scored_on_its_retry(models) -> None:
    # `prepare` starts the model on the batch at once; with no model served that run fails, and
    # the retry (handle_with_retry calls `handle` again with the same prepared batch) scores it.
    churn, _ = models
    served: dict[str, Served[LoadedChurn] | None] = {"now": None}
    sink = ListSink()
    flow = FeatureFlow(ScoringService(lambda: served["now"]), LiveQuality(DictStore(), 2), sink, T)
    batch = features("2017-04-01", range(1, 6), 0)
    prepared = flow.prepare(batch)
    with pytest.raises(NoModelError):
        asyncio.run(flow.handle(batch, prepared))
    assert not sink.records[T.churn_scores]
    served["now"] = churn
    asyncio.run(flow.handle(batch, prepared))
    assert sorted(json.loads(v)["uid"] for _, v in sink.records[T.churn_scores]) == [1, 2, 3, 4, 5]


def test_feature_batch_to_scores_and_dead_letters(models) -> None:
    churn, _ = models
    sink = ListSink()
    flow = feature_flow(churn, sink)
    batch = features("2017-04-01", range(1, 6), 0)
    batch.append(Incoming(T.features, 1, 77, b"{oops"))
    bot = feature_row(9, "2017-04-01", bot=True)
    batch.append(Incoming(T.features, 1, 78, encoded(bot)))
    asyncio.run(flow.handle(batch))
    assert [k for k, _ in sink.records[T.churn_scores]] == [b"1", b"2", b"3", b"4", b"5"]
    [(_, letter)] = sink.records[T.dead_letters]
    assert json.loads(letter) == {
        "stage": "worker",
        "reason": "json",
        "raw": "{oops",
        "source": "t.features/1/77",
    }
    c = flow.counts
    assert (c.rows, c.scored, c.bots, c.rejected["json"]) == (6, 5, 1, 1)


def test_quality_reports_follow_the_label_window(models) -> None:
    # Day by day (window 2): users 1-10 scored on 04-01; 1-5 come back on 04-02. Once the rows
    # of 04-03 are known complete (a 04-04 write arrives), 04-01 is reported, keyed by version.
    churn, _ = models
    sink = ListSink()
    flow = feature_flow(churn, sink, window_d=2)
    days = ["2017-04-01", "2017-04-02", "2017-04-03", "2017-04-04"]
    for n, day in enumerate(days):
        asyncio.run(flow.handle(features(day, range(1, 11), 100 * n, c=n + 1, active=set(range(1, 6)))))
        assert bool(sink.records[T.model_quality]) == (day == "2017-04-04")
    [(key, raw)] = sink.records[T.model_quality]
    report = json.loads(raw)
    assert key == churn.version.encode()
    assert {k: report[k] for k in ("as_of", "model_version", "users", "churn_rate")} == {
        "as_of": "2017-04-01",
        "model_version": churn.version,
        "users": 10,
        "churn_rate": 0.5,
    }
    assert {"roc_auc", "precision", "recall", "threshold"} <= set(report)


def test_tick_closes_the_day_and_recommends(models) -> None:
    _, als = models
    sink = ListSink()
    flow = event_flow(als, sink)
    day = "2017-04-02"
    plays = [Incoming(T.plays, 0, i, play(uid, day, 1001 + i)) for i, uid in enumerate((1, 2))]
    plays.append(Incoming(T.plays, 0, 2, play(900, day, 77_777)))  # a new user of songs ALS never saw
    plays.append(Incoming(T.plays, 0, 3, tick("2017-04-03")))
    asyncio.run(flow.handle(plays))
    assert not sink.records[T.recommendations]  # downloads has not ticked: the day is not closed
    asyncio.run(
        flow.handle(
            [
                Incoming(T.downloads, 0, 0, download(2, day, 1005)),
                Incoming(T.downloads, 0, 1, tick("2017-04-03")),
            ]
        )
    )
    recs = {int(k or b""): json.loads(v) for k, v in sink.records[T.recommendations]}
    assert sorted(recs) == [1, 2, 900]
    for uid, rec in recs.items():
        assert (
            rec["uid"] == uid
            and set(rec) == REC_FIELDS
            and rec["as_of"] == day
            and rec["model_version"] == als.version
        )
        assert len(rec["items"]) == 5
        scores = [item["score"] for item in rec["items"]]
        assert scores == sorted(scores, reverse=True)  # best first
    assert recs[1]["source"] == "als" and 1001 not in {
        i["song_id"] for i in recs[1]["items"]
    }  # heard: filtered
    assert {1001 + 1, 1005}.isdisjoint({i["song_id"] for i in recs[2]["items"]})
    assert recs[900]["source"] == "popularity-fallback"
    assert flow.counts.recommendations == {"als": 2, "popularity-fallback": 1}


def _as_of(sink: ListSink) -> list[tuple[int, str]]:
    return [(int(k or b""), json.loads(v)["as_of"]) for k, v in sink.records[T.recommendations]]


def test_days_closed_at_once_are_recommended_day_by_day(models) -> None:
    # Plays read three days ahead of downloads: one downloads tick then closes three days.
    # Each user active on each of them gets that day's list, with that day's ratings window.
    _, als = models
    sink = ListSink()
    flow = event_flow(als, sink)
    plays = []
    for i, (uid, day, nxt) in enumerate(
        [(1, "2017-04-02", "2017-04-03"), (2, "2017-04-03", "2017-04-04"), (1, "2017-04-04", "2017-04-05")]
    ):
        plays += [
            Incoming(T.plays, 0, 2 * i, play(uid, day, 1001 + i)),
            Incoming(T.plays, 0, 2 * i + 1, tick(nxt)),
        ]
    asyncio.run(flow.handle(plays))
    assert not sink.records[T.recommendations]
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-05"))]))
    assert _as_of(sink) == [(1, "2017-04-02"), (2, "2017-04-03"), (1, "2017-04-04")]
    assert len(flow.state.due(0, "2017-04-04")) == 0


def test_late_activity_refreshes_the_latest_closed_day_never_an_older_one(models) -> None:
    _, als = models
    sink = ListSink()
    flow = event_flow(als, sink)
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-04"))]))
    first = [
        Incoming(T.plays, 0, 0, play(1, "2017-04-03", 1001)),
        Incoming(T.plays, 0, 1, tick("2017-04-04")),
    ]
    asyncio.run(flow.handle(first))
    assert _as_of(sink) == [(1, "2017-04-03")]
    # A play of 2017-04-02 (closed) arrives: user 1's list as of the latest closed day is
    # refreshed when the next tick comes, never one as of 2017-04-02.
    late = [
        Incoming(T.plays, 0, 2, play(1, "2017-04-02", 1003)),
        Incoming(T.plays, 0, 3, play(2, "2017-04-04", 1004)),
        Incoming(T.plays, 0, 4, tick("2017-04-05")),
    ]
    asyncio.run(flow.handle(late))
    assert _as_of(sink)[1:] == [(1, "2017-04-03")]
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 1, tick("2017-04-05"))]))
    assert _as_of(sink)[2:] == [(2, "2017-04-04")]


def test_a_re_read_batch_repeats_recommendations_but_not_ratings(models) -> None:
    # After a restart before the commit, the same messages come again: the day is closed
    # again from state (nothing open: nothing re-sent) and the ratings do not double.
    _, als = models
    sink = ListSink()
    flow = event_flow(als, sink)
    batch = [
        Incoming(T.plays, 0, 0, play(1, "2017-04-02", 1001)),
        Incoming(T.plays, 0, 1, tick("2017-04-03")),
    ]
    asyncio.run(flow.handle(batch))
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-03"))]))
    first = flow.state.ratings(0, np.array([1]), "2017-04-02").of(0)
    asyncio.run(flow.handle(batch))
    assert flow.state.ratings(0, np.array([1]), "2017-04-02").of(0) == first == {1001: 0.4}
    assert len(sink.records[T.recommendations]) == 1


def test_without_an_als_model_days_still_close(models) -> None:
    sink = ListSink()
    flow = event_flow(None, sink)
    asyncio.run(
        flow.handle(
            [
                Incoming(T.plays, 0, 0, play(1, "2017-04-02", 1001)),
                Incoming(T.plays, 0, 1, tick("2017-04-03")),
            ],
        )
    )
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-03"))]))
    assert not sink.records[T.recommendations] and flow.counts.without_model == 1


def test_a_failing_batch_is_retried_then_ends_the_process_uncommitted() -> None:
    attempts: list[int] = []
    exits: list[int] = []

    async def fails() -> None:
        attempts.append(1)
        raise ConnectionError("broker gone")

    asyncio.run(handle_with_retry(fails, exits.append, delays_s=(0.0, 0.0)))
    assert len(attempts) == 3 and exits == [EXIT_FAILED_BATCH]


def test_a_batch_that_recovers_is_not_fatal() -> None:
    exits: list[int] = []
    outcomes = iter([ConnectionError("blip"), None])

    async def flaky() -> None:
        error = next(outcomes)
        if error:
            raise error

    asyncio.run(handle_with_retry(flaky, exits.append, delays_s=(0.0,)))
    assert exits == []


class _OrderedSink(ListSink):
    """A list sink that also remembers the order of its publish calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        self.calls.append(("publish", topic, len(records)))
        await super().publish(topic, records)

    async def publish_at(self, topic: str, records: Sequence[Placed]) -> None:
        self.calls.append(("publish_at", topic, len(records)))
        await super().publish_at(topic, records)


def _feature_marker(day: str, partition: int, offset: int) -> Incoming:
    from musicbox.events import encode_json
    from musicbox.markers import feature_day_marker

    return Incoming(T.features, partition, offset, encode_json(feature_day_marker(day, partition, 2, 0, 0)))


def test_a_days_marker_follows_its_scores_with_what_the_worker_scored(models) -> None:
    churn, _ = models
    sink = _OrderedSink()
    flow = feature_flow(churn, sink)
    day = "2017-04-01"
    batch = features(day, range(1, 4), 0, partition=0) + features(day, range(4, 6), 0, partition=1)
    batch.append(Incoming(T.features, 1, 2, encoded(feature_row(9, day, bot=True))))
    batch += [_feature_marker(day, 0, 3), _feature_marker(day, 1, 3)]
    asyncio.run(flow.handle(batch))
    # The markers are not rows: nothing rejected, and they come after the scores are published.
    assert not sink.records[T.dead_letters] and flow.counts.rows == 6
    assert [c[:2] for c in sink.calls] == [("publish", T.churn_scores), ("publish_at", T.churn_scores)]
    markers = {p: json.loads(v or b"") for p, k, v in sink.placed[T.churn_scores] if k is None}
    assert {p: (m["type"], m["as_of"], m["scored"], m["bots_skipped"]) for p, m in markers.items()} == {
        0: ("day_complete", day, 3, 0),
        1: ("day_complete", day, 2, 1),
    }
    assert {m["model_version"] for m in markers.values()} == {churn.version}


def test_rows_read_again_are_counted_once_and_a_new_worker_goes_on_counting(models) -> None:
    # A batch handled twice (its commit lost in a crash) counts once; a worker restarted on the
    # same store (the changelog) goes on from the tally it finds.
    churn, _ = models
    store = DictStore()
    day = "2017-04-01"
    first = FeatureFlow(ScoringService(lambda: churn), LiveQuality(store, 2), ListSink(), T)
    batch = features(day, range(1, 5), 0)
    asyncio.run(first.handle(batch))
    asyncio.run(first.handle(batch))
    sink = ListSink()
    second = FeatureFlow(ScoringService(lambda: churn), LiveQuality(store, 2), sink, T)
    asyncio.run(second.handle([*features(day, range(5, 7), 4), _feature_marker(day, 0, 6)]))
    [(_, _, value)] = sink.placed[T.churn_scores]
    assert json.loads(value or b"")["scored"] == 6


def test_a_close_whose_publish_fails_is_repeated_whole_on_the_retry(models) -> None:
    # Five users closed in chunks of two; the second chunk's publish fails once. The retry of the
    # batch (the same prepared batch, as handle_with_retry does) sends every user's list: nothing
    # is lost, a chunk may go twice, and the ratings do not double.
    _, als = models

    class FailsOnce(ListSink):
        publishes = 0

        async def publish(self, topic, records) -> None:
            if topic == T.recommendations:
                self.publishes += 1
                if self.publishes == 2:
                    raise ConnectionError("broker gone")
            await super().publish(topic, records)

    sink = FailsOnce()
    state = ListeningState("t-listening-changelog", sink, 30)
    flow = EventFlow(
        state,
        TickLedger([T.plays, T.downloads], state.ticks),
        Recommender(lambda: als, top_n=5, clock_ms=lambda: 42),
        sink,
        T,
        chunk_users=2,
    )
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-03"))]))
    batch = [Incoming(T.plays, 0, uid, play(uid, "2017-04-02", 1001)) for uid in range(1, 6)]
    batch.append(Incoming(T.plays, 0, 9, tick("2017-04-03")))
    prepared = flow.prepare(batch)
    recorded = len(sink.placed["t-listening-changelog"])
    with pytest.raises(ConnectionError):
        asyncio.run(flow.handle(batch, prepared))
    assert len(sink.placed["t-listening-changelog"]) == recorded  # nothing of the batch is recorded
    asyncio.run(flow.handle(batch, prepared))
    sent = [uid for uid, _ in _as_of(sink)]
    assert sorted(set(sent)) == [1, 2, 3, 4, 5] and len(sent) == 7  # users 1 and 2 twice
    assert state.ratings(0, np.array([3]), "2017-04-02").of(0) == pytest.approx({1001: 0.4})
    assert len(state.due(0, "2017-04-02")) == 0 and flow.counts.recommendations["als"] == 5


def test_with_a_candidate_set_only_the_most_popular_songs_are_ranked(models) -> None:
    # MUSICBOX_WORKER_CANDIDATE_SONGS: the lists come from the C most popular songs of the
    # model's training window, the user's own songs still left out.
    _, als = models
    sink = ListSink()
    flow = event_flow(als, sink)
    flow.recommender.candidate_songs = 6
    popular = set(als.model.popularity.song_ids[:6].tolist())
    batch = [
        Incoming(T.plays, 0, 0, play(1, "2017-04-02", 1001)),
        Incoming(T.plays, 0, 1, tick("2017-04-03")),
    ]
    asyncio.run(flow.handle(batch))
    asyncio.run(flow.handle([Incoming(T.downloads, 0, 0, tick("2017-04-03"))]))
    [(_, raw)] = sink.records[T.recommendations]
    songs = {i["song_id"] for i in json.loads(raw)["items"]}
    assert songs and songs <= popular - {1001}
