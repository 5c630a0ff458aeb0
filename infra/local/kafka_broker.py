"""Local Kafka in KRaft mode from the Maven Central jars under var/jars/kafka: one node (the
default) or a replicated cluster of several (`kafka_nodes` lays them out), each with the
Prometheus JMX exporter as a java agent."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.errors import StackError
from infra.local.kafka_nodes import Node, nodes, server_properties
from infra.local.processes import ManagedProcess, port_open, require_free, wait_until
from musicbox.settings import REPO_ROOT, Settings
from musicbox.topics import Topics

LOG4J2_CONFIG = REPO_ROOT / "infra" / "kafka" / "log4j2.yaml"
EXPORTER_RULES = REPO_ROOT / "infra" / "kafka" / "jmx-exporter.yml"


def broker_process(settings: Settings, node: Node | None = None) -> ManagedProcess:
    """The process of `node` (default: the first local node)."""
    return ManagedProcess((node or nodes(settings)[0]).name, settings.run_dir)


def java_binary() -> str:
    """The `java` to run the broker with; Kafka 4 needs Java 17 or newer."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "no `java` on PATH: Kafka 4 needs Java 17 or newer; install Java 17 "
            "(`make setup` does: apt-get install openjdk-17-jre-headless)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        found = out.splitlines()[0] if out else "unknown"
        raise StackError(
            f"Kafka 4 needs Java 17+, found: {found} ({java}): install Java 17 "
            "(apt-get install openjdk-17-jre-headless) and put it first on PATH"
        )
    return java


def _classpath(settings: Settings) -> str:
    jars = settings.jars_dir / "kafka"
    if not any(jars.glob("kafka_2.13-*.jar")):
        raise StackError(f"the Kafka broker jars are missing from {jars}: run `make setup`")
    return f"{jars}/*"


def exporter_agent(settings: Settings) -> Path:
    """The JMX exporter's java agent jar resolved by `make setup`."""
    found = sorted((settings.jars_dir / "jmx-exporter").glob("jmx_prometheus_javaagent-*.jar"))
    if not found:
        raise StackError(
            f"the Prometheus JMX exporter agent is missing from {settings.jars_dir / 'jmx-exporter'}: "
            "run `make setup`"
        )
    return found[-1]


def _java_argv(
    settings: Settings, main_class: str, *args: str, heap: str | None = None, node: Node | None = None
) -> list[str]:
    argv = [java_binary()]
    if heap:
        argv += [f"-Xmx{heap}", f"-Xms{heap}"]
    if node is not None:  # the broker itself (not the storage tool): its metrics for Prometheus
        argv.append(f"-javaagent:{exporter_agent(settings)}={node.host}:{node.metrics_port}:{EXPORTER_RULES}")
    logs = settings.run_dir / ("kafka-logs" if node is None or node.name == "kafka" else f"{node.name}-logs")
    return [
        *argv,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={logs}",
        "-cp",
        _classpath(settings),
        main_class,
        *args,
    ]


def ensure_formatted(settings: Settings, cluster: list[Node]) -> bool:
    """Write each node's server.properties and format the storage of those not formatted yet,
    all with one cluster id. True when it formatted now."""
    todo = []
    for node in cluster:
        node.dir.mkdir(parents=True, exist_ok=True)
        node.properties_file.write_text(server_properties(settings, node, cluster))
        if not (node.data_dir / "meta.properties").exists():
            todo.append(node)
    if not todo:
        return False
    if len(todo) < len(cluster):
        formatted = ", ".join(str(n.data_dir) for n in cluster if n not in todo)
        raise StackError(
            f"some Kafka nodes are formatted ({formatted}) and others are not: stop the stack and "
            f"remove {settings.kafka_dir} (its topics are lost), then run `musicbox up` again"
        )
    cluster_id = _run_storage_tool(settings, "random-uuid").strip().splitlines()[-1]
    standalone = ["--standalone"] if len(cluster) == 1 else []  # a static quorum of several: no flag
    for node in cluster:
        _run_storage_tool(settings, "format", *standalone, "-t", cluster_id, "-c", str(node.properties_file))
    return True


def _run_storage_tool(settings: Settings, *args: str) -> str:
    argv = _java_argv(settings, "kafka.tools.StorageTool", *args)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise StackError(
            f"Kafka storage tool `{args[0]}` failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]}\n"
            f"If {settings.kafka_dir} holds a broken or foreign format, stop the stack and "
            "remove that folder (its topics are lost), then run `musicbox up` again."
        )
    return done.stdout


def check_ports(settings: Settings) -> None:
    """For each node not running: refuse ports that another process holds, naming it."""
    cluster = nodes(settings)
    for node in cluster:
        if broker_process(settings, node).pid() is not None:
            continue
        what = "Kafka" if len(cluster) == 1 else f"Kafka node {node.node_id}"
        require_free(node.host, node.port, what, "MUSICBOX_KAFKA_BOOTSTRAP")
        require_free(
            node.host, node.controller_port, f"{what}'s controller", "MUSICBOX_KAFKA_CONTROLLER_PORT"
        )
        require_free(node.host, node.metrics_port, f"{what}'s metrics", "MUSICBOX_KAFKA_METRICS_PORT")


def other_layout_running(settings: Settings) -> list[str]:
    """Kafka nodes of ours that run but are not of the layout `settings` asks for (one node vs a
    cluster): their names. `up` refuses to start beside them."""
    wanted = {n.name for n in nodes(settings)}
    return sorted(
        p.stem
        for p in settings.run_dir.glob("kafka*.pid")
        if p.stem not in wanted and ManagedProcess(p.stem, settings.run_dir).pid() is not None
    )


