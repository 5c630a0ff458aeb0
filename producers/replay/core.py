"""The replay loop: days in order, each day's lines merged in event time, sent, checkpointed,
then a tick for the next day on every partition of every event topic.

Counts only what Kafka acknowledged: sends are counted as pending and move to the totals at a
checkpoint (a flush that succeeded). A crash loses at most the pending ones, which `--resume`
sends again as identical messages (same key, same deterministic event_id).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from musicbox.events import Event, Tick, next_day
from musicbox.rawlogs import LogFile, ReadStats, iter_day
from musicbox.topics import Topics
from producers.replay.pacing import Pacer
from producers.replay.sink import Sink
from producers.replay.state import Position, StateFile


@dataclass
class ReplayCounts:
    """What Kafka acknowledged in this run."""

    events_by_type: Counter[str] = field(default_factory=Counter)
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    days_completed: int = 0
    bytes: int = 0
    skipped_on_resume: int = 0  # items of the resumed day acknowledged by an earlier run
    possible_duplicates: int = 0  # upper bound of messages an interrupted run may have sent twice

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())


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
    topics: Topics
    pacer: Pacer
    state: StateFile | None = None
    observer: ReplayObserver = field(default_factory=NullObserver)
    checkpoint_every: int = 50_000
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    _pending_events: Counter[str] = field(default_factory=Counter, init=False)
    _pending_dead: Counter[str] = field(default_factory=Counter, init=False)
    _pending_bytes: int = field(default=0, init=False)

    def run(
        self, days: Sequence[tuple[dt.date, list[LogFile]]], stats: ReadStats, start: Position | None = None
    ) -> ReplayCounts:
        if start is not None:
            # Whatever an interrupted run sent after its last checkpoint may arrive twice.
            self.counts.possible_duplicates = self.checkpoint_every
        for day, logs in days:
            iso = day.isoformat()
            if start is not None and iso < start.day:
                continue
            skip = start.items if start is not None and iso == start.day else 0
            self.counts.skipped_on_resume += skip
            self._replay_day(iso, logs, stats, skip)
        return self.counts

    def _replay_day(self, iso: str, logs: list[LogFile], stats: ReadStats, skip: int) -> None:
        self.observer.day_started(iso)
        n = skip
        send, topics, pace = self.sink.send, self.topics, self.pacer.pace
        for item in iter_day(logs, stats, skip=skip):
            if isinstance(item, Event):
                pace(item.event_time_ms)
                value = item.to_json()
                send(topics.for_event_type(item.type), str(item.uid).encode(), value)
                self._pending_events[item.type] += 1
            else:
                value = item.to_json()
                send(topics.dead_letters, None, value)
                self._pending_dead[item.reason] += 1
            self._pending_bytes += len(value)
            n += 1
            if n % self.checkpoint_every == 0:
                self._checkpoint(Position(iso, n))
        self._checkpoint(Position(iso, n))
        tick = Tick(next_day(iso)).to_json()
        ticks = 0
        for topic in topics.events:
            for partition in self.sink.partitions_for(topic):
                send(topic, None, tick, partition)
                ticks += 1
        self._checkpoint(Position(next_day(iso), 0))
        self.counts.ticks += ticks
        self.counts.days_completed += 1
        self.observer.day_done(iso, ticks)

    def _checkpoint(self, position: Position) -> None:
        started = time.monotonic()
        self.sink.flush()  # raises when anything was not acknowledged: nothing pending is counted
        flush_s = time.monotonic() - started
        self.counts.events_by_type.update(self._pending_events)
        self.counts.dead_letters_by_reason.update(self._pending_dead)
        self.counts.bytes += self._pending_bytes
        self.observer.acknowledged(self._pending_events, self._pending_dead, self._pending_bytes, flush_s)
        self._pending_events, self._pending_dead, self._pending_bytes = Counter(), Counter(), 0
        if self.state is not None:
            self.state.save(position)
