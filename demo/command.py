"""`musicbox demo` (or `python -m demo`): the whole system on a generated data set, end to end.

The demo keeps its own state in `var/demo/` (`var/demo-study-sample/` for that profile: models,
feature log, checkpoints, the cached data sets, the logs of every step, `summary.json`, the
timeline plot), so it never touches a user's `var/models`; it does recreate the
`musicbox.*` topics, which it needs empty to count what it produced. It exits 1 when the run
breaks an invariant (a replay that does not reconcile, a parity difference), after its summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from demo import pipeline
from demo.datasets import DEMO_PROFILES, DatasetSpec, var_dir_name
from demo.memory import listening_pid
from demo.probes import StackProbe
from demo.processes import Processes, SubprocessSpawner, record_kept, stop_left_running
from demo.summary import LeftRunning, summarize
from demo.summary_view import show
from demo.timeline import Sample, Sampler
from demo.timeline_plot import write_plot
from demo.timeouts import Timeouts
from demo.topic_watch import reset_topics
from infra.local import commands as stack
from infra.local import kafka_broker, prometheus_server
from musicbox.settings import Settings

LEFT_RUNNING_FILE = "left-running.json"
SUMMARY_FILE = "summary.json"
TIMELINE_PNG = "timeline.png"
TIMELINE_JSON = "timeline.json"  # the samples the plot is drawn from
# What an earlier run left that would mix with this one's; `logs` is where the demo generated
# its data set before they were cached under `datasets/`.
STALE = ("stream", "feature-log", "worker", "models", "replay", "report", "logs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=DEMO_PROFILES,
        default="demo",
        help="the data set's size: demo (3,000 users, var/demo) or study-sample (64,746 users, bot "
        "share 0, var/demo-study-sample); 44 days, dirt on (default: %(default)s)",
    )
    parser.add_argument("--users", type=int, help="users of the generated data set (default: the profile's)")
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
    spec = DatasetSpec.for_profile(args.profile, args.users, args.seed)
    root = settings.var_dir / var_dir_name(args.profile)
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
    procs = Processes(
        SubprocessSpawner(_env(own)),
        root,
        keep_running=args.keep_running,
        command_timeout_s=Timeouts.for_users(spec.users).command_s,
    )
    demo = pipeline.Demo(own, args, spec, procs, console)
    stack_started = completed = False
    sampler: Sampler | None = None
    try:
        demo.step("1/8 local stack")
        if not (kafka_broker.ready(settings) and prometheus_server.ready(settings)):
            stack.up(argparse.Namespace(timeout_s=120.0), settings)
            stack_started = True
        else:
            console.print("Kafka and Prometheus already up: using them")
        reset_topics(settings)
        sampler = _sampler(demo, settings)
        sampler.start()
        facts = pipeline.run(demo)
        completed = True
    finally:
        samples = sampler.stop() if sampler is not None else []
        left = finish(procs, completed, stack_started, lambda: stack.down(argparse.Namespace(), settings))
        if not completed and samples:  # a failed step: the timeline shows how far each stage got
            try:
                console.print(f"the timeline up to the failure: {_timeline(samples, demo, root)}")
            except Exception as exc:  # never in the way of the error that stopped the demo
                console.print(f"(no timeline: {exc})")
    record_kept(root / LEFT_RUNNING_FILE, left.processes)
    facts = replace(facts, samples=samples, timeline_png=str(_timeline(samples, demo, root)))
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


def _sampler(demo: pipeline.Demo, settings: Settings) -> Sampler:
    """The 1-s sampler of progress and memory; the broker and Prometheus by their PID files, or,
    for a stack started from another checkout, by the ports they listen on."""
    kafka = kafka_broker.broker_process(settings).pid() or listening_pid(settings.kafka_host_port[1])
    prometheus = prometheus_server.prometheus_process(settings).pid() or listening_pid(
        settings.prometheus_port
    )
    stack_pids = {
        name: pid for name, pid in (("kafka", kafka), ("prometheus", prometheus)) if pid is not None
    }
    probe = StackProbe(demo.settings, demo.procs, lambda name: pipeline.summary_file(demo, name), stack_pids)
    return Sampler(probe.progress, probe.memory, started=demo.started)


def _timeline(samples: list[Sample], demo: pipeline.Demo, root: Path) -> Path:
    """The samples as JSON and the timeline plot beside the report."""
    (root / TIMELINE_JSON).write_text(json.dumps([s.to_dict() for s in samples]) + "\n")
    title = f"musicbox demo --profile {demo.spec.profile}: {demo.spec.users:,} users x {demo.spec.days} days"
    return write_plot(samples, demo.spans_s(), root / TIMELINE_PNG, title)


def _env(settings: Settings) -> dict[str, str]:
    """The environment of the demo's `musicbox` processes: its var dir and topic prefix."""
    return {
        **os.environ,
        "MUSICBOX_VAR_DIR": str(settings.var_dir),
        "MUSICBOX_TOPIC_PREFIX": settings.topic_prefix,
        "OPENBLAS_NUM_THREADS": "1",
        "COLUMNS": "120",
    }
