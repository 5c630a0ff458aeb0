"""The replay loop: days in order, each day's lines merged in event time, placed, sent in
transactions, then a tick for the next day on every partition of every event topic.

Exactly once into Kafka: every commit carries the ledger records of what each partition now
holds of the day (`ledger`), in the same transaction as the messages. A replay on the same
logs first reads the ledger: days done are skipped; in a day cut short each partition's items
already there are skipped (the placement and order are deterministic, so "the first n items
of this partition" names exactly the same lines again). A run killed at any moment leaves an
open transaction that the next run aborts: nothing is lost, nothing arrives twice.

Counts only what Kafka committed: sends are pending until their commit succeeds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from musicbox.events import Event, Tick, next_day
from musicbox.rawlogs import LogFile, ReadStats, iter_day
from musicbox.replay_summary import ReplaySummary
from producers.replay.errors import NotAcknowledgedError
from producers.replay.ledger import Entry, Ledger, LedgerRecord, Slot, day_fingerprint, encode
from producers.replay.pacing import Pacer
from producers.replay.routing import Router
from producers.replay.sink import Sink


@dataclass
class ReplayCounts:
    """What Kafka committed in this run, and what it held already."""

    lines: int = 0  # lines the replay took from the reader (a line read again counts again)
    events_by_type: Counter[str] = field(default_factory=Counter)
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    days_done: list[str] = field(default_factory=list)  # replayed and ticked by this run
    bytes: int = 0
    commits: int = 0
    already_in_kafka: int = 0  # lines of days cut short that an earlier run had committed
    aborted: int = 0  # lines read in a transaction Kafka did not take (read again later)
    days_already_done: list[str] = field(default_factory=list)  # held whole: not read again

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def days_completed(self) -> int:
        return len(self.days_done)

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())

    def summary(self) -> ReplaySummary:
        """The run's counts as the summary contract (it says whether they reconcile)."""
        return ReplaySummary(
            lines=self.lines,
            events_by_type=dict(self.events_by_type),
            dead_letters_by_reason=dict(self.dead_letters_by_reason),
            already_in_kafka=self.already_in_kafka,
            aborted=self.aborted,
            days_already_done=list(self.days_already_done),
            days_completed=len(self.days_done),
            ticks=self.ticks,
            commits=self.commits,
        )


class ReplayObserver(Protocol):
    def acknowledged(self, events: Counter[str], dead: Counter[str], nbytes: int, flush_s: float) -> None: ...

    def day_started(self, day: str) -> None: ...

    def day_done(self, day: str, ticks: int) -> None: ...


class NullObserver:
    def acknowledged(self, events: Counter[str], dead: Counter[str], nbytes: int, flush_s: float) -> None:
        pass

    def day_started(self, day: str) -> None:
        pass

    def day_done(self, day: str, ticks: int) -> None:
        pass