def start(settings: Settings, timeout_s: float = 90.0) -> str:
    """Start every local node not running yet; wait until the cluster answers. Returns what it did."""
    cluster = nodes(settings)
    if not any(broker_process(settings, n).pid() is None for n in cluster):
        wait_until(lambda: ready(settings), timeout_s, f"Kafka on {settings.kafka_bootstrap}")
        return "already running"
    others = other_layout_running(settings)
    if others:
        raise StackError(
            f"Kafka nodes of another layout run ({', '.join(others)}): `musicbox down` first "
            f"(MUSICBOX_KAFKA_BROKERS={settings.kafka_brokers} asks for {len(cluster)})"
        )
    check_ports(settings)
    formatted = ensure_formatted(settings, cluster)
    pids = [start_node(settings, node) for node in cluster if broker_process(settings, node).pid() is None]
    try:
        wait_until(
            lambda: _all_listening(settings, cluster) and ready(settings),
            timeout_s,
            f"Kafka on {settings.kafka_bootstrap}",
        )
        if len(cluster) > 1:
            wait_until(
                lambda: len(registered_brokers(settings)) == len(cluster),
                timeout_s,
                "every Kafka node to join",
            )
    except Exception as exc:
        dead = [n for n in cluster if broker_process(settings, n).pid() is None]
        if dead:
            tail = broker_process(settings, dead[0]).log_tail()
            raise StackError(
                f"Kafka node {dead[0].node_id} exited during start-up; its log says:\n{tail}"
            ) from exc
        raise
    started = ", ".join(map(str, pids))
    return f"started (pid {started}{', storage formatted' if formatted else ''})"


def start_node(settings: Settings, node: Node) -> int:
    """Start one formatted node (also: restart one that was killed); returns its pid."""
    argv = _java_argv(settings, "kafka.Kafka", str(node.properties_file), heap=settings.kafka_heap, node=node)
    return broker_process(settings, node).start(argv)


def _all_listening(settings: Settings, cluster: list[Node]) -> bool:
    """Every node runs and takes connections (a client would log each refused one as an error)."""
    return all(broker_process(settings, n).pid() is not None and port_open(n.host, n.port) for n in cluster)


def ready(settings: Settings) -> bool:
    """True when a broker of the bootstrap list answers a metadata request."""
    addresses = [a.rpartition(":") for a in settings.kafka_bootstrap.split(",")]
    if not any(port_open(host or "127.0.0.1", int(port)) for host, _, port in addresses):
        return False
    try:
        admin = _admin(settings)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def _admin(settings: Settings) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="musicbox-admin", request_timeout_ms=10_000
    )


def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics of DESIGN section 4 that do not exist yet; returns those created."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    topics = Topics(settings.topic_prefix)
    wanted = topics.all()
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=topics.partitions_of(name, settings.partitions),
                # The broker's default.replication.factor: 1 on one node, 3 on a cluster
                # (min.insync.replicas also comes from the broker).
                replication_factor=-1,
                topic_configs=config,
            )
            for name, config in wanted.items()
            if name not in existing
        ]
        if new:
            # Created concurrently by another `up`: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return [t.name for t in new]
    finally:
        admin.close()


def topic_summary(settings: Settings) -> dict[str, int]:
    """Partitions of each musicbox topic that exists."""
    admin = _admin(settings)
    try:
        names = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        described = admin.describe_topics(names)
        return {d.get("name") or d["topic"]: len(d["partitions"]) for d in described}
    finally:
        admin.close()


def registered_brokers(settings: Settings) -> list[int]:
    """Ids of the brokers the cluster's metadata lists (unfenced), or [] when none answers."""
    try:
        admin = _admin(settings)
    except Exception:
        return []
    try:
        return sorted(b["broker_id"] for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced"))
    except Exception:
        return []
    finally:
        admin.close()


def running_nodes(settings: Settings) -> list[str]:
    """Names of every Kafka node of ours that runs (one node or a cluster)."""
    return sorted(
        p.stem for p in settings.run_dir.glob("kafka*.pid") if ManagedProcess(p.stem, settings.run_dir).pid()
    )


def stop(settings: Settings) -> bool:
    """Stop every Kafka node of ours (whatever the layout it was started with)."""
    names = running_nodes(settings)
    # All at once (SIGTERM), then wait: a controller quorum that loses its majority one node at a
    # time makes the last nodes wait for it before they shut down.
    procs = [ManagedProcess(name, settings.run_dir) for name in names]
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        proc.stop(timeout_s=60)
    return bool(procs)


@dataclass(frozen=True)
class ClusterHealth:
    """What `musicbox status` shows of Kafka: who is in, who leads, which partitions suffer."""

    brokers: list[int]  # registered, unfenced broker ids
    controller: int | None  # the active controller (the metadata quorum's leader)
    partitions: int
    under_replicated: list[str]  # "topic/partition" with fewer in-sync replicas than replicas
    offline: list[str]  # "topic/partition" without a leader


def cluster_health(settings: Settings) -> ClusterHealth:
    """The cluster as its metadata describes it (any broker answers); raises when none does."""
    admin = _admin(settings)
    try:
        brokers = sorted(
            b["broker_id"] for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")
        )
        quorum = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]
        described = admin.describe_topics(admin.list_topics())
    finally:
        admin.close()
    parts = [(d.get("name") or d["topic"], p) for d in described for p in d["partitions"]]
    return ClusterHealth(
        brokers=brokers,
        controller=quorum["leader_id"] if quorum["leader_id"] >= 0 else None,
        partitions=len(parts),
        under_replicated=sorted(
            f"{t}/{p['partition_index']}" for t, p in parts if len(p["isr_nodes"]) < len(p["replica_nodes"])
        ),
        offline=sorted(f"{t}/{p['partition_index']}" for t, p in parts if p["leader_id"] < 0),
    )
