"""The one settings object: built once per entry point from `MUSICBOX_*` variables, passed down."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every tunable of musicbox. The README lists them all in one table."""

    model_config = SettingsConfigDict(env_prefix="MUSICBOX_", frozen=True, extra="ignore")

    # Where state lives.
    var_dir: Path = Field(REPO_ROOT / "var", description="all local state: jars, services, models, logs")
    shared_dir: Path | None = Field(
        None,
        description="what Spark's executors read and write (stream checkpoint, bucket store, feature "
        "log, batch caches): on a Spark cluster a filesystem every node shares; unset: MUSICBOX_VAR_DIR",
    )

    # Kafka.
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers; `musicbox up` starts node i on the i-th (with more brokers "
        "than entries, each missing one 2 ports past the last: 9092,9094,9096 for 3)",
    )
    kafka_brokers: int = Field(
        1,
        ge=1,
        description="KRaft nodes (broker+controller each) `musicbox up` starts: 1, or 3 for replication",
    )
    kafka_controller_port: int = Field(
        9093, description="KRaft controller port of local node 1; node i: + 2(i-1) (9093,9095,9097)"
    )
    kafka_metrics_port: int = Field(
        9404, description="JMX exporter (broker metrics for Prometheus) of local node 1; node i: + (i-1)"
    )
    kafka_version: str = Field("4.1.1", description="Kafka broker version resolved by Maven")
    kafka_heap: str = Field("1G", description="heap of each local Kafka node (-Xmx)")
    topic_prefix: str = Field("musicbox.", description="prefix of every topic name")
    partitions: int = Field(
        6,
        description="partitions of every topic created by `musicbox up` "
        "(6: 1, 2 or 3 workers share them evenly)",
    )

    # The replay.
    replay_senders: int = Field(
        2,
        description="processes the replay sends from, each owning a share of the partitions "
        "(kafka-python builds records in Python: one process cannot keep up with the reader)",
    )

    replay_client: str = Field(
        "kafka-python",
        description="the replay's Kafka client: kafka-python, or confluent-kafka (librdkafka)",
    )

    # Prometheus and metrics.
    prometheus_port: int = Field(9090, description="port of the local Prometheus server")
    metrics_host: str = Field("127.0.0.1", description="address the metrics endpoints bind to")
    replay_metrics_port: int = Field(9101, description="metrics port of `musicbox replay`")
    stream_metrics_port: int = Field(9102, description="metrics port of `musicbox stream`")
    worker_metrics_port: int = Field(9103, description="metrics port of `musicbox worker`")

    # Spark.
    spark_master: str = Field(
        "local[2]",
        description="Spark master URL: local[N], or a cluster's "
        "(`spark://127.0.0.1:7077` for `up --spark-workers N`)",
    )
    spark_driver_host: str = Field(
        "127.0.0.1", description="address the executors reach the driver at (spark.driver.host)"
    )
    spark_driver_bind_address: str = Field(
        "127.0.0.1",
        description="address the driver listens on (spark.driver.bindAddress; 0.0.0.0 on real hosts)",
    )
    spark_workers: int = Field(
        0, ge=0, description="Spark standalone workers `musicbox up` starts beside a master (0: none)"
    )
    spark_master_port: int = Field(7077, description="port of the local Spark standalone master")
    spark_master_ui_port: int = Field(
        8080, description="web UI (and Prometheus metrics) port of the local Spark master"
    )
    spark_worker_ui_port: int = Field(
        8081, description="web UI (and Prometheus metrics) port of local Spark worker 1; worker i: + (i-1)"
    )
    spark_worker_cores: int = Field(1, ge=1, description="cores each local Spark worker offers")
    spark_worker_memory: str = Field("1g", description="memory each local Spark worker offers its executors")
    spark_executor_memory: str = Field(
        "768m", description="spark.executor.memory on a cluster (at most MUSICBOX_SPARK_WORKER_MEMORY)"
    )
    spark_shuffle_partitions: int = Field(
        default_factory=lambda: os.cpu_count() or 2,
        description="spark.sql.shuffle.partitions (default: the core count; 200 is far too many here)",
    )
    spark_driver_memory: str = Field("2g", description="spark.driver.memory in local mode")

    # The streaming feature job.
    stream_trigger_s: float = Field(2.0, description="micro-batch trigger interval of `musicbox stream`")
    stream_max_offsets: int = Field(
        4_000_000,
        description="most Kafka records one micro-batch reads (bounds its memory and how long a batch "
        "of a backlog takes; each batch costs a day close, so fewer, larger batches read a backlog faster)",
    )
    stream_allowed_lateness_s: int = Field(
        3600,
        description="without ticks, a day closes once every partition's event time is this far past its end",
    )
    stream_compact_every: int = Field(20, description="micro-batches between compactions of the bucket store")

    # Features and labels (DESIGN section 5).
    label_window_d: int = Field(14, description="days after as-of in which no event means churn")
    bot_plays_30d: int = Field(1400, description="plays_30d above this flags a bot (causal rule)")
    study_as_of: date = Field(date(2017, 4, 28), description="the study's snapshot day")

    # The scoring worker.
    worker_batch_rows: int = Field(
        20_000,
        description="most feature rows or events the worker handles as one batch (each batch waits "
        "for three Kafka round trips: 5,000 scored ~25 % fewer rows/s, BENCHMARKS.md)",
    )
    worker_batch_wait_s: float = Field(
        0.5, description="longest wait to fill a worker batch before handling what has come"
    )
    worker_reload_interval_s: float = Field(
        2.0, description="how often the worker looks at the registry's CURRENT files for a new model"
    )
    worker_top_n: int = Field(10, description="songs in each recommendation")
    worker_ratings_window_d: int = Field(
        30, description="days of plays and downloads behind a user's recommendation ratings"
    )
    worker_candidate_songs: int = Field(
        20_000,
        description="songs ranked for a recommendation: the most popular of the ALS model's training "
        "window (0: every song the model knows). On the study sample 2,000 or more keep the exact "
        "lists' quality; ranking costs one dot product per song (BENCHMARKS.md)",
    )

    @model_validator(mode="before")
    @classmethod
    def _bootstrap_lists_every_node(cls, data: Any) -> Any:
        """With more local brokers than bootstrap entries, add the missing nodes' addresses, so
        every client lists them all (one node down must not keep a new client out)."""
        if isinstance(data, dict):
            brokers = int(data.get("kafka_brokers", 1))
            bootstrap = str(data.get("kafka_bootstrap", cls.model_fields["kafka_bootstrap"].default))
            data = {**data, "kafka_bootstrap": ",".join(node_addresses(bootstrap, brokers))}
        return data

    @property
    def jars_dir(self) -> Path:
        return self.var_dir / "jars"

    @property
    def run_dir(self) -> Path:
        """PID files and service logs."""
        return self.var_dir / "run"

    @property
    def kafka_dir(self) -> Path:
        return self.var_dir / "kafka"

    @property
    def shared_state_dir(self) -> Path:
        """Where the state Spark's executors touch lives: absolute, since on a cluster each
        executor resolves a path in its own working directory."""
        return (self.shared_dir or self.var_dir).absolute()

    @property
    def stream_dir(self) -> Path:
        """Checkpoint, bucket store and progress of the streaming job."""
        return self.shared_state_dir / "stream"

    @property
    def feature_log_dir(self) -> Path:
        """The Parquet feature log, partitioned by as_of (point-in-time training sets)."""
        return self.shared_state_dir / "feature-log"

    @property
    def cache_dir(self) -> Path:
        """Parquet caches the batch jobs' Spark reads (events table, training sets)."""
        return self.shared_state_dir / "cache"

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        host, _, port = self.kafka_bootstrap.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)


def node_addresses(bootstrap: str, brokers: int) -> list[str]:
    """The bootstrap's `host:port` entries, extended to `brokers` entries 2 ports apart (a node
    uses its port and the next for its controller by default)."""
    entries = [e.strip() for e in bootstrap.split(",") if e.strip()]
    while len(entries) < brokers:
        host, _, port = entries[-1].rpartition(":")
        entries.append(f"{host}:{int(port) + 2}")
    return entries


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting: the README's table."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        if isinstance(default, Path):
            default = default.relative_to(REPO_ROOT) if default.is_relative_to(REPO_ROOT) else default
        rows.append((f"MUSICBOX_{name.upper()}", str(default), field.description or ""))
    return rows
