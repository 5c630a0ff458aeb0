"""`musicbox up`, `down` and `status`: the local stack (Kafka in KRaft mode, Prometheus)."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from infra.local import kafka_broker, prometheus_server
from infra.local.processes import port_open
from musicbox.settings import Settings

console = Console()


def up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout-s", type=float, default=120.0, help="how long to wait for each service")


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is not running, create missing topics; safe to run twice."""
    started = time.monotonic()
    with console.status("starting Kafka (KRaft, single node)..."):
        kafka = kafka_broker.start(settings, timeout_s=args.timeout_s)
    console.print(f"kafka       {settings.kafka_bootstrap:<22} {kafka}")
    with console.status("creating topics..."):
        created = kafka_broker.ensure_topics(settings)
    console.print(f"topics      {len(created)} created" + (f": {', '.join(created)}" if created else ""))
    with console.status("starting Prometheus..."):
        prom = prometheus_server.start(settings, timeout_s=args.timeout_s)
    console.print(f"prometheus  {prometheus_server.base_url(settings):<22} {prom}")
    console.print(
        f"up in {time.monotonic() - started:.1f} s; `musicbox status` shows health, `musicbox down` stops"
    )
    return 0


def down_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop only what `up` started (by its PID files); data under var/ is kept."""
    for name, stop in (("prometheus", prometheus_server.stop), ("kafka", kafka_broker.stop)):
        console.print(
            f"{name:<11} {'stopped' if stop(settings) else 'was not running (nothing of ours to stop)'}"
        )
    return 0


def status_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def status(args: argparse.Namespace, settings: Settings) -> int:
    """One row per service: running?, where, health. Exit 0 only when everything is healthy."""
    table = Table(title="musicbox local stack")
    for col in ("service", "pid", "address", "health"):
        table.add_column(col)
    healthy = True

    host, port = settings.kafka_host_port
    pid = kafka_broker.broker_process(settings).pid()
    if kafka_broker.ready(settings):
        topics = kafka_broker.topic_summary(settings)
        expected = len(kafka_broker.Topics(settings.topic_prefix).all())
        health = f"healthy: {len(topics)}/{expected} musicbox topics"
        healthy &= len(topics) == expected
    else:
        health = "down" if pid is None else "starting or unhealthy (not answering)"
        healthy = False
    table.add_row("kafka", str(pid or "-"), f"{host}:{port}", health)

    pid = prometheus_server.prometheus_process(settings).pid()
    if prometheus_server.ready(settings):
        targets = prometheus_server.targets(settings)
        up_jobs = sorted(t["job"] for t in targets if t["health"] == "up")
        health = f"healthy: scraping {', '.join(up_jobs) or 'nothing yet'} ({len(up_jobs)}/{len(targets)} up)"
    else:
        health = "down" if pid is None else "starting or unhealthy"
        healthy = False
    table.add_row("prometheus", str(pid or "-"), prometheus_server.base_url(settings), health)

    for name, mport in (
        ("replay metrics", settings.replay_metrics_port),
        ("stream metrics", settings.stream_metrics_port),
        ("worker metrics", settings.worker_metrics_port),
    ):
        serving = port_open(settings.metrics_host, mport)
        table.add_row(name, "-", f"{settings.metrics_host}:{mport}", "serving" if serving else "not running")
    console.print(table)
    return 0 if healthy else 1
