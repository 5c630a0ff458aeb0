"""The worker process: the Faust app (its timers and tasks) and, in its event loop, two batch readers.

Two inputs, two `BatchReader`s (plain aiokafka batch consumers, `read_committed`: Faust's
per-message path was 7x slower than the scoring itself, and it reads `read_committed` only in
its exactly-once mode). The feature topic goes to `FeatureFlow`, whose live-quality state is a
`ChangelogStore`; plays and downloads go, together, to `EventFlow`, whose listening state is a
`ListeningState` with its own changelog. Faust runs the process (tasks, timers, signals and
shutdown) and talks to no broker itself: there is no Faust agent or table left. A batch is
acknowledged only after its flow returned; a flow that fails is retried, and one that keeps
failing ends the process without committing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
from faust.app.base import BootStrategy

from models.registry import LoadedAls, LoadedChurn
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.batch_reader import BatchReader, RestorableState
from streaming.scoring.changelog import ChangelogStore
from streaming.scoring.event_flow import EventFlow
from streaming.scoring.feature_flow import FeatureFlow, Prepared
from streaming.scoring.listening_state import ListeningState
from streaming.scoring.messages import Incoming
from streaming.scoring.metrics import LagKey, WorkerMetrics, show_lags
from streaming.scoring.quality import LiveQuality
from streaming.scoring.recommender import Recommender
from streaming.scoring.reload import ModelReloader
from streaming.scoring.service import ScoringService
from streaming.scoring.sink import Sink
from streaming.scoring.ticks import TickLedger

log = logging.getLogger(__name__)

# State store -> the input it is co-partitioned with ("features" or "events"), each with a
# changelog topic of its input's partition count.
TABLES = {"quality": "features", "listening": "events"}
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)
EXIT_FAILED_BATCH = 70  # EX_SOFTWARE: the uncommitted batch is read again by the next run


def app_id(topic_prefix: str) -> str:
    """`musicbox.` -> `musicbox-worker`: the consumer group and the prefix of the changelog topics."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", topic_prefix).strip("-") or "musicbox"
    return f"{stem}-worker"


def features_group(app: str) -> str:
    """The consumer group of the feature reader."""
    return f"{app}-features"


def events_group(app: str) -> str:
    """The consumer group of the play and download reader."""
    return f"{app}-events"


def changelog_topic(app: str, table: str) -> str:
    return f"{app}-{table}-changelog"  # Faust's naming (Table._changelog_topic_name)


@dataclass(frozen=True)
class Layout:
    """Partitions of the inputs; each table gets its input's count (co-partitioning)."""

    features: int
    events: int

    def of_table(self, table: str) -> int:
        return self.features if TABLES[table] == "features" else self.events


@dataclass
class Dependencies:
    """What the worker is given rather than builds: models, output, metrics, clock, fatal exit."""

    churn: ModelReloader[LoadedChurn]
    als: ModelReloader[LoadedAls]
    sink: Sink
    metrics: WorkerMetrics | None = None
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    on_fatal: Callable[[int], None] = os._exit  # no clean shutdown: it would commit the failed batch


@dataclass
class WorkerApp:
    app: faust.App
    features: FeatureFlow
    events: EventFlow
    features_reader: BatchReader
    events_reader: BatchReader
    tables: dict[str, RestorableState]  # every state store by name
    deps: Dependencies
    last_input_s: float = field(default_factory=time.monotonic)
    busy: int = 0  # batches being handled
    lag_series: set[LagKey] = field(default_factory=set)  # consumer-lag series this process exports

    def touch(self) -> None:
        self.last_input_s = time.monotonic()

    def idle_s(self) -> float:
        """Seconds since the last input batch ended; 0 while one is being handled."""
        return 0.0 if self.busy else time.monotonic() - self.last_input_s

    async def handle(self, work: Callable[[], Awaitable[None]]) -> None:
        self.busy += 1
        self.touch()
        try:
            await handle_with_retry(work, self.deps.on_fatal)
        finally:
            self.busy -= 1
            self.touch()

    def recovered(self) -> bool:
        """True once both readers have rebuilt their state from its changelog."""
        return self.features_reader.ready and self.events_reader.ready


