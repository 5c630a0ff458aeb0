"""The local Kafka nodes `musicbox up` starts, and each one's configuration: pure, no processes.

One node (the default) is a broker+controller with replication 1, as always. Three nodes form a
replicated KRaft cluster on loopback: each a broker and a voter of a controller quorum of three,
with its own node id, listener, controller and metrics ports and storage under var/kafka/node-<i>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from musicbox.settings import Settings, node_addresses

REPLICAS_MAX = 3  # replicas of every partition on a cluster (more nodes only spread them)


@dataclass(frozen=True)
class Node:
    node_id: int
    host: str
    port: int
    controller_port: int
    metrics_port: int
    dir: Path  # server.properties and data/ (the log dirs)

    @property
    def name(self) -> str:
        """Its PID file and log name: `kafka` for a single node (as before clusters), `kafka-<i>`."""
        return "kafka" if self.dir.name == "kafka" else f"kafka-{self.node_id}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"


def nodes(settings: Settings, count: int | None = None) -> list[Node]:
    """The local nodes: `count` (default MUSICBOX_KAFKA_BROKERS), at the bootstrap's addresses."""
    count = settings.kafka_brokers if count is None else count
    found = []
    for i, address in enumerate(node_addresses(settings.kafka_bootstrap, count)[:count]):
        host, _, port = address.rpartition(":")
        found.append(
            Node(
                node_id=i + 1,
                host=host or "127.0.0.1",
                port=int(port),
                controller_port=settings.kafka_controller_port + 2 * i,
                metrics_port=settings.kafka_metrics_port + i,
                dir=settings.kafka_dir if count == 1 else settings.kafka_dir / f"node-{i + 1}",
            )
        )
    return found


def replication(count: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) of every topic on `count` nodes: with three,
    a write is acknowledged by two replicas, so one node may die without losing it or stopping."""
    factor = min(count, REPLICAS_MAX)
    return factor, 2 if factor >= REPLICAS_MAX else 1


def server_properties(settings: Settings, node: Node, cluster: list[Node]) -> str:
    """A node's configuration: loopback only, replication as `replication` says for the cluster."""
    factor, min_isr = replication(len(cluster))
    if len(cluster) == 1:
        # A dynamic quorum of one (formatted --standalone), as before clusters existed.
        quorum = f"controller.quorum.bootstrap.servers={node.host}:{node.controller_port}"
    else:
        # A static quorum of every node (formatted without --standalone).
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in cluster)
        quorum = f"controller.quorum.voters={voters}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"listeners=PLAINTEXT://{node.address},CONTROLLER://{node.host}:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://{node.address}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            quorum,
            f"log.dirs={node.data_dir}",
            f"num.partitions={settings.partitions}",
            # Topics are created with the broker's default factor (`ensure_topics` asks for -1).
            f"default.replication.factor={factor}",
            f"min.insync.replicas={min_isr}",
            # A replica that was not in sync never becomes leader: no acknowledged write is lost.
            "unclean.leader.election.enable=false",
            # The internal topics (offsets, transaction state, share groups) alike.
            f"offsets.topic.replication.factor={factor}",
            "offsets.topic.num.partitions=4",
            f"transaction.state.log.replication.factor={factor}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={factor}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            # Tests and the demo join groups often; the default 3 s delay is pure waiting.
            "group.initial.rebalance.delay.ms=0",
            # Topics come from `musicbox up` with the right partitions; a typo should fail loudly.
            "auto.create.topics.enable=false",
            "log.segment.bytes=268435456",
            "",
        ]
    )
