"""The day-close rule, as timelines: ticks close a day; else event time past the end + lateness."""

from __future__ import annotations

from datetime import date

import pytest

from musicbox.events import day_start_ms
from streaming.aggregates.day_close import CloseState, day_end_ms, day_of, days_to_close

P = ["plays/0", "plays/1"]
D1, D2, D3 = date(2017, 3, 30), date(2017, 3, 31), date(2017, 4, 1)
HOUR_MS = 3_600_000


def ms(day: date, hours: float = 0) -> int:
    return day_start_ms(day) + int(hours * HOUR_MS)


@pytest.mark.parametrize(
    ("ticks", "times", "closed", "lateness_h", "expected"),
    [
        # Both partitions ticked D2: D1 is complete.
        ({"plays/0": ms(D2), "plays/1": ms(D2)}, {}, None, 1, [D1]),
        # Only one partition ticked: the other may still hold D1 events.
        ({"plays/0": ms(D2)}, {}, None, 1, []),
        # Ticks for D3 on both: D1 and D2 close together, in order.
        ({"plays/0": ms(D3), "plays/1": ms(D3)}, {}, None, 1, [D1, D2]),
        # D1 already closed: only D2 is new.
        ({"plays/0": ms(D3), "plays/1": ms(D3)}, {}, D1, 1, [D2]),
        # No ticks; both partitions 2 h into D2 with 1 h lateness: D1 closes.
        ({}, {"plays/0": ms(D2, 2), "plays/1": ms(D2, 2)}, None, 1, [D1]),
        # No ticks; one partition only 0.5 h into D2 (< lateness): the slowest decides, nothing closes.
        ({}, {"plays/0": ms(D2, 5), "plays/1": ms(D2, 0.5)}, None, 1, []),
        # Ticks win even when lateness would hold the day open (the replay's last day).
        ({"plays/0": ms(D2), "plays/1": ms(D2)}, {"plays/0": ms(D2), "plays/1": ms(D2)}, None, 24, [D1]),
    ],
)
def test_days_to_close(
    ticks: dict[str, int], times: dict[str, int], closed: date | None, lateness_h: int, expected: list[date]
) -> None:
    state = CloseState(closed_through=closed, first_day=D1, tick_ms=ticks, max_time_ms=times)
    assert days_to_close(state, P, lateness_h * HOUR_MS) == expected


def test_nothing_closes_before_the_first_event() -> None:
    state = CloseState(tick_ms={"plays/0": ms(D3), "plays/1": ms(D3)})
    assert days_to_close(state, P, 0) == []


def test_observe_keeps_the_latest_marks_and_the_earliest_day() -> None:
    state = CloseState().observe([("plays/0", None, ms(D2, 3), ms(D2, 1))])
    state = state.observe([("plays/0", ms(D2), ms(D2, 1), ms(D1, 5)), ("plays/1", ms(D3), ms(D3), None)])
    assert state.first_day == D1
    assert state.tick_ms == {"plays/0": ms(D2), "plays/1": ms(D3)}
    assert state.max_time_ms == {"plays/0": ms(D2, 3), "plays/1": ms(D3)}


def test_day_helpers() -> None:
    assert day_of(ms(D2, 23.99)) == D2
    assert day_end_ms(D1) == ms(D2)
