"""The demo's wait for its recreated topics: done when its own exist, whatever else shares the prefix."""

from __future__ import annotations

import pytest

from demo.errors import DemoError
from demo.topic_watch import wait_recreated

OURS = {"musicbox.plays", "musicbox.features"}


def test_other_topics_under_the_prefix_do_not_keep_it_waiting() -> None:
    # Another tool's `musicbox.replay-ledger` beside ours: the demo hung forever on it.
    existing = OURS | {"musicbox.replay-ledger"}
    slept: list[float] = []
    wait_recreated(lambda: None, lambda: existing, OURS, timeout_s=60, sleep=slept.append)
    assert slept == []


def test_it_waits_while_the_deletion_is_under_way() -> None:
    # The first creation is refused (marked for deletion), the second finds one topic, the third both.
    answers: list[set[str] | Exception] = [RuntimeError("marked for deletion"), {"musicbox.plays"}, OURS]
    slept: list[float] = []

    def existing() -> set[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wait_recreated(lambda: None, existing, OURS, timeout_s=60, sleep=slept.append)
    assert slept == [1, 1] and not answers


def test_a_topic_that_never_comes_back_is_an_error_naming_it() -> None:
    with pytest.raises(DemoError, match=r"musicbox\.features were not recreated"):
        wait_recreated(lambda: None, lambda: {"musicbox.plays"}, OURS, timeout_s=0, sleep=lambda s: None)
