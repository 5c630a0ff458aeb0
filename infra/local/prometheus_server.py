"""The local Prometheus server, from Debian's `prometheus` package, on loopback."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from infra.local.errors import StackError
from infra.local.processes import ManagedProcess, require_free, wait_until
from musicbox.settings import REPO_ROOT, Settings

CONFIG_DIR = REPO_ROOT / "infra" / "prometheus"
CONFIG_FILES = ("prometheus.yml", "alerts.yml")


def config_dir(settings: Settings) -> Path:
    """Where the running Prometheus reads its configuration: a copy of infra/prometheus/ plus
    `targets/<job>.json`, the Kafka nodes and Spark daemons `up` started (file-based discovery:
    Prometheus picks up a changed file by itself)."""
    return settings.var_dir / "prometheus" / "config"


def write_targets(settings: Settings, job: str, targets: Sequence[str]) -> None:
    """The scrape targets (`host:port`) of one file-discovered job (see prometheus.yml)."""
    folder = config_dir(settings) / "targets"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{job}.json"
    tmp.write_text(json.dumps([{"targets": list(targets), "labels": {}}]))
    tmp.replace(folder / f"{job}.json")


def prometheus_process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("prometheus", settings.run_dir)


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prometheus_port}"


def check_port(settings: Settings) -> None:
    """Unless our Prometheus runs: refuse its port when another process (a system Prometheus
    service?) holds it, naming that process."""
    if prometheus_process(settings).pid() is None:
        require_free("127.0.0.1", settings.prometheus_port, "Prometheus", "MUSICBOX_PROMETHEUS_PORT")


def start(settings: Settings, timeout_s: float = 60.0) -> str:
    proc = prometheus_process(settings)
    if proc.pid() is not None:
        wait_until(lambda: ready(settings), timeout_s, "Prometheus to answer")
        return "already running"
    check_port(settings)
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError("no `prometheus` binary on PATH: run `make setup` (apt-get install prometheus)")
    storage = settings.var_dir / "prometheus"
    storage.mkdir(parents=True, exist_ok=True)
    conf = config_dir(settings)
    conf.mkdir(parents=True, exist_ok=True)
    for name in CONFIG_FILES:
        shutil.copyfile(CONFIG_DIR / name, conf / name)
    pid = proc.start(
        [
            binary,
            f"--config.file={conf / 'prometheus.yml'}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            "--storage.tsdb.retention.time=7d",
        ]
    )
    try:
        wait_until(lambda: proc.pid() is not None and ready(settings), timeout_s, "Prometheus to answer")
    except Exception as exc:
        if proc.pid() is None:
            raise StackError(f"Prometheus exited during start-up; its log says:\n{proc.log_tail()}") from exc
        raise
    return f"started (pid {pid})"


def ready(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url(settings)}/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def targets(settings: Settings) -> list[dict[str, str]]:
    """Active scrape targets: job, health, last error."""
    with urllib.request.urlopen(f"{base_url(settings)}/api/v1/targets", timeout=5) as resp:
        data = json.load(resp)
    return [
        {"job": t["labels"].get("job", "?"), "health": t["health"], "error": t.get("lastError", "")}
        for t in data["data"]["activeTargets"]
    ]


def stop(settings: Settings) -> bool:
    return prometheus_process(settings).stop()
