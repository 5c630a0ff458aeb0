"""`musicbox up`, `down` and `status`: the local stack (Kafka in KRaft mode, one node or a
replicated cluster; Prometheus; optionally a Spark standalone cluster)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from infra.local import kafka_broker, prometheus_server, spark_cluster
from infra.local.kafka_nodes import nodes, replication
from infra.local.processes import port_open
from musicbox.settings import Settings

console = Console()


def up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout-s", type=float, default=120.0, help="how long to wait for each service")
    parser.add_argument(
        "--brokers",
        type=int,
        help="Kafka nodes to start (default MUSICBOX_KAFKA_BROKERS, 1): 3 make a replicated cluster",
    )
    parser.add_argument(
        "--spark-workers",
        type=int,
        help="a Spark standalone master and this many workers (default MUSICBOX_SPARK_WORKERS, 0)",
    )


@dataclass(frozen=True)
class Service:
    name: str
    running: Callable[[Settings], bool]
    stop: Callable[[Settings], bool]


SERVICES = (
    Service("kafka", lambda s: bool(kafka_broker.running_nodes(s)), kafka_broker.stop),
    Service(
        "prometheus",
        lambda s: prometheus_server.prometheus_process(s).pid() is not None,
        prometheus_server.stop,
    ),
    Service("spark", lambda s: bool(spark_cluster.running(s)), spark_cluster.stop),
)


def with_layout(settings: Settings, brokers: int | None, spark_workers: int | None) -> Settings:
    """`settings` with the command line's layout; re-validated, so the bootstrap lists every node."""
    update = {
        k: v for k, v in (("kafka_brokers", brokers), ("spark_workers", spark_workers)) if v is not None
    }
    if not update:
        return settings
    return Settings.model_validate({**settings.model_dump(), **update})


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is not running, create missing topics; safe to run twice. All or nothing: when
    a step fails, what this run started is stopped again."""
    settings = with_layout(settings, args.brokers, args.spark_workers)
    started = time.monotonic()
    wanted = {"kafka", "prometheus"} | ({"spark"} if settings.spark_workers else set())
    was_running = {s.name for s in SERVICES if s.running(settings)}
    try:
        # Every port before any start: a port conflict leaves nothing half up.
        kafka_broker.check_ports(settings)
        prometheus_server.check_port(settings)
        spark_cluster.check_ports(settings)
        created, any_started = _start(args, settings)
    except BaseException:
        for service in SERVICES:
            if service.name not in was_running and service.stop(settings):
                console.print(f"{service.name:<11} stopped again: `up` failed")
        raise
    if wanted <= was_running and not created and not any_started:
        console.print("everything was already up: nothing started, nothing created")
    console.print(
        f"up in {time.monotonic() - started:.1f} s; `musicbox status` shows health, `musicbox down` stops"
    )
    _print_environment(settings)
    return 0


def _start(args: argparse.Namespace, settings: Settings) -> tuple[list[str], bool]:
    """Start Kafka, create the missing topics, start Prometheus and Spark; returns the topics
    created and whether anything started."""
    count = settings.kafka_brokers
    layout = "single node" if count == 1 else f"{count} nodes, replication {replication(count)[0]}"
    with console.status(f"starting Kafka (KRaft, {layout})..."):
        kafka = kafka_broker.start(settings, timeout_s=args.timeout_s)
    console.print(f"kafka       {settings.kafka_bootstrap:<22} {kafka}")
    with console.status("creating topics..."):
        created = kafka_broker.ensure_topics(settings)
    console.print(f"topics      {len(created)} created" + (f": {', '.join(created)}" if created else ""))
    _write_scrape_targets(settings)
    with console.status("starting Prometheus..."):
        prom = prometheus_server.start(settings, timeout_s=args.timeout_s)
    console.print(f"prometheus  {prometheus_server.base_url(settings):<22} {prom}")
    spark = "not asked for"
    if settings.spark_workers:
        with console.status(f"starting Spark (a master, {settings.spark_workers} workers)..."):
            spark = spark_cluster.start(settings, timeout_s=args.timeout_s)
        console.print(f"spark       {spark_cluster.master_url(settings):<22} {spark}")
    any_started = any("started" in what for what in (kafka, prom, spark))
    return created, any_started


def _write_scrape_targets(settings: Settings) -> None:
    """What Prometheus scrapes of the Kafka nodes and Spark daemons: written before it starts
    (it watches the folder for changes only if the folder exists then)."""
    prometheus_server.write_targets(
        settings, "kafka", [f"{n.host}:{n.metrics_port}" for n in nodes(settings)]
    )
    if settings.spark_workers:
        master = spark_cluster.master(settings)
        prometheus_server.write_targets(settings, "spark-master", [f"127.0.0.1:{master.ui_port}"])
        workers = [f"127.0.0.1:{w.ui_port}" for w in spark_cluster.workers(settings)]
        prometheus_server.write_targets(settings, "spark-worker", workers)


def _print_environment(settings: Settings) -> None:
    """What the other commands need to use this layout (they read it from the environment)."""
    hints = []
    if settings.kafka_brokers > 1:
        hints.append(f"MUSICBOX_KAFKA_BROKERS={settings.kafka_brokers}")
    if settings.spark_workers:
        hints.append(f"MUSICBOX_SPARK_MASTER={spark_cluster.master_url(settings)}")
    if hints:
        console.print(f"for the other commands: export {' '.join(hints)}")


def down_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop only what `up` started (by its PID files), every node of every layout; data under
    var/ is kept."""
    for service in reversed(SERVICES):  # the reverse of `up`'s order
        if service.name == "spark" and not service.running(settings):
            continue  # optional: say nothing of what was never asked for
        done = "stopped" if service.stop(settings) else "was not running (nothing of ours to stop)"
        console.print(f"{service.name:<11} {done}")
    return 0


