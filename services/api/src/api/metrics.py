"""A small Prometheus text-format registry: request counts and latency by route.

Hand-rolled rather than a client library: three metric families do not
justify another dependency in a size-budgeted image.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            i = next((i for i, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))
            self.buckets[route][i] += 1
            self.sums[route] += seconds
            self.counts[route] += 1

    def render(self, extra: dict[str, float] | None = None) -> str:
        with self._lock:
            lines = [
                "# HELP http_requests_total HTTP requests by method, route and status.",
                "# TYPE http_requests_total counter",
            ]
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'http_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            lines += [
                "# HELP http_request_duration_seconds Request latency by route.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for route, counts in sorted(self.buckets.items()):
                acc = 0
                for b, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    acc += n
                    le = "+Inf" if b == float("inf") else repr(b)
                    lines.append(f'http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {acc}')
                lines.append(f'http_request_duration_seconds_sum{{route="{route}"}} {self.sums[route]:.6f}')
                lines.append(f'http_request_duration_seconds_count{{route="{route}"}} {self.counts[route]}')
        for name, value in (extra or {}).items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware: cheaper per request than Starlette's BaseHTTPMiddleware."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            # The route template, not the raw path: ids must not explode label cardinality.
            name = getattr(route, "path", "unmatched")
            self.registry.observe(scope.get("method", ""), name, status, time.perf_counter() - start)
