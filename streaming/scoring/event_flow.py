"""The recommendation side of the worker: plays and downloads -> ratings; ticks -> refreshed top-N.

Events fold into each user's open days (one table write per user and batch). A tick closes
days on its partition (see `ticks`); then, day by day, every user of that partition with open
activity on a newly closed day gets a recommendation as of that day, from its ratings over the
window ending on it (activity that arrives for a day already closed refreshes the latest one).
Closing is driven by state, not by the tick that moved it: any tick (a re-read one after a
restart too) closes whatever is still open up to the partition's closed day. A user's state
moves only after its recommendation is acknowledged, so a crash repeats, never loses, one.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.registry import LoadedAls
from musicbox.events import day_start_ms
from musicbox.topics import Topics
from streaming.scoring.messages import (
    EventRecord,
    Incoming,
    TickRecord,
    dead_letter,
    encode,
    key_of,
    parse_event,
)
from streaming.scoring.metrics import WorkerMetrics
from streaming.scoring.ratings import UserRatings
from streaming.scoring.recommender import Recommender
from streaming.scoring.reload import Served
from streaming.scoring.sink import Record, Sink
from streaming.scoring.ticks import TickLedger

CLOSE_CHUNK_USERS = 200  # users per published chunk of a day close; the event loop breathes between


@dataclass
class EventCounts:
    events: Counter[str] = field(default_factory=Counter)  # play, download, tick
    rejected: Counter[str] = field(default_factory=Counter)
    days_closed: int = 0
    recommendations: Counter[str] = field(default_factory=Counter)  # by source
    without_model: int = 0  # users closed while no ALS model was served


class EventFlow:
    def __init__(
        self,
        ratings: UserRatings,
        ledger: TickLedger,
        recommender: Recommender,
        sink: Sink,
        topics: Topics,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.ratings = ratings
        self.ledger = ledger
        self.recommender = recommender
        self.sink = sink
        self.topics = topics
        self.metrics = metrics
        self.counts = EventCounts()
        self.latest_closed: str | None = None

    async def handle(self, batch: Sequence[Incoming], event_type: str) -> None:
        """A batch from the topic of `event_type` ("play" or "download"), in offset order.
        Safe to repeat after a failure: events fold once (offsets), closes are driven by state."""
        source = f"{event_type}s"
        counts = EventCounts()
        pending: dict[int, list[tuple[int, EventRecord]]] = defaultdict(list)
        letters: list[Record] = []
        for m in batch:
            parsed = parse_event(m.value, event_type)
            if isinstance(parsed, str):
                letters.append((None, dead_letter(parsed, m.value, m.source)))
                counts.rejected[parsed] += 1
            elif isinstance(parsed, TickRecord):
                self._fold(source, pending)  # everything before the tick belongs to the days it closes
                counts.events["tick"] += 1
                if self.ledger.observe(m.topic, m.partition, parsed.date) is not None:
                    counts.days_closed += 1
                await self.close(m.partition, counts)
            else:
                pending[m.partition].append((m.offset, parsed))
                counts.events[parsed.type] += 1
        self._fold(source, pending)
        if letters:
            await self.sink.publish(self.topics.dead_letters, letters)
        self._account(source, counts)

    def _fold(self, source: str, pending: dict[int, list[tuple[int, EventRecord]]]) -> None:
        for partition, events in pending.items():
            self.ratings.add(partition, source, events)
        pending.clear()

    async def close(self, partition: int, counts: EventCounts) -> int:
        """Refresh the users of `partition` with open activity up to its closed day; returns how
        many recommendations were due. Day by day: when ticks close several days at once (one
        input read ahead of the other), each user active on each of those days gets that day's
        list. Activity on a day closed earlier (late) goes out with the first day closed now."""
        closed = self.ledger.closed(partition)
        if closed is None:
            return 0
        done = self.ledger.done(partition)
        days = self.ratings.open_days_until(partition, closed)
        fresh = [d for d in days if done is None or d > done]
        served = self.recommender.served()  # one model for the whole close
        # Only late activity: it goes out as of the closed day.
        rounds = fresh if fresh else [closed] if days else []
        refreshed = 0
        for day in rounds:
            refreshed += await self._close_day(partition, day, served, counts)
        self.ledger.mark_done(partition, closed)
        if self.latest_closed is None or closed > self.latest_closed:
            self.latest_closed = closed
            if self.metrics is not None:
                self.metrics.last_closed_day.set(day_start_ms(closed) / 1000)
        return refreshed

    async def _close_day(
        self, partition: int, day: str, served: Served[LoadedAls] | None, counts: EventCounts
    ) -> int:
        """Recommendations as of `day` for the users of `partition` with open activity up to it."""
        users = self.ratings.due(partition, day)
        for start in range(0, len(users), CLOSE_CHUNK_USERS):
            chunk = users[start : start + CLOSE_CHUNK_USERS]
            if served is not None:
                recs = self.recommender.recommend(
                    served, day, [(uid, self.ratings.ratings(uid, day)) for uid in chunk]
                )
                records = [(key_of(uid), encode(r.value)) for uid, r in zip(chunk, recs, strict=True)]
                await self.sink.publish(self.topics.recommendations, records)
                counts.recommendations.update(r.source for r in recs)
            else:
                counts.without_model += len(chunk)
            for uid in chunk:
                self.ratings.close(partition, uid, day)
            await asyncio.sleep(0)  # let the churn side score between chunks of a large close
        return len(users)

    def _account(self, source: str, counts: EventCounts) -> None:
        """Add a handled batch's counts to the totals and the metrics (only once it succeeded)."""
        total = self.counts
        total.events.update(counts.events)
        total.rejected.update(counts.rejected)
        total.days_closed += counts.days_closed
        total.recommendations.update(counts.recommendations)
        total.without_model += counts.without_model
        if self.metrics is None:
            return
        m = self.metrics
        for kind, n in counts.events.items():
            m.events.labels(kind).inc(n)
        for reason, n in counts.rejected.items():
            m.rejected.labels(source, reason).inc(n)
        m.days_closed.inc(counts.days_closed)
        for rec_source, n in counts.recommendations.items():
            m.recommendations.labels(rec_source).inc(n)
        m.last_input.set_to_current_time()
