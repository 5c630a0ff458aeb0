"""`empty_panel_queries` (for the integration run) reports exactly the panels Prometheus answers
empty, against a fake Prometheus HTTP API on a free loopback port."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures.prometheus import PanelQuery, PrometheusQueryError, empty_panel_queries

SERIES = {"metric": {"__name__": "up", "job": "musicbox-stream"}, "value": [1700000000, "1"]}


class FakePrometheus(BaseHTTPRequestHandler):
    """`/api/v1/query`: no series for queries naming `absent_metric`, a 400 for `(`, else one series."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        expr = urllib.parse.parse_qs(url.query).get("query", [""])[0]
        if url.path != "/api/v1/query":
            self._answer(404, {"status": "error", "errorType": "not_found", "error": url.path})
        elif expr.count("(") != expr.count(")"):
            self._answer(
                400, {"status": "error", "errorType": "bad_data", "error": "unclosed left parenthesis"}
            )
        else:
            result = [] if "absent_metric" in expr else [SERIES]
            self._answer(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dashboard(tmp_path: Path, exprs: dict[str, list[str]]) -> Path:
    path = tmp_path / "dashboard.json"
    panels = [
        {
            "title": title,
            "type": "timeseries",
            "targets": [{"refId": chr(65 + i), "expr": e} for i, e in enumerate(es)],
        }
        for title, es in exprs.items()
    ]
    path.write_text(json.dumps({"panels": [{"type": "row", "panels": panels[1:]}, panels[0]]}))
    return path


def test_reports_the_queries_with_no_series(prometheus: str, tmp_path: Path) -> None:
    path = dashboard(
        tmp_path,
        {
            "Processes up": ["up"],
            "Lag": ["sum by (topic) (musicbox_stream_consumer_lag)", "rate(absent_metric_total[1m])"],
            "Nothing": ["absent_metric"],  # inside a row: still evaluated
        },
    )
    assert empty_panel_queries(prometheus, path) == [
        PanelQuery("Lag", "B", "rate(absent_metric_total[1m])"),
        PanelQuery("Nothing", "A", "absent_metric"),
    ]


def test_a_query_prometheus_refuses_is_an_error_not_an_empty_panel(prometheus: str, tmp_path: Path) -> None:
    path = dashboard(tmp_path, {"Broken": ["sum(rate(x[1m])"]})
    with pytest.raises(PrometheusQueryError, match="unclosed left parenthesis"):
        empty_panel_queries(prometheus, path)


def test_the_real_dashboard_against_a_prometheus_with_every_series(prometheus: str) -> None:
    assert empty_panel_queries(prometheus) == []
