"""What the demo waits for while the processes beside it work: each wait ends on the condition
it waits for, or fails after its deadline naming the log to read."""

from __future__ import annotations

import sys
import time
import urllib.request
from datetime import date
from typing import Any

from rich.console import Console

from demo.errors import DemoError
from demo.processes import Processes
from demo.topic_watch import TopicTail
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.aggregates.outputs import FeatureLog


def follow_replay(
    console: Console, procs: Processes, name: str, log: FeatureLog, days: int, until: date, timeout_s: float
) -> None:
    """Until the replay `name` has ended and the stream has closed `until` in the feature `log`."""
    deadline = time.monotonic() + timeout_s
    with console.status("replaying...") as status:
        while time.monotonic() < deadline:
            closed = log.days()
            status.update(
                f"days closed by the stream: {len(closed)}/{days}"
                + (f" (last {closed[-1]})" if closed else "")
            )
            ended = procs.returncode(name)
            if ended not in (None, 0) or (ended == 0 and closed and closed[-1] >= until):
                break
            procs.check_alive("stream", "worker")
            time.sleep(1)
    if procs.returncode(name) is None:
        raise DemoError(f"the replay did not end in {timeout_s:.0f} s; see {procs.log(name)}")
    if procs.wait(name) != 0:
        raise DemoError(f"the replay failed; see {procs.log(name)}")
    closed = log.days()
    if not closed or closed[-1] < until:
        raise DemoError(
            f"the stream closed {len(closed)} of {days} days in time (not {until}); see {procs.log('stream')}"
        )


def wait_reload(
    console: Console, procs: Processes, settings: Settings, version: str, timeout_s: float
) -> None:
    """Until the worker's metrics say it serves churn model `version` (it polls the registry)."""
    url = f"http://{settings.metrics_host}:{settings.worker_metrics_port}/metrics"
    wanted = f'musicbox_worker_model_info{{kind="churn",version="{version}"}} 1.0'
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for the worker to serve churn {version}"):
        while time.monotonic() < deadline:
            procs.check_alive("worker")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if wanted in response.read().decode():
                        console.print(f"the worker hot-reloaded churn {version}")
                        return
            except OSError:
                pass  # not serving yet
            time.sleep(1)
    raise DemoError(
        f"the worker did not switch to churn {version} in {timeout_s:.0f} s; see {procs.log('worker')}"
    )


def _as_of(value: dict[str, Any], partition: int) -> str | None:
    """All the wait keeps of a score or a recommendation (millions of them at the study's scale)."""
    as_of = value.get("as_of")
    return None if as_of is None else sys.intern(str(as_of))


def gave_up(now: float, began: float, moved: float, timeout_s: float, stall_s: float) -> str | None:
    """Why a wait that began at `began` and last saw its outputs grow at `moved` ends now in
    failure, or None while it may go on: a slow worker that keeps publishing is waited for up to
    `timeout_s`; one that publishes nothing for `stall_s` is stuck."""
    if now - began > timeout_s:
        return f"within {timeout_s:.0f} s"
    if now - moved > stall_s:
        return f"(it published nothing for {stall_s:.0f} s)"
    return None


def wait_worker(
    console: Console,
    procs: Processes,
    settings: Settings,
    last: date,
    started: float,
    timeout_s: float,
    stall_s: float,
) -> None:
    """Until every partition of the scores topic carries the last day's day-complete marker, and
    the worker has recommended for the last day and its recommendations stop growing (they have
    no marker). Fails when the worker publishes nothing for `stall_s`, or after `timeout_s`."""
    topics = Topics(settings.topic_prefix)
    last_day = last.isoformat()
    # Read on from where the last look ended: re-reading both topics every time cost seconds
    # of CPU the worker being waited for could have used.
    tails = [
        TopicTail(settings, topics.churn_scores, _as_of),
        TopicTail(settings, topics.recommendations, _as_of),
    ]
    sizes, seen = [0, 0], [False, False]
    began = moved = time.monotonic()
    previous = [-1, -1]
    try:
        while (why := gave_up(time.monotonic(), began, moved, timeout_s, stall_s)) is None:
            procs.check_alive("worker")
            for i, tail in enumerate(tails):
                new = tail.read()
                sizes[i] += len(new)
                seen[i] = seen[i] or last_day in new
            scored, recommended = last_day in tails[0].days_complete(), seen[1]
            if scored and recommended and sizes[1] == previous[1]:
                return
            if sizes != previous:
                moved = time.monotonic()
            console.print(
                f"  {time.monotonic() - started:.0f} s: scores {sizes[0]:,} (of {last_day}: "
                f"{'yes' if scored else 'not yet'}), recommendations {sizes[1]:,} (of {last_day}: "
                f"{'yes' if recommended else 'not yet'})"
            )
            previous = list(sizes)
            time.sleep(5)
    finally:
        for tail in tails:
            tail.close()
    raise DemoError(f"the worker did not score and recommend {last} {why}; see {procs.log('worker')}")
