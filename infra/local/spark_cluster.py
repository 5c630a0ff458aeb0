"""A Spark standalone cluster on loopback from the pip pyspark: a master and N workers.

pip's pyspark ships no `sbin/start-master.sh`; `bin/spark-class` runs the master and worker main
classes. SPARK_HOME is the pyspark package; logs, PID files and work dirs go under var/ (else
they land inside site-packages). Each daemon's web UI also serves Spark's own metrics in
Prometheus' format (its PrometheusServlet, configured in infra/spark/metrics.properties).
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.errors import StackError
from infra.local.processes import ManagedProcess, require_free, wait_until
from musicbox.settings import REPO_ROOT, Settings

HOST = "127.0.0.1"
CONF_DIR = REPO_ROOT / "infra" / "spark"  # metrics.properties: Spark's PrometheusServlet
DAEMON_MEMORY = "256m"  # the master and worker daemons themselves; executors get their own JVMs
MASTER_METRICS_PATH = "/metrics/master/prometheus/"  # without the slash: a redirect
APPLICATIONS_METRICS_PATH = "/metrics/applications/prometheus/"
WORKER_METRICS_PATH = "/metrics/prometheus/"
# The series of Spark's PrometheusServlet that the dashboard reads (Spark names them, not us;
# the cluster tests check that the daemons serve every one).
DASHBOARD_METRICS = (
    "metrics_master_aliveWorkers_Value",
    "metrics_master_apps_Value",
    "metrics_worker_coresUsed_Value",
    "metrics_worker_executors_Value",
)


@dataclass(frozen=True)
class Daemon:
    name: str  # PID file and log name
    port: int  # the RPC port (the master's; 0 for a worker: any)
    ui_port: int

    @property
    def metrics_url(self) -> str:
        path = MASTER_METRICS_PATH if self.name == "spark-master" else WORKER_METRICS_PATH
        return f"http://{HOST}:{self.ui_port}{path}"


def master_url(settings: Settings) -> str:
    return f"spark://{HOST}:{settings.spark_master_port}"


def master(settings: Settings) -> Daemon:
    return Daemon("spark-master", settings.spark_master_port, settings.spark_master_ui_port)


def workers(settings: Settings, count: int | None = None) -> list[Daemon]:
    count = settings.spark_workers if count is None else count
    return [Daemon(f"spark-worker-{i + 1}", 0, settings.spark_worker_ui_port + i) for i in range(count)]


def process(settings: Settings, daemon: Daemon) -> ManagedProcess:
    return ManagedProcess(daemon.name, settings.run_dir)


def spark_home() -> Path:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise StackError("pyspark is not installed in this Python: run `make setup`")
    return Path(spec.origin).parent


def _env(settings: Settings) -> dict[str, str]:
    logs = settings.run_dir / "spark-logs"
    return {
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(CONF_DIR),
        "SPARK_LOG_DIR": str(logs),
        "SPARK_PID_DIR": str(settings.run_dir),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        # Executors' scratch space (shuffle files, spills) on the local disk of each node.
        "SPARK_LOCAL_DIRS": str(settings.var_dir / "spark" / "local"),
    }


def _argv(daemon: Daemon, settings: Settings) -> list[str]:
    spark_class = str(spark_home() / "bin" / "spark-class")
    if daemon.name == "spark-master":
        return [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            HOST,
            "--port",
            str(daemon.port),
            "--webui-port",
            str(daemon.ui_port),
        ]
    work = settings.var_dir / "spark" / "work" / daemon.name
    return [
        spark_class,
        "org.apache.spark.deploy.worker.Worker",
        master_url(settings),
        "--host",
        HOST,
        "--webui-port",
        str(daemon.ui_port),
        "--cores",
        str(settings.spark_worker_cores),
        "--memory",
        settings.spark_worker_memory,
        "--work-dir",
        str(work),
    ]


def check_ports(settings: Settings) -> None:
    """For each daemon not running: refuse ports that another process holds, naming it."""
    if not settings.spark_workers:
        return
    m = master(settings)
    if process(settings, m).pid() is None:
        require_free(HOST, m.port, "the Spark master", "MUSICBOX_SPARK_MASTER_PORT")
        require_free(HOST, m.ui_port, "the Spark master's web UI", "MUSICBOX_SPARK_MASTER_UI_PORT")
    for w in workers(settings):
        if process(settings, w).pid() is None:
            require_free(HOST, w.ui_port, f"{w.name}'s web UI", "MUSICBOX_SPARK_WORKER_UI_PORT")


def start(settings: Settings, timeout_s: float = 90.0) -> str:
    """Start the master and the workers not running yet; wait until all workers are ALIVE."""
    if not settings.spark_workers:
        return "not asked for (--spark-workers 0)"
    check_ports(settings)
    env = _env(settings)
    started = []
    for daemon in [master(settings), *workers(settings)]:
        proc = process(settings, daemon)
        if proc.pid() is None:
            started.append(proc.start(_argv(daemon, settings), env=env))
        if daemon.name == "spark-master":
            wait_until(lambda: master_state(settings) is not None, timeout_s, "the Spark master")
    n = settings.spark_workers
    try:
        wait_until(lambda: len(alive_workers(settings)) >= n, timeout_s, f"{n} Spark workers to register")
    except StackError as exc:
        dead = [d for d in [master(settings), *workers(settings)] if process(settings, d).pid() is None]
        if dead:
            tail = process(settings, dead[0]).log_tail()
            raise StackError(f"{dead[0].name} exited during start-up; its log says:\n{tail}") from exc
        raise
    if not started:
        return "already running"
    return f"started (pid {', '.join(map(str, started))})"


def start_worker(settings: Settings, daemon: Daemon) -> int:
    """Start one worker (also: restart one that was killed); returns its pid."""
    return process(settings, daemon).start(_argv(daemon, settings), env=_env(settings))


def master_state(settings: Settings) -> dict[str, Any] | None:
    """The master's own JSON status (workers, applications), or None when it does not answer."""
    url = f"http://{HOST}:{settings.spark_master_ui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            state: dict[str, Any] = json.load(resp)
            return state
    except (OSError, ValueError):
        return None


def alive_workers(settings: Settings) -> list[str]:
    """`host:port` of each worker the master counts ALIVE."""
    state = master_state(settings) or {}
    return [f"{w['host']}:{w['port']}" for w in state.get("workers", []) if w.get("state") == "ALIVE"]


def running(settings: Settings) -> list[str]:
    """Names of every Spark daemon of ours that runs."""
    return sorted(
        p.stem for p in settings.run_dir.glob("spark-*.pid") if ManagedProcess(p.stem, settings.run_dir).pid()
    )


def stop(settings: Settings) -> bool:
    """Stop every Spark daemon of ours (workers first: their executors go with their group)."""
    names = running(settings)
    for name in sorted(names, key=lambda n: n == "spark-master"):
        ManagedProcess(name, settings.run_dir).stop()
    return bool(names)
