"""The stream job's per-stage wall time (`Laps`): each lap adds the time since the previous one."""

from __future__ import annotations

from streaming.aggregates.job import Laps


def test_laps_sum_the_time_since_the_previous_lap_per_stage() -> None:
    ticks = iter([10.0, 12.5, 13.0, 16.0])
    laps = Laps(clock=lambda: next(ticks))
    laps.lap("read")  # 10.0 -> 12.5
    laps.lap("buckets")  # 12.5 -> 13.0
    laps.lap("read")  # 13.0 -> 16.0, added to the first
    assert laps.stage_s == {"read": 5.5, "buckets": 0.5}
