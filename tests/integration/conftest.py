"""The integration tier runs against the real local stack (`musicbox up`; `make test` starts it).

A missing service is a failure with a message saying what to do, never a skip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from infra.local import kafka_broker, prometheus_server
from musicbox.logging_setup import quiet_known_warnings
from musicbox.settings import Settings
from tests.fixtures.own_stack import alive
from tests.fixtures.waiting import wait_until


@pytest.fixture(scope="session")
def settings() -> Settings:
    quiet_known_warnings()
    return Settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The running stack; fails (not skips) the test when a service is down."""
    if not kafka_broker.ready(settings):
        pytest.fail(
            f"Kafka does not answer on {settings.kafka_bootstrap}: run `musicbox up` (make test does)"
        )
    if not prometheus_server.ready(settings):
        pytest.fail(
            f"Prometheus does not answer on {prometheus_server.base_url(settings)}: run `musicbox up`"
        )
    return settings


@pytest.fixture
def scratch_topic(stack: Settings) -> Iterator[str]:
    """A fresh one-partition topic for one test, deleted afterwards."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


@pytest.fixture
def isolated(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a test of its own: a fresh topic prefix (topics created, deleted after) and var dir.

    Metrics ports are moved off the defaults so a running demo does not collide with tests.
    """
    from infra.local.kafka_broker import ensure_topics
    from musicbox.topics import Topics

    prefix = f"t{uuid.uuid4().hex[:8]}."
    var_dir = tmp_path_factory.mktemp("var")
    (var_dir / "jars").symlink_to(stack.jars_dir)
    settings = stack.model_copy(
        update={
            "topic_prefix": prefix,
            "var_dir": var_dir,
            "replay_metrics_port": 19101,
            "stream_metrics_port": 19102,
            "worker_metrics_port": 19103,
        }
    )
    ensure_topics(settings)
    yield settings
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.delete_topics(list(Topics(prefix).all()))
    finally:
        admin.close()


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a `musicbox` subprocess use `settings`."""
    import os

    env = {**os.environ, "COLUMNS": "200", "MUSICBOX_LOG_LEVEL": "WARNING"}
    for name in (
        "topic_prefix",
        "var_dir",
        "kafka_bootstrap",
        "replay_metrics_port",
        "stream_metrics_port",
        "worker_metrics_port",
    ):
        env[f"MUSICBOX_{name.upper()}"] = str(getattr(settings, name))
    env.update(extra)
    return env


def musicbox(
    settings: Settings, *args: str, env: dict[str, str] | None = None, timeout_s: float = 900
) -> str:
    """Run `musicbox ARGS` with `settings`; fail the test with its output unless it exits 0."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "musicbox", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env_of(settings, **(env or {})),
    )
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        pytest.fail(f"musicbox {' '.join(args)} exited {done.returncode}:\n{output}")
    return done.stdout


def consume_all(
    settings: Settings, topics: list[str], idle_ms: int = 5_000, isolation_level: str = "read_committed"
) -> list[tuple[str, int, int, bytes | None, bytes]]:
    """Every record of `topics` from the beginning: (topic, partition, offset, key, value).

    `read_committed` by default, as every musicbox consumer reads: a transaction the replay
    did not commit (it was killed) is not there."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=idle_ms,
        isolation_level=isolation_level,
    )
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        got = []
        idle_until = time.monotonic() + idle_ms / 1000
        # Positions move past transaction markers too, so they do reach the end offsets.
        while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < idle_until:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(m.topic, m.partition, m.offset, m.key, m.value) for m in records]
                idle_until = time.monotonic() + idle_ms / 1000
        return got
    finally:
        consumer.close()


def replay_killed_at_random(
    settings: Settings, logs: Path, max_delay_s: float, checkpoint_every: int, extra: Sequence[str] = ()
) -> float:
    """Start a paced replay (a day every 2 s), SIGKILL it at a random moment of its first
    `max_delay_s` seconds after its first commit; returns that moment (for failure messages)."""
    import random
    import signal
    import subprocess
    import sys

    from kafka import KafkaConsumer, TopicPartition

    from musicbox.topics import Topics

    def committed() -> bool:
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        try:
            tp = TopicPartition(Topics(settings.topic_prefix).replay_ledger, 0)
            return int(consumer.end_offsets([tp])[tp]) > 0
        finally:
            consumer.close()

    argv = ["replay", "--logs", str(logs), "--speed", "43200", "--no-metrics", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicbox", *argv, "--checkpoint-every", str(checkpoint_every)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(committed, 60, "the replay's first commit", interval_s=0.2)
    delay_s = random.uniform(0.0, max_delay_s)
    time.sleep(delay_s)  # the random point of the kill, not a wait for anything
    assert proc.poll() is None, "the replay finished before it could be killed: slow it down"
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Its sender processes (--senders > 1) notice and end too: nothing of it is left running.
    wait_until(lambda: not [c for c in children if alive(int(c))], 15, "the replay's senders to end", 0.2)
    return delay_s
