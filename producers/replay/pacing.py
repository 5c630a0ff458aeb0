"""Pacing maths of the replay: event time to wall time at a given speed (pure, clock injected)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def wall_delay_s(
    event_time_ms: int, anchor_event_ms: int, anchor_wall_s: float, speed: float, now_s: float
) -> float:
    """Seconds to wait before sending an event so that event time runs `speed` x wall time.

    `speed` is event seconds per wall second (86,400 = a day a second). Never negative.
    """
    target_s = anchor_wall_s + (event_time_ms - anchor_event_ms) / 1000.0 / speed
    return max(0.0, target_s - now_s)


@dataclass
class Pacer:
    """Holds a replay to `speed`; `speed=None` is as fast as Kafka takes it (--max-speed).

    Checks the clock once per `check_every` events: a wall-clock read per event would cost more
    than the pacing is worth at hundreds of thousands of events a second.
    """

    speed: float | None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    check_every: int = 256
    before_sleep: Callable[[float], None] | None = None  # told the delay before each wait
    _anchor: tuple[int, float] | None = field(default=None, init=False)
    _n: int = field(default=0, init=False)
    slept_s: float = field(default=0.0, init=False)

    def pace(self, event_time_ms: int) -> None:
        if self.speed is None:
            return
        if self._anchor is None:
            self._anchor = (event_time_ms, self.clock())
            return
        self._n += 1
        if self._n % self.check_every:
            return
        delay = wall_delay_s(event_time_ms, self._anchor[0], self._anchor[1], self.speed, self.clock())
        if delay > 0:
            if self.before_sleep is not None:
                self.before_sleep(delay)  # the replay commits what a wait would hold back
            self.sleep(delay)
            self.slept_s += delay
