"""The worker process: the Faust app (event topics, changelog-backed tables, agents, timers) and,
in the same event loop, the batch reader of the feature topic.

Two inputs, two readers. Plays and downloads go through Faust agents: take a batch
(`take_events`), hand it to `EventFlow`; their state is in Faust tables. Feature rows go through
`FeatureReader` (a plain aiokafka batch consumer: Faust's per-message path was 7x slower than the
scoring itself) to `FeatureFlow`; its live-quality state is a `ChangelogStore` with the same
co-partitioning and recovery as a table. Concurrency 1 per agent (faust-streaming #606: with more,
an offset can be committed past a message still in flight). A batch is acknowledged only after
its flow returned; a flow that fails is retried, and one that keeps failing ends the process
without committing (Faust acknowledges a batch whose handler raised, which would skip it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust

from models.registry import LoadedAls, LoadedChurn
from musicbox.settings import Settings
from musicbox.topics import Topics
from streaming.scoring.changelog import ChangelogStore
from streaming.scoring.event_flow import EventFlow
from streaming.scoring.feature_flow import FeatureFlow, Prepared
from streaming.scoring.feature_reader import FeatureReader
from streaming.scoring.messages import Incoming
from streaming.scoring.metrics import LagKey, WorkerMetrics, show_lags
from streaming.scoring.quality import LiveQuality
from streaming.scoring.ratings import UserRatings
from streaming.scoring.recommender import Recommender
from streaming.scoring.reload import ModelReloader
from streaming.scoring.service import ScoringService
from streaming.scoring.sink import Sink
from streaming.scoring.ticks import TickLedger

log = logging.getLogger(__name__)

# State store -> the input it is co-partitioned with ("features" or "events"). The stores of the
# events are Faust tables; "quality" is the feature reader's own `ChangelogStore`.
TABLES = {"quality": "features", "open-days": "events", "recent-ratings": "events", "ticks": "events"}
FAUST_TABLES = tuple(name for name, source in TABLES.items() if source == "events")
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)
PRODUCER_BUFFER_MESSAGES = 100_000  # table writes Faust may hold before it slows the inputs
EXIT_FAILED_BATCH = 70  # EX_SOFTWARE: the uncommitted batch is read again by the next run


def app_id(topic_prefix: str) -> str:
    """`musicbox.` -> `musicbox-worker`: the consumer group and the prefix of the changelog topics."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", topic_prefix).strip("-") or "musicbox"
    return f"{stem}-worker"


def features_group(app: str) -> str:
    """The consumer group of the feature reader (Faust's own group is the app id)."""
    return f"{app}-features"


def changelog_topic(app: str, table: str) -> str:
    return f"{app}-{table}-changelog"  # Faust's naming (Table._changelog_topic_name)


@dataclass(frozen=True)
class Layout:
    """Partitions of the inputs; each table gets its input's count (co-partitioning)."""

    features: int
    events: int

    def of_table(self, table: str) -> int:
        return self.features if TABLES[table] == "features" else self.events


