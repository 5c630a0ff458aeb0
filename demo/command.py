"""`musicbox demo` (or `python -m demo`): the whole system on a generated data set, end to end.

The demo keeps its own state in `var/demo/` (models, feature log, checkpoints, the logs of every
step, `summary.json`), so it never touches a user's `var/models`; it does recreate the
`musicbox.*` topics, which it needs empty to count what it produced. It exits 1 when the run
breaks an invariant (a replay that does not reconcile, a parity difference), after its summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable

from rich.console import Console

from demo import pipeline
from demo.processes import Processes, SubprocessSpawner, record_kept, stop_left_running
from demo.summary import LeftRunning, summarize
from demo.summary_view import show
from demo.topic_watch import reset_topics
from infra.local import commands as stack
from infra.local import kafka_broker, prometheus_server
from musicbox.settings import Settings

LEFT_RUNNING_FILE = "left-running.json"
SUMMARY_FILE = "summary.json"
# What an earlier run left that would mix with this one's.
STALE = ("stream", "feature-log", "worker", "models", "replay", "report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users", type=int, default=3000, help="users of the generated data set (default: 3000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay speed, event s per wall s (default: as fast as possible)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the run, leave the stack, stream job and worker running (the summary says how to "
        "stop them; the next demo stops the stream job and worker itself)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    root = settings.var_dir / "demo"
    stopped = stop_left_running(root / LEFT_RUNNING_FILE)
    if stopped:
        console.print(
            "stopped what an earlier `--keep-running` demo left running: "
            + ", ".join(f"{k.name} ({k.pid})" for k in stopped)
        )
    for stale in STALE:
        shutil.rmtree(root / stale, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "jars").is_symlink():
        (root / "jars").symlink_to(settings.jars_dir)
    own = settings.model_copy(update={"var_dir": root})
    procs = Processes(SubprocessSpawner(_env(own)), root, keep_running=args.keep_running)
    demo = pipeline.Demo(own, args, procs, console)
    stack_started = completed = False
    try:
        demo.step("1/8 local stack")
        if not (kafka_broker.ready(settings) and prometheus_server.ready(settings)):
            stack.up(argparse.Namespace(timeout_s=120.0), settings)
            stack_started = True
        else:
            console.print("Kafka and Prometheus already up: using them")
        reset_topics(settings)
        facts = pipeline.run(demo)
        completed = True
    finally:
        left = finish(procs, completed, stack_started, lambda: stack.down(argparse.Namespace(), settings))
    record_kept(root / LEFT_RUNNING_FILE, left.processes)
    summary = summarize(facts, left)
    summary.write(root / SUMMARY_FILE)
    show(console, summary, settings, root)
    return 0 if summary.ok else 1


def finish(
    procs: Processes, completed: bool, stack_started: bool, stop_stack: Callable[[], object]
) -> LeftRunning:
    """Stop what the demo started, except what --keep-running keeps after a completed run."""
    kept = procs.close(completed)
    keep_stack = procs.keep_running and completed
    if stack_started and not keep_stack:
        stop_stack()
    return LeftRunning(kept, stack=stack_started and keep_stack)


def _env(settings: Settings) -> dict[str, str]:
    """The environment of the demo's `musicbox` processes: its var dir and topic prefix."""
    return {
        **os.environ,
        "MUSICBOX_VAR_DIR": str(settings.var_dir),
        "MUSICBOX_TOPIC_PREFIX": settings.topic_prefix,
        "OPENBLAS_NUM_THREADS": "1",
        "COLUMNS": "120",
    }
