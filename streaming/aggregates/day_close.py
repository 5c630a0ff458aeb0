"""When is a day complete? The day-close rule of the streaming job (pure, table-tested).

A day D closes when either
- every partition of every event topic has carried a tick for a day after D (the replay sends
  the tick for D+1 once all of D is acknowledged), or
- every partition's event time has passed the end of D by the allowed lateness (a live feed
  without ticks). The minimum over partitions, not the maximum: a partition that lags behind
  must not see its day closed under it.
Days close in order, from the first day with an event, one after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from musicbox.events import DAY_MS


@dataclass(frozen=True)
class CloseState:
    """What the job knows about time, per partition ("topic/partition"), after a micro-batch."""

    closed_through: date | None = None  # the last day whose features were emitted
    first_day: date | None = None  # the earliest event day seen
    tick_ms: Mapping[str, int] = field(default_factory=dict)  # latest tick (start of its day), ms
    max_time_ms: Mapping[str, int] = field(default_factory=dict)  # latest event or tick time, ms

    def observe(self, marks: Sequence[tuple[str, int | None, int | None, int | None]]) -> CloseState:
        """Fold in one micro-batch's (partition, tick_ms, max_time_ms, min_event_ms) marks."""
        ticks, times, first = dict(self.tick_ms), dict(self.max_time_ms), self.first_day
        for part, tick_ms, max_time_ms, min_event_ms in marks:
            if tick_ms is not None:
                ticks[part] = max(tick_ms, ticks.get(part, tick_ms))
            if max_time_ms is not None:
                times[part] = max(max_time_ms, times.get(part, max_time_ms))
            if min_event_ms is not None:
                day = day_of(min_event_ms)
                first = day if first is None else min(first, day)
        return replace(self, tick_ms=ticks, max_time_ms=times, first_day=first)


def day_of(time_ms: int) -> date:
    return date(1970, 1, 1) + timedelta(days=time_ms // DAY_MS)


def day_end_ms(day: date) -> int:
    return ((day - date(1970, 1, 1)).days + 1) * DAY_MS


def days_to_close(state: CloseState, partitions: Sequence[str], allowed_lateness_ms: int) -> list[date]:
    """The days that may close now, oldest first (empty when none)."""
    if state.first_day is None or not partitions:
        return []
    limit_ms = -1
    if all(p in state.tick_ms for p in partitions):
        limit_ms = min(state.tick_ms[p] for p in partitions)
    if all(p in state.max_time_ms for p in partitions):
        limit_ms = max(limit_ms, min(state.max_time_ms[p] for p in partitions) - allowed_lateness_ms)
    start = state.first_day if state.closed_through is None else state.closed_through + timedelta(days=1)
    days = []
    day = start
    while day_end_ms(day) <= limit_ms:
        days.append(day)
        day += timedelta(days=1)
    return days