class TableStore:
    """A Faust table as a `PartitionedStore`: writes go to the changelog partition they name."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> Any | None:
        return self.table.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)

    def delete(self, partition: int, key: str) -> None:
        self.table.data.pop(key, None)
        # Faust's tombstone: a null raw value (what Table.__delitem__ sends).
        self.table.send_changelog(partition, key, None, value_serializer="raw")

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.table.data.items()))

    def __len__(self) -> int:
        return len(self.table.data)


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
    reader: FeatureReader
    tables: dict[str, Any]  # every state store by name (each has `.data`)
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
        """True once Faust has rebuilt the tables and the reader its store from their changelogs."""
        recovery = getattr(self.app.tables, "recovery", None)
        return (recovery is None or recovery.completed.is_set()) and self.reader.ready


def incoming(event: Any) -> Incoming:
    m = event.message
    return Incoming(m.topic, m.partition, m.offset, event.value)


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


def build_app(settings: Settings, deps: Dependencies, layout: Layout, broker: str | None = None) -> WorkerApp:
    topics = Topics(settings.topic_prefix)
    app = faust.App(
        app_id(settings.topic_prefix),
        broker=broker or [f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=str(settings.var_dir / "worker"),
        web_enabled=False,
        topic_allow_declare=False,  # the worker creates its topics up front (command.prepare_topics)
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=max(4096, 2 * settings.worker_batch_rows),
        broker_session_timeout=10.0,  # a killed worker's partitions move on after 10 s, not 60
        broker_heartbeat_interval=2.0,
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
    )
    tables: dict[str, Any] = {
        name: app.Table(name, default=None, partitions=layout.of_table(name), key_type=str, value_type=None)
        for name in FAUST_TABLES
    }
    stores = {name: TableStore(table) for name, table in tables.items()}
    quality = ChangelogStore(changelog_topic(app.conf.id, "quality"), deps.sink)
    tables["quality"] = quality
    features = FeatureFlow(
        ScoringService(lambda: deps.churn.served, deps.clock_ms),
        LiveQuality(quality, settings.label_window_d),
        deps.sink,
        topics,
        deps.metrics,
    )
    events = EventFlow(
        UserRatings(stores["open-days"], stores["recent-ratings"], settings.worker_ratings_window_d),
        TickLedger([topics.plays, topics.downloads], stores["ticks"]),
        Recommender(lambda: deps.als.served, settings.worker_top_n, deps.clock_ms),
        deps.sink,
        topics,
        deps.metrics,
    )
    rows, wait_s = settings.worker_batch_rows, settings.worker_batch_wait_s

    async def score(batch: list[Incoming], prepared: Prepared) -> None:
        await features.handle(batch, prepared)
        await quality.flush()

    reader = FeatureReader(
        settings.kafka_bootstrap,
        topics.features,
        features_group(app.conf.id),
        quality,
        features.prepare,
        lambda batch, prepared: worker.handle(partial(score, batch, prepared)),
        rows,
        wait_s,
    )
    worker = WorkerApp(app, features, events, reader, tables, deps)

    @app.task
    async def read_features() -> None:
        await reader.run()

    def events_agent(event_type: str, topic: str) -> None:
        async def follow(stream: Any) -> None:
            async for batch in stream.take_events(rows, within=wait_s):
                await worker.handle(partial(events.handle, [incoming(e) for e in batch], event_type))

        channel = app.topic(topic, key_serializer="raw", value_serializer="raw")
        app.agent(channel, name=f"follow-{event_type}s", concurrency=1)(follow)

    events_agent("play", topics.plays)
    events_agent("download", topics.downloads)

    @app.task
    async def roomy_producer_buffer() -> None:
        # Faust throttles every input message while more than 100 table writes wait to be
        # sent, warning each time; a batch writes thousands at once, by design.
        app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES

    @app.timer(interval=settings.worker_reload_interval_s)
    async def reload_models() -> None:
        for reloader in (deps.churn, deps.als):
            await asyncio.to_thread(reloader.poll)  # loading must not stall the agents

    @app.timer(interval=5.0)
    async def report_state() -> None:
        if deps.metrics is not None:
            observe_state(worker, deps.metrics)

    @app.on_before_shutdown.connect
    async def stop_outputs(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await reader.stop()
        stop = getattr(deps.sink, "stop", None)
        if stop is not None:
            await stop()

    return worker


def observe_state(worker: WorkerApp, metrics: WorkerMetrics) -> None:
    """Table sizes and, per input partition this worker reads, the messages not read yet."""
    for name, table in worker.tables.items():
        metrics.table_keys.labels(name).set(len(table.data))
    reader = worker.reader
    lags: dict[LagKey, int | None] = {(reader.topic, str(p)): None for p in reader.owned}
    lags.update({(reader.topic, str(p)): lag for p, lag in reader.lag().items()})
    app = worker.app
    try:
        assignment = app.consumer.assignment()
    except Exception:  # not subscribed yet
        assignment = set()
    for tp in assignment:
        if tp.topic.endswith("-changelog"):
            continue
        highwater = app.consumer.highwater(tp)
        read = app.monitor.tp_read_offsets.get(tp)
        # Before the first message of a run, the position is the committed offset, which
        # Faust keeps privately: read it if it is there, else leave the gauge alone.
        committed = getattr(app.consumer, "_committed_offset", {}).get(tp)
        position = read + 1 if read is not None else committed
        lag = max(0, highwater - position) if highwater is not None and position is not None else None
        lags[(tp.topic, str(tp.partition))] = lag
    worker.lag_series = show_lags(metrics.consumer_lag, lags, worker.lag_series)
