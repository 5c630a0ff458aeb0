"""What the worker benchmarks share: a fast producer, waiting on topics and metrics, starting workers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from musicbox.settings import Settings


class Producer:
    """Sends keyed records in aiokafka batches (the worker's own sink, murmur2 placement like the
    replay's), as fast as the streaming job's bulk write would. Connected once, before a round."""

    def __init__(self, settings: Settings) -> None:
        from streaming.scoring.sink import KafkaSink

        self.loop = asyncio.new_event_loop()
        self.sink = KafkaSink(settings.kafka_bootstrap)
        self.loop.run_until_complete(self.sink.start())

    def send(self, topic: str, keys: list[bytes], values: list[bytes]) -> float:
        """Seconds from the first send to the last acknowledgement."""
        started = time.perf_counter()
        self.loop.run_until_complete(self.sink.publish(topic, list(zip(keys, values, strict=True))))
        return time.perf_counter() - started

    def send_at(self, topic: str, partition: int, values: list[bytes]) -> None:
        self.loop.run_until_complete(self.sink.publish_at(topic, [(partition, b"", v) for v in values]))

    def close(self) -> None:
        self.loop.run_until_complete(self.sink.stop())
        self.loop.close()


def read_records(settings: Settings, topic: str, want: int, timeout_s: float) -> list[dict]:
    """The JSON values of `topic` from the start, until `want` are read or the time is up."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest")
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                got += [json.loads(r.value) for r in records]
    finally:
        consumer.close()
    return got


def wait_for_records(settings: Settings, topic: str, want: int, timeout_s: float) -> None:
    """Until `topic` holds `want` records, watching its end offsets only: reading the outputs while
    the worker runs would take a core from it on this 2-core machine."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        deadline = time.monotonic() + timeout_s
        while sum(consumer.end_offsets(parts).values()) < want and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        consumer.close()


def metric_sum(settings: Settings, name: str, port: int | None = None) -> float | None:
    """The sum of every series of `name` on a worker's metrics endpoint; None while it is not up."""
    url = f"http://{settings.metrics_host}:{port or settings.worker_metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def worker_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "MUSICBOX_LOG_LEVEL": "WARNING"}
    env.update(
        {
            "MUSICBOX_TOPIC_PREFIX": settings.topic_prefix,
            "MUSICBOX_VAR_DIR": str(settings.var_dir),
            "MUSICBOX_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "MUSICBOX_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
            "MUSICBOX_PARTITIONS": str(settings.partitions),
        }
    )
    return env


def start_worker(
    settings: Settings, out: IO[str], port: int | None = None, code: Path | None = None
) -> subprocess.Popen:
    """`musicbox worker` on the bench's settings; `code`: another checkout's worker (old vs new)."""
    env = worker_env(settings)
    if port is not None:
        env["MUSICBOX_WORKER_METRICS_PORT"] = str(port)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return subprocess.Popen(
        [sys.executable, "-m", "musicbox", "worker"],
        env=env,
        cwd=str(code) if code is not None else None,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
