"""A single-node Kafka in KRaft mode from the Maven Central jars under var/jars/kafka."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.local.errors import StackError
from infra.local.processes import ManagedProcess, port_open, require_free, wait_until
from musicbox.settings import REPO_ROOT, Settings
from musicbox.topics import Topics

LOG4J2_CONFIG = REPO_ROOT / "infra" / "kafka" / "log4j2.yaml"


def server_properties(settings: Settings) -> str:
    """The broker+controller configuration: loopback only, single-node replication factors."""
    host, port = settings.kafka_host_port
    ctl = settings.kafka_controller_port
    data_dir = settings.kafka_dir / "data"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"controller.quorum.bootstrap.servers={host}:{ctl}",
            f"log.dirs={data_dir}",
            f"num.partitions={settings.partitions}",
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # Tests and the demo join groups often; the default 3 s delay is pure waiting.
            "group.initial.rebalance.delay.ms=0",
            # Topics come from `musicbox up` with the right partitions; a typo should fail loudly.
            "auto.create.topics.enable=false",
            "log.segment.bytes=268435456",
            "",
        ]
    )


def broker_process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("kafka", settings.run_dir)


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


def _java_argv(settings: Settings, main_class: str, *args: str, heap: str | None = None) -> list[str]:
    argv = [java_binary()]
    if heap:
        argv += [f"-Xmx{heap}", f"-Xms{heap}"]
    return [
        *argv,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={settings.run_dir / 'kafka-logs'}",
        "-cp",
        _classpath(settings),
        main_class,
        *args,
    ]


def ensure_formatted(settings: Settings) -> bool:
    """Write server.properties and format the storage once. True when it formatted now."""
    settings.kafka_dir.mkdir(parents=True, exist_ok=True)
    props = settings.kafka_dir / "server.properties"
    props.write_text(server_properties(settings))
    if (settings.kafka_dir / "data" / "meta.properties").exists():
        return False
    cluster_id = _run_storage_tool(settings, "random-uuid").strip().splitlines()[-1]
    _run_storage_tool(settings, "format", "--standalone", "-t", cluster_id, "-c", str(props))
    return True


def _run_storage_tool(settings: Settings, *args: str) -> str:
    argv = _java_argv(settings, "kafka.tools.StorageTool", *args)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise StackError(
            f"Kafka storage tool `{args[0]}` failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]}\n"
            f"If {settings.kafka_dir / 'data'} holds a broken or foreign format, stop the stack and "
            "remove that folder (its topics are lost), then run `musicbox up` again."
        )
    return done.stdout


def check_ports(settings: Settings) -> None:
    """Unless our broker runs: refuse ports that another process holds, naming it."""
    if broker_process(settings).pid() is not None:
        return
    host, port = settings.kafka_host_port
    require_free(host, port, "Kafka", "MUSICBOX_KAFKA_BOOTSTRAP")
    require_free(host, settings.kafka_controller_port, "Kafka's controller", "MUSICBOX_KAFKA_CONTROLLER_PORT")


def start(settings: Settings, timeout_s: float = 90.0) -> str:
    """Start the broker unless ours already runs; wait until it answers. Returns what it did."""
    proc = broker_process(settings)
    host, port = settings.kafka_host_port
    if proc.pid() is not None:
        wait_until(lambda: port_open(host, port), timeout_s, f"Kafka on {host}:{port}")
        return "already running"
    check_ports(settings)
    formatted = ensure_formatted(settings)
    argv = _java_argv(
        settings, "kafka.Kafka", str(settings.kafka_dir / "server.properties"), heap=settings.kafka_heap
    )
    pid = proc.start(argv)
    try:
        wait_until(lambda: proc.pid() is not None and ready(settings), timeout_s, f"Kafka on {host}:{port}")
    except Exception as exc:
        if proc.pid() is None:
            raise StackError(f"Kafka exited during start-up; its log says:\n{proc.log_tail()}") from exc
        raise
    return f"started (pid {pid}{', storage formatted' if formatted else ''})"


def ready(settings: Settings) -> bool:
    """True when the broker answers a metadata request."""
    host, port = settings.kafka_host_port
    if not port_open(host, port):
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
                replication_factor=1,
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


def stop(settings: Settings) -> bool:
    return broker_process(settings).stop(timeout_s=60)


def data_dir(settings: Settings) -> Path:
    return settings.kafka_dir / "data"
