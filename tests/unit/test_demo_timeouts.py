"""How long the demo waits: deadlines that scale with the users, and a wait for the worker that
ends on a stall, not while the worker is still publishing."""

from __future__ import annotations

import pytest

from demo.timeouts import Timeouts
from demo.waits import gave_up


@pytest.mark.parametrize(
    ("users", "worker_s", "replay_s"),
    [
        (3_000, 900, 1200),  # the demo's size: the deadlines measured there
        (1_500, 900, 1200),  # smaller: never shorter than those
        (64_746, 900 * 64_746 / 3_000, 1200 * 64_746 / 3_000),  # the study sample: 21.6 x
    ],
)
def test_deadlines_scale_with_the_users(users: int, worker_s: float, replay_s: float) -> None:
    t = Timeouts.for_users(users)
    assert (t.worker_s, t.replay_s) == pytest.approx((worker_s, replay_s))
    assert t.command_s == pytest.approx(900 * max(1, users / 3000))


@pytest.mark.parametrize(
    ("now", "moved", "why"),
    [
        (100.0, 95.0, None),  # publishing: wait on
        (
            1000.0,
            990.0,
            None,
        ),  # slow, 17 min in, still publishing: wait on (the old 300-s deadline failed it)
        (1000.0, 690.0, "(it published nothing for 300 s)"),  # five minutes without a record: stuck
        (1900.0, 1899.0, "within 1800 s"),  # publishing, but past the deadline
    ],
)
def test_the_wait_for_the_worker_ends_on_a_stall_or_the_deadline(
    now: float, moved: float, why: str | None
) -> None:
    assert gave_up(now, began=0.0, moved=moved, timeout_s=1800, stall_s=300) == why
