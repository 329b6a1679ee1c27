"""``MetricsServer``: ``/metrics`` and ``/healthz`` over HTTP, for Prometheus and for whatever checks health.

One ``ThreadingHTTPServer`` on a daemon thread serves the registry of one ``Metrics`` (Prometheus text or
OpenMetrics, gzipped when the scraper accepts it) and answers ``/healthz`` with 200 or 503 from a
``health`` callable.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from loguru import logger
from prometheus_client.exposition import choose_encoder, gzip_accepted

if TYPE_CHECKING:
    from ..config import MonitoringSettings
    from .metrics import Metrics


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: Metrics, health: Callable[[], bool]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "nancemakina"

    def do_GET(self) -> None:
        server = cast("_Server", self.server)
        path = urlsplit(self.path).path
        if path in {"/metrics", "/"}:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            server.metrics.flush()
            body = encoder(server.metrics.registry)
            headers = [("Content-Type", content_type)]
            if gzip_accepted(self.headers.get("Accept-Encoding", "")):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            self._reply(HTTPStatus.OK, body, headers)
        elif path == "/healthz":
            try:
                ok = bool(server.health())
            except Exception:
                ok = False
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._reply(status, b"ok\n" if ok else b"unhealthy\n", [("Content-Type", "text/plain")])
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", [("Content-Type", "text/plain")])

    def _reply(self, status: HTTPStatus, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """A scrape every 15 s would drown the log."""


class MetricsServer:
    """``/metrics`` (Prometheus text or OpenMetrics) and ``/healthz`` over HTTP from a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        health: Callable[[], bool] | None = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.health = health or (lambda: True)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: MonitoringSettings, metrics: Metrics, *, health: Callable[[], bool] | None = None
    ) -> MetricsServer | None:
        """The server ``config.monitoring`` asks for, or None when monitoring is disabled."""
        if not settings.enabled:
            return None
        return cls(metrics, settings.host, settings.prometheus_port, health=health)

    @property
    def bound_port(self) -> int | None:
        return None if self._server is None else int(self._server.server_address[1])

    def start(self) -> int:
        """Bind and serve; returns the bound port (port 0 picks a free one). ``OSError`` if it cannot bind."""
        if self._server is not None:
            return int(self._server.server_address[1])
        server = _Server((self.host, self.port), self.metrics, self.health)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metrics-http", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        port = int(server.server_address[1])
        logger.info(f"metrics on http://{self.host}:{port}/metrics")
        return port

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and release the port; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout_s)