def status_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def status(args: argparse.Namespace, settings: Settings) -> int:
    """One row per service (per Kafka node, per Spark daemon): running?, where, health. Exit 0
    only when everything is healthy."""
    settings = with_layout(settings, _running_brokers(settings), _running_spark_workers(settings))
    table = Table(title="musicbox local stack")
    for col in ("service", "pid", "address", "health"):
        table.add_column(col)
    healthy = _kafka_rows(table, settings)

    pid = prometheus_server.prometheus_process(settings).pid()
    if prometheus_server.ready(settings):
        targets = prometheus_server.targets(settings)
        up_jobs = sorted(t["job"] for t in targets if t["health"] == "up")
        health = f"healthy: scraping {', '.join(up_jobs) or 'nothing yet'} ({len(up_jobs)}/{len(targets)} up)"
    else:
        health = "down" if pid is None else "starting or unhealthy"
        healthy = False
    table.add_row("prometheus", str(pid or "-"), prometheus_server.base_url(settings), health)
    if settings.spark_workers:
        healthy &= _spark_rows(table, settings)

    for name, mport in (
        ("replay metrics", settings.replay_metrics_port),
        ("stream metrics", settings.stream_metrics_port),
        ("worker metrics", settings.worker_metrics_port),
    ):
        serving = port_open(settings.metrics_host, mport)
        table.add_row(name, "-", f"{settings.metrics_host}:{mport}", "serving" if serving else "not running")
    console.print(table)
    return 0 if healthy else 1


def _running_brokers(settings: Settings) -> int | None:
    """The node count of the Kafka layout that runs (a cluster of ours needs no setting to be seen)."""
    cluster = [n for n in kafka_broker.running_nodes(settings) if n != "kafka"]
    return len(list(settings.kafka_dir.glob("node-*"))) if cluster else None


def _running_spark_workers(settings: Settings) -> int | None:
    workers = [n for n in spark_cluster.running(settings) if n.startswith("spark-worker-")]
    return max(settings.spark_workers, len(workers)) if workers else None


def _kafka_rows(table: Table, settings: Settings) -> bool:
    """A row per node, then the cluster's health (one row only for a single node). True if healthy."""
    cluster = nodes(settings)
    health = None
    if kafka_broker.ready(settings):
        try:
            health = kafka_broker.cluster_health(settings)
        except Exception as exc:  # a node dying meanwhile: say so, do not crash the status
            table.add_row("kafka", "-", settings.kafka_bootstrap, f"unhealthy: {exc!r}")
            return False
    node_rows = []
    for node in cluster:
        pid = kafka_broker.broker_process(settings, node).pid()
        if pid is None:  # ours and dead: the metadata may list it until the controller fences it
            what = "down" + (
                " (not fenced yet)" if health is not None and node.node_id in health.brokers else ""
            )
        elif health is None or node.node_id not in health.brokers:
            what = "running, not in the cluster (starting?)"
        else:
            what = "broker" + (", active controller" if node.node_id == health.controller else "")
        node_rows.append((node.name, str(pid or "-"), node.address, what))
    if health is None:
        if len(cluster) > 1:
            for row in node_rows:
                table.add_row(*row)
        table.add_row(
            "kafka",
            node_rows[0][1] if len(cluster) == 1 else "-",
            settings.kafka_bootstrap,
            "down" if all(r[1] == "-" for r in node_rows) else "starting or unhealthy (not answering)",
        )
        return False
    topics = kafka_broker.topic_summary(settings)
    expected = len(kafka_broker.Topics(settings.topic_prefix).all())
    summary = (
        f"{len(topics)}/{expected} musicbox topics; {len(health.brokers)}/{len(cluster)} brokers, "
        f"controller: node {health.controller}; {len(health.under_replicated)} under-replicated, "
        f"{len(health.offline)} offline of {health.partitions} partitions"
    )
    ok = (
        len(topics) == expected
        and len(health.brokers) == len(cluster)
        and not health.under_replicated
        and not health.offline
    )
    if len(cluster) > 1:
        for row in node_rows:
            table.add_row(*row)
        table.add_row(
            "kafka cluster", "-", f"{len(cluster)} nodes", ("healthy: " if ok else "unhealthy: ") + summary
        )
    else:
        table.add_row(
            "kafka", node_rows[0][1], node_rows[0][2], ("healthy: " if ok else "unhealthy: ") + summary
        )
    return ok


def _spark_rows(table: Table, settings: Settings) -> bool:
    """The master (with the workers it counts alive) and a row per worker. True if healthy."""
    master = spark_cluster.master(settings)
    state = spark_cluster.master_state(settings)
    alive = spark_cluster.alive_workers(settings)
    pid = spark_cluster.process(settings, master).pid()
    if state is None:
        health = "down" if pid is None else "starting or unhealthy (not answering)"
    else:
        apps = len(state.get("activeapps", []))
        health = f"{len(alive)}/{settings.spark_workers} workers alive, {apps} running applications"
    table.add_row("spark master", str(pid or "-"), spark_cluster.master_url(settings), health)
    for worker in spark_cluster.workers(settings):
        wpid = spark_cluster.process(settings, worker).pid()
        table.add_row(
            worker.name,
            str(wpid or "-"),
            f"127.0.0.1:{worker.ui_port} (web UI)",
            "running" if wpid else "down",
        )
    return state is not None and len(alive) == settings.spark_workers
