"""The cluster tier: a 3-node Kafka cluster and a Spark standalone cluster of two workers of the
tier's own (its own var dir and free ports, never the stack of the defaults), started once for the
tier with `musicbox up --brokers 3 --spark-workers 2` and stopped at its end, whatever happens.

Small heaps (512 MB per broker, 1 GB per Spark worker): the machine has 2 cores and is shared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local import kafka_broker, spark_cluster
from infra.local.kafka_nodes import Node, nodes
from infra.local.processes import ManagedProcess
from musicbox.logging_setup import quiet_known_warnings
from musicbox.settings import Settings
from tests.fixtures.ports import free_port_block
from tests.fixtures.waiting import wait_until

BROKERS, SPARK_WORKERS = 3, 2


@dataclass
class Clusters:
    """The tier's clusters: settings every command of a test runs with, and their environment."""

    settings: Settings
    env: dict[str, str]

    def musicbox(
        self, *args: str, timeout_s: float = 900, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "musicbox", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**self.env, **(env or {})},
        )

    def node(self, node_id: int) -> Node:
        return nodes(self.settings)[node_id - 1]

    def kill(self, name: str) -> int:
        """SIGKILL a node's or daemon's whole process group (a Spark worker's executors go with
        it, as with a host that dies); returns the pid."""
        pid = ManagedProcess(name, self.settings.run_dir).pid()
        assert pid is not None, f"{name} does not run"
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: ManagedProcess(name, self.settings.run_dir).pid() is None, 30, f"{name} to die")
        return pid


def _env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", "MUSICBOX_LOG_LEVEL": "WARNING"}
    for name in (
        "var_dir",
        "kafka_bootstrap",
        "kafka_brokers",
        "kafka_controller_port",
        "kafka_metrics_port",
        "kafka_heap",
        "prometheus_port",
        "spark_master",
        "spark_master_port",
        "spark_master_ui_port",
        "spark_worker_ui_port",
        "spark_workers",
        "spark_driver_memory",
        "replay_metrics_port",
        "stream_metrics_port",
        "worker_metrics_port",
    ):
        env[f"MUSICBOX_{name.upper()}"] = str(getattr(settings, name))
    return env


@pytest.fixture(scope="session")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    quiet_known_warnings()
    var_dir = tmp_path_factory.mktemp("clusters-var")
    (var_dir / "jars").symlink_to(Settings().jars_dir.resolve())
    base = free_port_block(20)
    settings = Settings(
        var_dir=var_dir,
        kafka_brokers=BROKERS,
        kafka_bootstrap=f"127.0.0.1:{base}",  # nodes on base, base+2, base+4
        kafka_controller_port=base + 1,  # base+1, base+3, base+5
        kafka_metrics_port=base + 6,
        kafka_heap="512m",
        prometheus_port=base + 9,
        spark_workers=SPARK_WORKERS,
        spark_master_port=base + 10,
        spark_master_ui_port=base + 11,
        spark_worker_ui_port=base + 12,
        spark_master=f"spark://127.0.0.1:{base + 10}",
        spark_driver_memory="1g",
        replay_metrics_port=base + 15,
        stream_metrics_port=base + 16,
        worker_metrics_port=base + 17,
    )
    tier = Clusters(settings, _env(settings))
    try:
        done = tier.musicbox("up", timeout_s=600)
        assert done.returncode == 0, f"`musicbox up` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        yield tier
    finally:
        tier.musicbox("down", timeout_s=300)
        for pid_file in settings.run_dir.glob("*.pid"):  # only if `down` failed: ours by PID file
            pid = ManagedProcess(pid_file.stem, settings.run_dir).pid()
            if pid is not None:
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def isolated(clusters: Clusters, tmp_path: Path) -> Iterator[Clusters]:
    """A test's own topic prefix (topics created, deleted after) and shared state dir."""
    from kafka import KafkaAdminClient

    from musicbox.topics import Topics

    prefix = f"c{uuid.uuid4().hex[:8]}."
    settings = clusters.settings.model_copy(
        update={"topic_prefix": prefix, "shared_dir": tmp_path / "shared"}
    )
    kafka_broker.ensure_topics(settings)
    env = {**clusters.env, "MUSICBOX_TOPIC_PREFIX": prefix, "MUSICBOX_SHARED_DIR": str(tmp_path / "shared")}
    yield Clusters(settings, env)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.delete_topics(list(Topics(prefix).all()))
    finally:
        admin.close()


def all_workers_alive(settings: Settings) -> bool:
    return len(spark_cluster.alive_workers(settings)) == SPARK_WORKERS
