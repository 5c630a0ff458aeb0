from __future__ import annotations

from infra.local.kafka_broker import server_properties
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
    props = _props(server_properties(Settings()))
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
