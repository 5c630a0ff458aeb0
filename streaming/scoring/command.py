"""`musicbox worker`: churn scores and recommendations, live, from the feature and event topics."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading
import time
from functools import partial

from prometheus_client import CollectorRegistry

from models.registry import current_version, load_als, load_churn
from musicbox.metrics import serve
from musicbox.settings import Settings
from streaming.scoring.app import Dependencies, WorkerApp, build_app
from streaming.scoring.errors import NoModelError, ScoringError
from streaming.scoring.kafka_setup import forget_state, prepare_topics
from streaming.scoring.metrics import WorkerMetrics
from streaming.scoring.reload import ModelReloader
from streaming.scoring.sink import KafkaSink
from streaming.scoring.summary import summary_lines

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reset",
        action="store_true",
        help="start with empty state: delete the worker's changelog topics and consumer groups first "
        "(after the input topics were recreated; every input is then read again from the start)",
    )
    parser.add_argument(
        "--stop-when-idle-s",
        type=float,
        default=None,
        metavar="N",
        help="stop after N seconds without new input (tests, the demo); default: run until Ctrl-C",
    )


def start_models(churn: ModelReloader, als: ModelReloader, models_dir: str) -> None:
    """Load the promoted models; without a churn model there is nothing to serve."""
    event = churn.poll()
    if churn.served is None:
        why = f"{event.reason}: {event.message}" if event is not None else "none is promoted"
        raise NoModelError(
            f"no churn model can be served from {models_dir} ({why}). Train and promote one "
            "(`musicbox batch train-churn`), or set MUSICBOX_VAR_DIR to where the models are"
        )
    als.poll()
    if als.served is None:
        log.warning(
            "no ALS model is served: recommendations start once one is promoted (`musicbox batch train-als`)"
        )


GC_THRESHOLDS = (50_000, 20, 100)  # Python's default (700, 10, 10)


def quiet_gc() -> None:
    """Fewer cyclic-GC passes. Every batch allocates hundreds of thousands of short-lived objects
    (Kafka records, decoded rows): with the default thresholds a collection ran every 700 of
    them, and the full ones rescanned everything alive (models, Faust, tables). Worker A/B on
    bench.score: +16 % rows/s (BENCHMARKS.md). Reference counting still frees almost everything
    at once; only reference cycles wait longer."""
    gc.freeze()  # what exists now (models, app, tables) is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(worker: WorkerApp, stop_when_idle_s: float | None) -> None:
    """Run the Faust worker on a fresh event loop until it is stopped (signal, or idle)."""
    import faust

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # Faust and mode log every recovery step and rebalance at INFO, in wide tables.
        for noisy in ("faust", "mode"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    faust_worker = faust.Worker(
        worker.app, loop=loop, quiet=True, redirect_stdouts=False, override_logging=False
    )
    stopping: list[asyncio.Task] = []

    if stop_when_idle_s is not None:
        idle_s = stop_when_idle_s

        @worker.app.timer(interval=min(1.0, idle_s / 4))
        async def stop_when_idle() -> None:
            if not worker.recovered():
                worker.touch()  # recovering state is not idleness
                return
            if not stopping and worker.idle_s() > idle_s:
                log.info("no input for %.0f s: stopping", idle_s)
                stopping.append(loop.create_task(faust_worker.stop()))

    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ScoringError(f"the Faust worker exited with status {exc.code}: see the log above") from exc


LINGER_GRACE_S = 15.0


def leave_lingering_threads(grace_s: float = LINGER_GRACE_S) -> None:
    """End the process if Faust's own threads outlive the worker. Faust runs its consumer in a
    thread with its own event loop (mode's `ServiceThread`), which now and then does not stop
    after the worker has (seen: a test waited 180 s on a worker that had printed its summary;
    1 run in ~5 of a test, more under load). By now the feature reader has committed, the sink
    is stopped and Faust has flushed its tables, so nothing is lost by not waiting."""
    from mode.threads import WorkerThread

    deadline = time.monotonic() + grace_s
    faust_threads = [t for t in threading.enumerate() if isinstance(t, WorkerThread) and not t.daemon]
    for thread in faust_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in faust_threads if t.is_alive()]
    if stuck:
        log.warning("Faust threads %s did not stop within %.0f s: exiting without them", stuck, grace_s)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    root = settings.models_dir
    churn = ModelReloader(
        "churn", partial(current_version, root, "churn"), partial(load_churn, root), metrics.reload
    )
    als = ModelReloader("als", partial(current_version, root, "als"), partial(load_als, root), metrics.reload)
    start_models(churn, als, str(root))  # before touching Kafka: nothing to serve, nothing to set up
    if args.reset:
        gone = forget_state(settings)
        log.info("reset: deleted %s", ", ".join(gone) or "nothing (no state yet)")
    layout = prepare_topics(settings)
    serve(registry, settings.metrics_host, settings.worker_metrics_port)
    worker = build_app(
        settings, Dependencies(churn, als, KafkaSink(settings.kafka_bootstrap), metrics), layout
    )
    log.info(
        "worker %s: features %d partitions, events %d; churn %s, als %s; metrics on %s:%d",
        worker.app.conf.id, layout.features, layout.events, churn.version, als.version,
        settings.metrics_host, settings.worker_metrics_port,
    )  # fmt: skip
    quiet_gc()
    run_worker(worker, args.stop_when_idle_s)
    for line in summary_lines(worker, time.monotonic() - started):
        print(line)
    leave_lingering_threads()
    return 0
