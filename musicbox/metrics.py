"""Prometheus helpers shared by every process: a registry per process, served on its port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from musicbox.errors import MusicboxError


class MetricsPortError(MusicboxError):
    """The metrics port is taken."""


def serve(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve `registry` on http://host:port/metrics from a daemon thread."""
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): is another musicbox process of "
            "the same kind running? Stop it, or set the MUSICBOX_*_METRICS_PORT setting"
        ) from exc