@dataclass
class Replay:
    sink: Sink
    router: Router
    pacer: Pacer
    ledger: Ledger = field(default_factory=Ledger)
    observer: ReplayObserver = field(default_factory=NullObserver)
    checkpoint_every: int = 50_000  # items per transaction at most
    commit_interval_s: float = 1.0  # a paced replay commits before any wait once this old
    clock: Callable[[], float] = time.monotonic
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    _pending_events: Counter[str] = field(default_factory=Counter, init=False)
    _pending_dead: Counter[str] = field(default_factory=Counter, init=False)
    _pending_bytes: int = field(default=0, init=False)
    _pending: int = field(default=0, init=False)
    _last_commit_s: float = field(default=0.0, init=False)
    _ledger_state: tuple[str, str, dict[Slot, int]] | None = field(default=None, init=False)

    def run(self, days: Sequence[tuple[dt.date, list[LogFile]]], stats: ReadStats) -> ReplayCounts:
        self._last_commit_s = self.clock()
        self.pacer.before_sleep = self._before_sleep
        slots = self.router.event_partitions()
        partitions, event_topics = self.router.partitions, self.router.topics.events
        try:
            for day, logs in days:
                iso, files = day.isoformat(), day_fingerprint(logs)
                status = self.ledger.day(iso, files, partitions, event_topics)
                if status.done:
                    if iso not in self.counts.days_done:  # not one an earlier attempt of this run did
                        self.counts.days_already_done.append(iso)
                    self.observer.day_done(iso, 0)
                    continue
                self._replay_day(iso, files, logs, stats, status.sent, slots)
        except NotAcknowledgedError:
            # The lines of the transaction Kafka did not take were read but are nowhere: a
            # replay run again (the command does, once Kafka answers) reads them again.
            self.counts.aborted += self._pending
            self._pending_events.clear()
            self._pending_dead.clear()
            self._pending_bytes = self._pending = 0
            raise
        return self.counts

    def _replay_day(
        self,
        iso: str,
        files: str,
        logs: list[LogFile],
        stats: ReadStats,
        already: dict[Slot, int],
        slots: list[Slot],
    ) -> None:
        self.observer.day_started(iso)
        index: dict[Slot, int] = {}  # items of this day placed on each partition so far
        self._ledger_state = (iso, files, index)
        send, place, pace = self.sink.send, self.router.place, self.pacer.pace
        every = self.checkpoint_every
        events, dead = self._pending_events, self._pending_dead
        counts = self.counts
        for item in iter_day(logs, stats):
            counts.lines += 1
            topic, partition, key, value = place(item)
            slot = (topic, partition)
            i = index.get(slot, 0)
            index[slot] = i + 1
            if i < already.get(slot, 0):
                counts.already_in_kafka += 1
                continue
            if isinstance(item, Event):
                pace(item.event_time_ms)
                events[item.type] += 1
            else:
                dead[item.reason] += 1
            self._pending += 1  # before the send: a send that raises leaves it pending, then lost
            send(topic, partition, key, value)
            self._pending_bytes += len(value)
            if self._pending >= every:
                self._commit()
        self._commit()  # the day's lines first: its ticks go out only once they are all in
        tick = Tick(next_day(iso)).to_json()
        for topic, partition in slots:
            send(topic, partition, None, tick)
            index.setdefault((topic, partition), 0)
        self._commit(done=True)
        self._ledger_state = None
        self.counts.ticks += len(slots)
        self.counts.days_done.append(iso)
        self.observer.day_done(iso, len(slots))

    def _ledger_records(self, done: bool) -> list[LedgerRecord]:
        if self._ledger_state is None:
            return []
        day, files, index = self._ledger_state
        of = self.router.partitions
        return [encode(day, (t, p), Entry(n, done, files, of[t])) for (t, p), n in sorted(index.items())]

    def _before_sleep(self, delay_s: float) -> None:
        """A paced replay is about to wait: commit what is pending if it would otherwise stay
        invisible to consumers for longer than `commit_interval_s`."""
        if self._pending and (
            delay_s >= self.commit_interval_s or self.clock() - self._last_commit_s >= self.commit_interval_s
        ):
            self._commit()

    def _commit(self, done: bool = False) -> None:
        started = self.clock()
        # Raises when Kafka did not take it all: nothing pending is counted, and the ledger
        # still says what the topics held before this transaction.
        self.sink.commit(self._ledger_records(done))
        self._last_commit_s = now = self.clock()
        c = self.counts
        c.events_by_type.update(self._pending_events)
        c.dead_letters_by_reason.update(self._pending_dead)
        c.bytes += self._pending_bytes
        c.commits += 1
        self.observer.acknowledged(
            self._pending_events, self._pending_dead, self._pending_bytes, now - started
        )
        # Cleared in place: the replay loop holds them under local names.
        self._pending_events.clear()
        self._pending_dead.clear()
        self._pending_bytes = self._pending = 0
