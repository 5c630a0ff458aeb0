"""The tests' wait helper returns when the condition holds and fails naming what it waited for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.fixtures.waiting import wait_until, wait_until_async


def _true_on_call(n: int) -> tuple[list[int], Callable[[], bool]]:
    calls: list[int] = []

    def predicate() -> bool:
        calls.append(1)
        return len(calls) >= n

    return calls, predicate


def test_wait_until_returns_once_the_condition_holds() -> None:
    calls, predicate = _true_on_call(3)
    started = time.monotonic()
    wait_until(predicate, 5, "the third look", interval_s=0.01)
    assert len(calls) == 3  # looked until it held, then stopped looking
    assert time.monotonic() - started < 1  # not the whole timeout


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.1 s waiting for the moon"):
        wait_until(lambda: False, 0.1, "the moon", interval_s=0.02)


def test_wait_until_async_lets_the_loop_run_between_looks() -> None:
    async def go() -> int:
        done: list[int] = []
        asyncio.get_running_loop().call_later(0.05, done.append, 1)  # only runs if the wait yields
        await wait_until_async(lambda: bool(done), 5, "the callback")
        return len(done)

    assert asyncio.run(go()) == 1


def test_wait_until_async_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="waiting for the tick"):
        asyncio.run(wait_until_async(lambda: False, 0.05, "the tick"))