async def handle_with_retry(
    work: Callable[[], Awaitable[None]],
    on_fatal: Callable[[int], None],
    delays_s: tuple[float, ...] = RETRY_DELAYS_S,
) -> None:
    """Run `work` until it succeeds; after the last retry, end the process (see module doc)."""
    for attempt in range(len(delays_s) + 1):
        try:
            await work()
            return
        except Exception:
            if attempt == len(delays_s):
                log.critical(
                    "a batch failed %d times: stopping without committing it", attempt + 1, exc_info=True
                )
                on_fatal(EXIT_FAILED_BATCH)
                return
            log.exception("a batch failed (attempt %d); retrying in %.0f s", attempt + 1, delays_s[attempt])
            await asyncio.sleep(delays_s[attempt])


def build_app(settings: Settings, deps: Dependencies, layout: Layout) -> WorkerApp:
    topics = Topics(settings.topic_prefix)
    app = faust.App(
        app_id(settings.topic_prefix),
        store="memory://",
        datadir=str(settings.var_dir / "worker"),
        web_enabled=False,
        topic_allow_declare=False,
    )
    # Faust as the runtime only: no consumer, producer or tables of its own (the readers and the
    # sink talk to Kafka).
    app.boot_strategy = BootStrategy(app, enable_kafka=False, enable_web=False)
    app_name = app.conf.id
    quality = ChangelogStore(changelog_topic(app_name, "quality"), deps.sink)
    listening = ListeningState(
        changelog_topic(app_name, "listening"), deps.sink, settings.worker_ratings_window_d
    )
    features = FeatureFlow(
        ScoringService(lambda: deps.churn.served, deps.clock_ms),
        LiveQuality(quality, settings.label_window_d),
        deps.sink,
        topics,
        deps.metrics,
    )
    events = EventFlow(
        listening,
        TickLedger([topics.plays, topics.downloads], listening.ticks),
        Recommender(
            lambda: deps.als.served,
            settings.worker_top_n,
            deps.clock_ms,
            candidate_songs=settings.worker_candidate_songs,
        ),
        deps.sink,
        topics,
        deps.metrics,
    )
    rows, wait_s = settings.worker_batch_rows, settings.worker_batch_wait_s

    async def score(batch: list[Incoming], prepared: Prepared) -> None:
        await features.handle(batch, prepared)
        await quality.flush()

    features_reader = BatchReader(
        settings.kafka_bootstrap,
        [topics.features],
        features_group(app_name),
        quality,
        features.prepare,
        lambda batch, prepared: worker.handle(partial(score, batch, prepared)),
        rows,
        wait_s,
    )
    events_reader = BatchReader(
        settings.kafka_bootstrap,
        [topics.plays, topics.downloads],
        events_group(app_name),
        listening,
        events.prepare,
        lambda batch, prepared: worker.handle(partial(events.handle, batch, prepared)),
        rows,
        wait_s,
    )
    tables: dict[str, RestorableState] = {"quality": quality, "listening": listening}
    worker = WorkerApp(app, features, events, features_reader, events_reader, tables, deps)

    @app.task
    async def read_features() -> None:
        await features_reader.run()

    @app.task
    async def read_events() -> None:
        await events_reader.run()

    @app.timer(interval=settings.worker_reload_interval_s)
    async def reload_models() -> None:
        for reloader in (deps.churn, deps.als):
            await asyncio.to_thread(reloader.poll)  # loading must not stall the readers

    @app.timer(interval=5.0)
    async def report_state() -> None:
        if deps.metrics is not None:
            observe_state(worker, deps.metrics)

    @app.on_before_shutdown.connect
    async def stop_outputs(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await asyncio.gather(features_reader.stop(), events_reader.stop())
        stop = getattr(deps.sink, "stop", None)
        if stop is not None:
            await stop()

    return worker


def observe_state(worker: WorkerApp, metrics: WorkerMetrics) -> None:
    """State sizes and, per input partition this worker reads, the messages not read yet."""
    for name, table in worker.tables.items():
        metrics.table_keys.labels(name).set(len(table))
    lags: dict[LagKey, int | None] = {}
    for reader in (worker.features_reader, worker.events_reader):
        lags.update({(topic, str(p)): None for topic in reader.topics for p in reader.owned})
        lags.update({(topic, str(p)): lag for (topic, p), lag in reader.lag().items()})
    worker.lag_series = show_lags(metrics.consumer_lag, lags, worker.lag_series)
