"""Faults on the clusters, each reconciled exactly: a Kafka leader killed mid-replay, a Spark
worker killed mid-batch; replay -> stream on the Spark cluster -> parity, every time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from infra.local import kafka_broker, spark_cluster
from musicbox.events import Event
from musicbox.rawlogs import iter_logs
from musicbox.topics import Topics
from streaming.aggregates.outputs import FeatureLog
from streaming.aggregates.store import StateStore
from tests.clusters.conftest import SPARK_WORKERS, Clusters, all_workers_alive
from tests.fixtures.prometheus import query
from tests.fixtures.waiting import wait_until
from tests.integration.conftest import consume_all

DAYS = 10
# Several micro-batches per run, so that a batch is under way when a worker dies.
STREAM_ENV = {"MUSICBOX_STREAM_MAX_OFFSETS": "5000", "MUSICBOX_STREAM_COMPACT_EVERY": "3"}


@pytest.fixture(scope="module")
def ten_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 users over 10 days with every kind of dirt (malformed lines, garbage fields, a missing shard)."""
    out = tmp_path_factory.mktemp("logs")
    argv = ["generate", "--users", "300", "--days", str(DAYS), "--seed", "7", "--out", str(out), "--force"]
    subprocess.run([sys.executable, "-m", "musicbox", *argv], check=True, capture_output=True)
    return out


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def _stream_and_parity(c: Clusters, logs: Path) -> None:
    """The stream job on the Spark cluster (one micro-batch), then parity with the batch job (on
    it too): exact."""
    stream = c.musicbox("stream", "--available-now", "--no-metrics")
    assert stream.returncode == 0, _output(stream)
    assert len(FeatureLog(c.settings.feature_log_dir).days()) == DAYS
    parity = c.musicbox("parity", "--logs", str(logs))
    assert parity.returncode == 0, _output(parity)  # exit 1 on any difference


def _ledger_commits(c: Clusters) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=c.settings.kafka_bootstrap)
    try:
        tp = TopicPartition(Topics(c.settings.topic_prefix).replay_ledger, 0)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def _leader(c: Clusters, topic: str, partition: int) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=c.settings.kafka_bootstrap)
    try:
        [described] = admin.describe_topics([topic])
        [p] = [p for p in described["partitions"] if p["partition_index"] == partition]
        return int(p["leader_id"])
    finally:
        admin.close()


def test_the_clusters_report_their_health_and_metrics(clusters: Clusters) -> None:
    status = clusters.musicbox("status")
    assert status.returncode == 0, _output(status)
    assert "3/3 brokers" in status.stdout and "0 under-replicated, 0 offline" in status.stdout
    assert f"{SPARK_WORKERS}/{SPARK_WORKERS} workers alive" in status.stdout
    assert status.stdout.count("active controller") == 1
    # Spark serves every series the dashboard reads of it.
    served = ""
    for daemon in [spark_cluster.master(clusters.settings), *spark_cluster.workers(clusters.settings)]:
        with urllib.request.urlopen(daemon.metrics_url, timeout=10) as resp:
            served += resp.read().decode()
    assert [m for m in spark_cluster.DASHBOARD_METRICS if f"\n{m}{{" not in served] == []
    # Prometheus scrapes every node's JMX exporter and every Spark daemon.
    base = f"http://127.0.0.1:{clusters.settings.prometheus_port}"

    def scraped() -> bool:
        up = query(base, 'up{job=~"kafka|spark-master|spark-worker"} == 1')
        return len(up) == 3 + 1 + SPARK_WORKERS

    wait_until(scraped, 60, "Prometheus to scrape the 3 Kafka nodes and the Spark daemons", interval_s=1)
    urp = query(base, "kafka_server_under_replicated_partitions")
    assert len(urp) == 3 and all(r["value"][1] == "0" for r in urp)


