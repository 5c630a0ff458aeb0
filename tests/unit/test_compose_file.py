"""The container path is kept valid without a Docker engine: the compose client checks it."""

from __future__ import annotations

import shutil
import subprocess

from musicbox.settings import REPO_ROOT


def test_docker_compose_config_is_valid() -> None:
    # Debian's docker-compose (installed by `make setup`) validates offline; a missing client
    # is a failure, not a skip.
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: run `make setup`"
    done = subprocess.run(
        [binary, "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_describes_the_clusters_of_musicbox_up() -> None:
    # The same topology as `musicbox up --brokers 3 --spark-workers 2`, and the processes.
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: run `make setup`"
    done = subprocess.run(
        [binary, "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    services = set(done.stdout.split())
    assert {"kafka-1", "kafka-2", "kafka-3", "spark-master", "spark-worker-1", "spark-worker-2"} <= services
    assert {"stream", "worker", "prometheus", "grafana"} <= services


def test_prometheus_configs_are_valid() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run `make setup`"
    for name in ("prometheus.yml", "prometheus.docker.yml"):
        done = subprocess.run(
            [promtool, "check", "config", str(REPO_ROOT / "infra" / "prometheus" / name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
