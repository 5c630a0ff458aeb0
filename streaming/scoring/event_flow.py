"""The recommendation side of the worker: plays and downloads -> listening; ticks -> refreshed top-N.

A batch holds plays and downloads of several partitions. Its events fold into the listening
state at once (`listening.fold`: numpy, one pass); events a batch read again already counted
are skipped by offset. Then its ticks: a tick closes days on its partition (see `ticks`);
day by day, every user of that partition with pending activity on a newly closed day gets a
recommendation as of that day, from its ratings over the window ending on it (activity that
arrives for a day already closed refreshes the latest one). Closing is driven by state, not by
the tick that moved it: any tick (a re-read one after a restart too) closes whatever is still
pending up to the partition's closed day.

Order, for at least once without loss: recommendations and dead letters are published and
acknowledged, then the state's changelog is flushed, and only then does the reader commit the
batch. A crash anywhere before re-reads the batch: its events fold again (the restored state
has not seen them) and its days close again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.registry import LoadedAls
from musicbox.events import day_start_ms
from musicbox.topics import Topics
from streaming.scoring.event_columns import DOWNLOAD, PLAY, DecodedEvents, decode_events
from streaming.scoring.listening import Rows, fold, user_ratings
from streaming.scoring.listening_state import ListeningState, marks_of
from streaming.scoring.messages import Incoming, dead_letter
from streaming.scoring.metrics import WorkerMetrics
from streaming.scoring.recommender import CloseTimes, Recommendations, Recommender
from streaming.scoring.reload import Served
from streaming.scoring.sink import Sink
from streaming.scoring.ticks import TickLedger

CLOSE_CHUNK_USERS = 2_000  # users per chunk of a day close (ranked on a thread, then published)
RANKING_THREADS = 2  # chunks ranked at once: the event loop itself only publishes


@dataclass
class EventCounts:
    events: Counter[str] = field(default_factory=Counter)  # play, download, tick
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # by (input, reason)
    days_closed: int = 0
    recommendations: Counter[str] = field(default_factory=Counter)  # by source
    without_model: int = 0  # users closed while no ALS model was served
    fold_s: float = 0.0  # decoding and folding events into the listening state
    close: CloseTimes = field(default_factory=CloseTimes)


@dataclass(frozen=True)
class PreparedEvents:
    decoded: DecodedEvents
    decode_s: float


def close_rounds(pending: Sequence[str], done: str | None, closed: str) -> list[str]:
    """The as-of days of a close: each pending day after the last close, in order; when only
    days closed before are pending (late activity), the closed day; none when nothing is pending."""
    fresh = [d for d in sorted(pending) if d <= closed and (done is None or d > done)]
    if fresh:
        return fresh
    return [closed] if any(d <= closed for d in pending) else []


class EventFlow:
    def __init__(
        self,
        state: ListeningState,
        ledger: TickLedger,
        recommender: Recommender,
        sink: Sink,
        topics: Topics,
        metrics: WorkerMetrics | None = None,
        perf_s: Callable[[], float] = time.perf_counter,
        chunk_users: int = CLOSE_CHUNK_USERS,
    ) -> None:
        self.state = state
        self.chunk_users = chunk_users
        self.ledger = ledger
        self.recommender = recommender
        self.sink = sink
        self.topics = topics
        self.metrics = metrics
        self.perf_s = perf_s
        self.expected = {topics.plays: PLAY, topics.downloads: DOWNLOAD}
        self.counts = EventCounts()
        self.latest_closed: str | None = None
        self._ranking: ThreadPoolExecutor | None = None

    def prepare(self, batch: Sequence[Incoming]) -> PreparedEvents:
        """Decode a batch (on the event loop, while the batch before waits for Kafka)."""
        started = self.perf_s()
        decoded = decode_events(batch, self.expected)
        return PreparedEvents(decoded, self.perf_s() - started)

    async def handle(self, batch: Sequence[Incoming], prepared: PreparedEvents | None = None) -> None:
        """A batch from the play and download topics, each partition in offset order.
        Safe to repeat after a failure: events fold once (offsets), closes are driven by state."""
        prepared = prepared if prepared is not None else self.prepare(batch)
        started = self.perf_s() - prepared.decode_s
        decoded = prepared.decoded
        counts = EventCounts()
        events = decoded.events
        fresh = events.where(self.state.unseen(events))
        marks = marks_of(fresh)
        for partition, days in fold(fresh).items():
            self.state.add(partition, days, marks[partition])
        downloads = int(events.download.sum())
        counts.events.update(+Counter({PLAY: len(events) - downloads, DOWNLOAD: downloads}))
        counts.rejected.update((self._input(batch[r.position].topic), r.reason) for r in decoded.rejects)
        counts.fold_s = self.perf_s() - started
        ticked = set()
        for tick in decoded.ticks:
            counts.events["tick"] += 1
            if self.ledger.observe(tick.topic, tick.partition, tick.date) is not None:
                counts.days_closed += 1
            ticked.add(tick.partition)
        for partition in sorted(ticked):
            await self.close(partition, counts)
        if decoded.rejects:
            letters = [
                (None, dead_letter(r.reason, batch[r.position].value, batch[r.position].source))
                for r in decoded.rejects
            ]
            await self.sink.publish(self.topics.dead_letters, letters)
        await self.state.flush()
        self._account(counts)

    async def close(self, partition: int, counts: EventCounts) -> int:
        """Refresh the users of `partition` with pending activity up to its closed day; returns
        how many recommendations were due. Day by day: when ticks close several days at once (one
        input read ahead of the other), each user active on each of those days gets that day's
        list. Activity on a day closed earlier (late) goes out with the first day closed now."""
        closed = self.ledger.closed(partition)
        if closed is None:
            return 0
        rounds = close_rounds(self.state.pending_days(partition, closed), self.ledger.done(partition), closed)
        served = self.recommender.served()  # one model for the whole close
        refreshed = 0
        for day in rounds:
            refreshed += await self._close_day(partition, day, served, counts)
        self.ledger.mark_done(partition, closed)
        self.state.closed(partition, closed)
        if self.latest_closed is None or closed > self.latest_closed:
            self.latest_closed = closed
            if self.metrics is not None:
                self.metrics.last_closed_day.set(day_start_ms(closed) / 1000)
        return refreshed

    async def _close_day(
        self, partition: int, day: str, served: Served[LoadedAls] | None, counts: EventCounts
    ) -> int:
        """Recommendations as of `day` for the users of `partition` with pending activity up to it,
        in chunks ranked on `RANKING_THREADS` threads (numpy and implicit release the GIL) while
        the event loop publishes, in order, the chunks already ranked."""
        times, clock = counts.close, self.perf_s
        started = clock()
        users = self.state.due(partition, day)
        window = self.state.window(partition, day)  # the days' rows, read-only from here on
        times.select_s += clock() - started
        if served is None:
            counts.without_model += len(users)
        else:
            size = self.chunk_users
            chunks = [users[s : s + size] for s in range(0, len(users), size)]
            ahead: deque[asyncio.Future[tuple[Recommendations, CloseTimes]]] = deque()
            try:
                for n in range(len(chunks)):
                    while len(ahead) < RANKING_THREADS and n + len(ahead) < len(chunks):
                        ahead.append(self._rank(chunks[n + len(ahead)], window, day, served))
                    recs, spent = await ahead.popleft()
                    times.add(spent)
                    sent = clock()
                    await self.sink.publish(self.topics.recommendations, recs.records)
                    times.publish_s += clock() - sent
                    counts.recommendations.update(recs.sources)
            finally:
                if ahead:  # a publish failed: let the threads finish before the retry
                    await asyncio.wait(ahead)
        times.users += len(users)
        self.state.refreshed(partition, day)
        return len(users)

    def _rank(
        self, users: np.ndarray, window: list[Rows], day: str, served: Served[LoadedAls]
    ) -> asyncio.Future[tuple[Recommendations, CloseTimes]]:
        """A chunk's ratings, fold-in, ranking and messages, on a ranking thread."""
        if self._ranking is None:
            self._ranking = ThreadPoolExecutor(RANKING_THREADS, thread_name_prefix="recs-ranking")

        def work() -> tuple[Recommendations, CloseTimes]:
            spent = CloseTimes()
            started = self.perf_s()
            ratings = user_ratings(users, window)
            spent.select_s = self.perf_s() - started
            return self.recommender.recommend(served, day, ratings, spent), spent

        return asyncio.get_running_loop().run_in_executor(self._ranking, work)

    def _account(self, counts: EventCounts) -> None:
        """Add a handled batch's counts to the totals and the metrics (only once it succeeded)."""
        total = self.counts
        total.events.update(counts.events)
        total.rejected.update(counts.rejected)
        total.days_closed += counts.days_closed
        total.recommendations.update(counts.recommendations)
        total.without_model += counts.without_model
        total.fold_s += counts.fold_s
        total.close.add(counts.close)
        if self.metrics is None:
            return
        m = self.metrics
        for kind, n in counts.events.items():
            m.events.labels(kind).inc(n)
        for (source, reason), n in counts.rejected.items():
            m.rejected.labels(source, reason).inc(n)
        m.days_closed.inc(counts.days_closed)
        for rec_source, n in counts.recommendations.items():
            m.recommendations.labels(rec_source).inc(n)
        m.last_input.set_to_current_time()

    def _input(self, topic: str) -> str:
        """The `input` label of a rejected message: "plays" or "downloads", as before."""
        return f"{self.expected[topic]}s"
