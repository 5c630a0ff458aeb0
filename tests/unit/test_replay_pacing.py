"""Pacing maths: event time runs `speed` times faster than wall time."""

from __future__ import annotations

import pytest

from producers.replay.pacing import Pacer, wall_delay_s


@pytest.mark.parametrize(
    ("event_ms", "anchor_ms", "anchor_wall_s", "speed", "now_s", "expected"),
    [
        (86_400_000, 0, 0.0, 86_400.0, 0.0, 1.0),  # a day later at a day a second: 1 s later
        (86_400_000, 0, 0.0, 86_400.0, 0.4, 0.6),  # part of the wait already passed
        (86_400_000, 0, 0.0, 86_400.0, 2.0, 0.0),  # behind schedule: never a negative wait
        (3_600_000, 0, 10.0, 3_600.0, 10.0, 1.0),  # an hour at an hour a second, from another anchor
        (0, 0, 5.0, 1.0, 5.0, 0.0),  # the anchor event itself goes at once
    ],
)
def test_wall_delay(
    event_ms: int, anchor_ms: int, anchor_wall_s: float, speed: float, now_s: float, expected: float
) -> None:
    assert wall_delay_s(event_ms, anchor_ms, anchor_wall_s, speed, now_s) == pytest.approx(expected)


def test_pacer_sleeps_to_keep_speed_with_a_fake_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(speed=86_400.0, clock=lambda: now[0], sleep=sleep, check_every=1)
    for i in range(5):  # five events a quarter day apart: 1 s of wall time in all
        pacer.pace(i * 21_600_000)
    assert sum(slept) == pytest.approx(1.0)
    assert now[0] == pytest.approx(101.0)


def test_max_speed_never_sleeps() -> None:
    pacer = Pacer(speed=None, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))
    for i in range(1000):
        pacer.pace(i * 86_400_000)