def test_a_partition_leader_killed_mid_replay_loses_no_committed_event(
    isolated: Clusters, ten_days: Path
) -> None:
    c, topics = isolated, Topics(isolated.settings.topic_prefix)
    log = c.settings.var_dir / f"replay-{c.settings.topic_prefix}log"
    with log.open("w") as out:
        replay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "musicbox",
                "replay",
                "--logs",
                str(ten_days),
                "--max-speed",
                "--no-metrics",
            ],
            env=c.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _ledger_commits(c) > 0, 120, "the replay's first commit", interval_s=0.2)
        # The busiest partition of the busiest topic: every replay transaction writes to it.
        node = c.node(_leader(c, topics.plays, 0))
        assert replay.poll() is None, "the replay finished before the kill: nothing was tested"
        committed_at_kill = _ledger_commits(c)
        c.kill(node.name)

        # The controller fences the dead node; `status` says so and counts the partitions it held.
        def fenced() -> bool:
            brokers = kafka_broker.registered_brokers(c.settings)  # [] when no broker answered
            return bool(brokers) and node.node_id not in brokers

        wait_until(fenced, 60, f"the cluster to fence node {node.node_id}")
        status = c.musicbox("status")
        assert status.returncode == 1, _output(status)
        [row] = [line for line in status.stdout.splitlines() if f" {node.name} " in line]
        assert " down " in row, row
        assert "2/3 brokers" in status.stdout and " 0 under-replicated" not in status.stdout
        # Later, the node comes back and catches up.
        kafka_broker.start_node(c.settings, node)
        assert replay.wait(timeout=900) == 0, log.read_text()[-3000:]  # the replay went on
    finally:
        if replay.poll() is None:
            replay.send_signal(signal.SIGKILL)
            replay.wait()
    assert committed_at_kill < _ledger_commits(c), "nothing was committed after the kill"
    wait_until(lambda: node.node_id in kafka_broker.registered_brokers(c.settings), 120, "the node's return")
    wait_until(
        lambda: not kafka_broker.cluster_health(c.settings).under_replicated,
        180,
        "every partition in sync again",
        interval_s=2,
    )

    # Every committed event is consumed once (read_committed), as many as the reader reads.
    expected = Counter((e.type, e.date) for e in iter_logs(ten_days) if isinstance(e, Event))
    values = [json.loads(v) for *_, v in consume_all(c.settings, list(topics.events))]
    events = [v for v in values if v.get("type") in ("play", "download", "search")]
    assert Counter((v["type"], v["date"]) for v in events) == expected
    assert len({v["event_id"] for v in events}) == len(events)  # no event twice
    _stream_and_parity(c, ten_days)


def test_a_spark_worker_killed_mid_batch_loses_nothing(isolated: Clusters, ten_days: Path) -> None:
    c = isolated
    replay = c.musicbox("replay", "--logs", str(ten_days), "--max-speed", "--no-metrics")
    assert replay.returncode == 0, _output(replay)
    log = c.settings.var_dir / f"stream-{c.settings.topic_prefix}log"
    store = StateStore(c.settings.stream_dir)
    worker = spark_cluster.workers(c.settings)[-1]
    with log.open("w") as out:
        stream = subprocess.Popen(
            [sys.executable, "-m", "musicbox", "stream", "--available-now", "--no-metrics"],
            env={**c.env, **STREAM_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Two batches done: the third is under way (a backlog leaves no pause between batches).
        wait_until(
            lambda: store.progress_before(2**62).batch_id >= 1 or stream.poll() is not None,
            600,
            "the stream job's second batch",
            interval_s=0.2,
        )
        assert stream.poll() is None, "the stream job finished before the kill: nothing was tested"
        days_at_kill = len(FeatureLog(c.settings.feature_log_dir).days())
        c.kill(worker.name)
        assert stream.wait(timeout=900) == 0, log.read_text()[-3000:]  # the job went on
    finally:
        if stream.poll() is None:
            stream.send_signal(signal.SIGKILL)
            stream.wait()
        spark_cluster.start_worker(c.settings, worker)  # for the tests after this one
    output = log.read_text()
    # Its executor was lost and its work ran again on the other worker.
    assert "Lost executor" in output or "ExecutorLostFailure" in output, output[-3000:]
    assert days_at_kill < DAYS
    assert len(FeatureLog(c.settings.feature_log_dir).days()) == DAYS
    parity = c.musicbox("parity", "--logs", str(ten_days))
    assert parity.returncode == 0, _output(parity)
    wait_until(lambda: all_workers_alive(c.settings), 120, "the restarted worker to register")
