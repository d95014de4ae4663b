"""Liveness and readiness over HTTP (``/livez``, ``/readyz``), with ``/metrics`` beside them.

One small threaded server per process, on loopback by default, for the filter, connectors
and hubs alike. Liveness says the main loop is still turning (it called :meth:`Health.beat`
recently); readiness says the component can do its work (every named check passes, for
example "assigned partitions" or "sink reachable"). Responses are JSON naming the checks,
never any data the component handles.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from broker.exceptions import BrokerError

Check = Callable[[], bool]


class Health:
    """What one component says about itself.

    Args:
        component: the component's name, for example ``filter`` or ``hub``.
        stale_after: seconds without a :meth:`beat` after which the component is not live.
        clock: a monotonic clock, in seconds.
    """

    __slots__ = ("_checks", "_clock", "_last_beat", "_lock", "component", "stale_after")

    def __init__(
        self, component: str, stale_after: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.component = component
        self.stale_after = stale_after
        self._clock = clock
        self._last_beat = clock()
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def beat(self) -> None:
        """Record that the main loop is turning; call it once per loop iteration."""
        self._last_beat = self._clock()

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness check: a function returning True when that part is ready."""
        with self._lock:
            self._checks[name] = check

    def live(self) -> tuple[bool, dict[str, Any]]:
        """Whether the main loop turned within ``stale_after`` seconds, and how long ago it did."""
        age = self._clock() - self._last_beat
        return age <= self.stale_after, {"component": self.component, "seconds_since_beat": round(age, 1)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether every check passes, and each check's result (a check that raises fails)."""
        with self._lock:
            checks = dict(self._checks)
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing check means "not ready", whatever the failure
                results[name] = False
        live, _ = self.live()
        ok = live and all(results.values())
        return ok, {"component": self.component, "live": live, "checks": results}


class HealthServer:
    """A running HTTP server; :attr:`port` is the port it listens on (useful with port 0)."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(health: Health | None, metrics: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and metrics:
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path in ("/livez", "/readyz") and health is not None:
                ok, body = health.live() if path == "/livez" else health.ready()
                body["status"] = "ok" if ok else "failing"
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"status": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the component's own log lines

    return Handler


def serve(
    port: int, health: Health | None = None, *, metrics: bool = True, host: str = "127.0.0.1"
) -> HealthServer:
    """Serve ``/livez`` and ``/readyz`` (when ``health`` is given) and ``/metrics`` in a daemon thread.

    Args:
        port: the port; 0 picks a free one (see :attr:`HealthServer.port`).
        health: the component's health; without it only ``/metrics`` is served.
        metrics: serve the Prometheus exposition at ``/metrics``.
        host: the address to bind; loopback unless a scraper on another host needs it.
    """
    try:
        server = ThreadingHTTPServer((host, port), _handler(health, metrics))
    except OSError as exc:
        msg = f"Cannot serve /metrics and probes on {host}:{port}: {exc.strerror or exc}."
        raise BrokerError(msg) from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sgb-health", daemon=True)
    thread.start()
    return HealthServer(server, thread)


def start_health_server(port: int, health: Health, host: str = "127.0.0.1") -> HealthServer:
    """Serve ``/livez``, ``/readyz`` and ``/metrics`` for ``health`` on ``port``."""
    return serve(port, health, metrics=True, host=host)


async def beating(health: Health, interval: float = 5.0) -> None:
    """Beat ``health`` every ``interval`` seconds for as long as the event loop turns (a server
    whose loop is stuck stops beating, and its ``/livez`` then fails); cancel it to stop."""
    while True:
        health.beat()
        await asyncio.sleep(interval)
