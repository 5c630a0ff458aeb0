"""The one Spark session factory: local mode, small shuffle, UTC, loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicbox.settings import Settings
from musicbox.spark import SparkSetupError, build_spark, connector_jars


def test_local_session_uses_our_settings() -> None:
    settings = Settings(spark_shuffle_partitions=3)
    spark = build_spark(settings, "musicbox-test-session")
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    ids = spark.range(100)
    counts = ids.groupBy((ids.id % 7).alias("k")).count()
    assert sorted(r["count"] for r in counts.collect()) == [14, 14, 14, 14, 14, 15, 15]


def test_connector_jars_are_found_and_limited_to_the_closure() -> None:
    jars = connector_jars(Settings())
    names = [Path(j).name for j in jars]
    assert any(n.startswith("spark-sql-kafka-0-10_2.13-") for n in names)
    # lz4, jsr305 and the like ship with pyspark; two copies on the classpath would clash.
    assert not any(n.startswith(("lz4", "jsr305", "scala-")) for n in names)


def test_missing_connector_jars_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SparkSetupError, match="make setup"):
        connector_jars(Settings(var_dir=tmp_path))
