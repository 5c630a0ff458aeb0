"""The one place a SparkSession is built (batch jobs, the streaming job and tests alike)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from musicbox.errors import MusicboxError
from musicbox.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Jar name prefixes of Spark's Kafka connector closure (infra/maven/spark-kafka/pom.xml).
CONNECTOR_JAR_PREFIXES = (
    "spark-sql-kafka-0-10_2.13",
    "spark-token-provider-kafka-0-10_2.13",
    "kafka-clients",
    "commons-pool2",
)


class SparkSetupError(MusicboxError):
    """Spark cannot start as configured (missing connector jars, no Java, ...)."""


def connector_jars(settings: Settings) -> list[str]:
    """Paths of the Kafka connector jars resolved by `make setup`, or an error saying so."""
    folder = settings.jars_dir / "spark-kafka"
    found = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    # Only the connector closure proper: the rest (lz4, jsr305, ...) already ships with pyspark.
    jars = [str(p) for p in found if p.name.startswith(CONNECTOR_JAR_PREFIXES)]
    missing = [p for p in CONNECTOR_JAR_PREFIXES if not any(os.path.basename(j).startswith(p) for j in jars)]
    if missing:
        raise SparkSetupError(
            f"Spark's Kafka connector jars are missing from {folder} ({', '.join(missing)}): run `make setup`"
        )
    return jars


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def cluster_config(settings: Settings) -> dict[str, str]:
    """What a session on a cluster needs beyond local mode: executors of a size the workers
    offer, and our packages on their Python path (`mapInPandas` ships functions by reference to
    their module). The jars travel through `spark.jars` either way; the driver's own address
    (reachable from every executor) comes from settings in both modes."""
    if is_local(settings.spark_master):
        return {}
    return {
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.executorEnv.PYTHONPATH": str(REPO_ROOT),
    }


def build_spark(settings: Settings, app_name: str, *, with_kafka: bool = False) -> SparkSession:
    """A SparkSession on `settings.spark_master` (local[2] by default) with our settings.

    `with_kafka` puts the connector jars on `spark.jars` (offline: no Ivy resolution).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", settings.spark_driver_bind_address)  # loopback by default
    # Python workers (pandas UDFs) must run the interpreter that has our packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", settings.spark_driver_host)
        .config("spark.driver.bindAddress", settings.spark_driver_bind_address)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # our commands show their own progress
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for key, value in cluster_config(settings).items():
        builder = builder.config(key, value)
    if with_kafka:
        builder = builder.config("spark.jars", ",".join(connector_jars(settings)))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
