from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.kafka_nodes import nodes, replication, server_properties
from musicbox.settings import Settings
from musicbox.topics import Topics


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_topic_names_follow_the_contract() -> None:
    t = Topics()
    assert t.events == ("musicbox.plays", "musicbox.downloads", "musicbox.searches")
    assert t.churn_scores == "musicbox.churn-scores"
    assert t.for_event_type("download") == "musicbox.downloads"
    assert Topics("test.").dead_letters == "test.dead-letters"


def test_replay_topics_keep_records_forever() -> None:
    # Record timestamps are wall-clock; a replay must stay readable however old it gets.
    topics = Topics().all()
    assert len(topics) == 9
    for name in Topics().events:
        assert topics[name]["retention.ms"] == "-1"
    # The replay ledger keeps the latest record per key, on one partition read in order.
    ledger = Topics().replay_ledger
    assert topics[ledger] == {"cleanup.policy": "compact"}
    assert Topics().partitions_of(ledger, 6) == 1 and Topics().partitions_of(Topics().plays, 6) == 6


def test_broker_listens_on_loopback_only_with_single_node_factors() -> None:
    [node] = nodes(Settings())
    props = _props(server_properties(Settings(), node, [node]))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1", key
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1" and "controller.quorum.voters" not in props
    assert node.name == "kafka" and node.data_dir == Settings().kafka_dir / "data"  # as before clusters


def test_three_nodes_form_one_quorum_with_replication_three_and_min_isr_two(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka_brokers=3)
    cluster = nodes(settings)
    props = [_props(server_properties(settings, node, cluster)) for node in cluster]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    # Every port and folder apart; every node names the same three voters.
    ports = [(n.port, n.controller_port, n.metrics_port) for n in cluster]
    assert ports == [(9092, 9093, 9404), (9094, 9095, 9405), (9096, 9097, 9406)]
    assert len({p["log.dirs"] for p in props}) == 3
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert all(p["controller.quorum.voters"] == voters for p in props)
    assert not any("controller.quorum.bootstrap.servers" in p for p in props)  # static quorum only
    for p in props:
        assert p["default.replication.factor"] == "3" and p["min.insync.replicas"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
        # The internal topics too: committed offsets and transactions survive a node.
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, (1, 1)),  # one node: nothing to replicate to
        (2, (2, 1)),  # two: a write needs one replica, or one node down would stop every write
        (3, (3, 2)),  # three: acknowledged by two, so one node may die without losing a write
        (5, (3, 2)),  # more nodes spread partitions; three copies stay enough
    ],
)
def test_replication_by_node_count(count: int, expected: tuple[int, int]) -> None:
    assert replication(count) == expected
