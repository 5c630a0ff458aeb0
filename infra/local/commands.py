"""`musicbox up`, `down` and `status`: the local stack (Kafka in KRaft mode, Prometheus)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from infra.local import kafka_broker, prometheus_server
from infra.local.processes import ManagedProcess, port_open
from musicbox.settings import Settings

console = Console()


def up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout-s", type=float, default=120.0, help="how long to wait for each service")


@dataclass(frozen=True)
class Service:
    name: str
    process: Callable[[Settings], ManagedProcess]
    stop: Callable[[Settings], bool]


SERVICES = (
    Service("kafka", kafka_broker.broker_process, kafka_broker.stop),
    Service("prometheus", prometheus_server.prometheus_process, prometheus_server.stop),
)


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start what is not running, create missing topics; safe to run twice. All or nothing: when
    a step fails, what this run started is stopped again."""
    started = time.monotonic()
    was_running = {s.name for s in SERVICES if s.process(settings).pid() is not None}
    try:
        # Every port before any start: a port conflict leaves nothing half up.
        kafka_broker.check_ports(settings)
        prometheus_server.check_port(settings)
        created = _start(args, settings)
    except BaseException:
        for service in SERVICES:
            if service.name not in was_running and service.stop(settings):
                console.print(f"{service.name:<11} stopped again: `up` failed")
        raise
    if was_running == {s.name for s in SERVICES} and not created:
        console.print("everything was already up: nothing started, nothing created")
    console.print(
        f"up in {time.monotonic() - started:.1f} s; `musicbox status` shows health, `musicbox down` stops"
    )
    return 0


def _start(args: argparse.Namespace, settings: Settings) -> list[str]:
    """Start Kafka, create the missing topics, start Prometheus; returns the topics created."""
    with console.status("starting Kafka (KRaft, single node)..."):
        kafka = kafka_broker.start(settings, timeout_s=args.timeout_s)
    console.print(f"kafka       {settings.kafka_bootstrap:<22} {kafka}")
    with console.status("creating topics..."):
        created = kafka_broker.ensure_topics(settings)
    console.print(f"topics      {len(created)} created" + (f": {', '.join(created)}" if created else ""))
    with console.status("starting Prometheus..."):
        prom = prometheus_server.start(settings, timeout_s=args.timeout_s)
    console.print(f"prometheus  {prometheus_server.base_url(settings):<22} {prom}")
    return created


def down_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop only what `up` started (by its PID files); data under var/ is kept."""
    for service in reversed(SERVICES):  # the reverse of `up`'s order
        done = "stopped" if service.stop(settings) else "was not running (nothing of ours to stop)"
        console.print(f"{service.name:<11} {done}")
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
