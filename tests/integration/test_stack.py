"""The real local stack end to end: Kafka (KRaft) with three clients, Spark's connector, Prometheus."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid

from musicbox.settings import Settings
from musicbox.topics import Topics


def _produce(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True)
    producer.send(topic, key=key, value=value).get(timeout=30)
    producer.close()


def test_kafka_python_round_trip(stack: Settings, scratch_topic: str) -> None:
    from kafka import KafkaConsumer

    value = json.dumps({"probe": uuid.uuid4().hex}).encode()
    _produce(stack, scratch_topic, b"42", value)
    consumer = KafkaConsumer(
        scratch_topic,
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        consumer_timeout_ms=20_000,
        session_timeout_ms=6_000,
    )
    got = [(m.key, m.value) for m in consumer]
    consumer.close()
    assert got == [(b"42", value)]


def test_aiokafka_round_trip(stack: Settings, scratch_topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    value = uuid.uuid4().hex.encode()

    async def go() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(scratch_topic, value, key=b"7")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            scratch_topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=20_000)
        finally:
            await consumer.stop()
        return [m.value for msgs in batch.values() for m in msgs]

    assert asyncio.run(go()) == [value]


def test_kcat_reads_what_kafka_python_wrote(stack: Settings, scratch_topic: str) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: run `make setup`"
    value = f"hello-{uuid.uuid4().hex}".encode()
    _produce(stack, scratch_topic, b"k", value)
    done = subprocess.run(
        [
            kcat,
            "-C",
            "-b",
            stack.kafka_bootstrap,
            "-t",
            scratch_topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k=%s\n",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == f"k={value.decode()}"


def test_kcat_lists_the_musicbox_topics(stack: Settings) -> None:
    done = subprocess.run(
        ["kcat", "-L", "-b", stack.kafka_bootstrap], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for topic in Topics(stack.topic_prefix).all():
        assert f'topic "{topic}"' in done.stdout


def test_spark_streaming_reads_through_the_kafka_connector(stack: Settings, scratch_topic: str) -> None:
    from musicbox.spark import build_spark

    values = [f"m{i}-{uuid.uuid4().hex[:6]}".encode() for i in range(3)]
    for v in values:
        _produce(stack, scratch_topic, b"s", v)
    spark = build_spark(stack, "musicbox-integration-probe", with_kafka=True)
    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
        .option("subscribe", scratch_topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    query = (
        stream.selectExpr("CAST(value AS STRING) AS value")
        .writeStream.format("memory")
        .queryName("probe")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    got = sorted(r.value for r in spark.sql("SELECT value FROM probe").collect())
    query.stop()
    assert got == sorted(v.decode() for v in values)


def test_prometheus_answers_its_http_api(stack: Settings) -> None:
    url = f"http://127.0.0.1:{stack.prometheus_port}/api/v1/query?query=up"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success"
    jobs = {r["metric"]["job"] for r in body["data"]["result"]}
    assert {"prometheus", "musicbox-replay", "musicbox-stream", "musicbox-worker"} <= jobs


def test_status_reports_a_healthy_stack(stack: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "musicbox", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},  # rich wraps tables at 80 columns without a terminal
    )
    assert done.returncode == 0, done.stdout + done.stderr
    n = len(Topics(stack.topic_prefix).all())
    assert f"healthy: {n}/{n} musicbox topics" in done.stdout
