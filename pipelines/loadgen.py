"""A constant, bounded HTTP load on a loopback port, every failure kept with its time.

The deploy benchmark drives the published front door with it while releases
change behind it: the question is not how fast the stack is but whether any
request fails, and when. So the load is open-loop (a request every 1/rate
seconds, whether or not earlier ones returned), each request on its own
connection (a client that reuses one would never see a server go away), and
bounded twice: the rate has a ceiling, and so has the number of requests in
flight. A tick that finds the ceiling reached is not sent and is recorded as a
failure: the server stopped keeping up, which is what the benchmark is there
to see.

The load may mix requests: each has a method, a path, an optional body and a
weight, and the ticks take them in a fixed interleaved order by weight (a GET,
a POST, a GET, ...), so every phase of a run sees the same mix. A request is
judged by its status alone (2xx and 3xx are answers, anything else a failure):
the generator knows nothing of what the server does with it.

Loopback only: the generator refuses any other address, so a mistyped host
cannot turn a benchmark into load on someone else's server.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

MAX_RATE = 500.0  # requests a second
MAX_IN_FLIGHT = 64
LOOPBACK_NAMES = ("localhost",)
MAX_WEIGHT = 100
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One kind of request of the load: sent ``weight`` times in every cycle of the mix."""

    method: str = "GET"
    path: str = "/"
    body: bytes | None = None
    content_type: str = "application/json"
    weight: int = 1

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def schedule(requests: Sequence[Request]) -> list[int]:
    """One cycle of the mix: indexes into ``requests``, each ``weight`` times, spread out.

    Smooth weighted round robin: weights 2 and 1 give GET, POST, GET, not GET, GET, POST.
    """
    total = sum(r.weight for r in requests)
    current = [0] * len(requests)
    cycle = []
    for _ in range(total):
        for i, r in enumerate(requests):
            current[i] += r.weight
        best = max(range(len(requests)), key=lambda i: current[i])
        current[best] -= total
        cycle.append(best)
    return cycle


@dataclass(frozen=True)
class Failure:
    at: float  # seconds since the load started
    what: str  # "POST /documents: HTTP 503", "GET /: ConnectionRefusedError: ...", "not sent: 64 requests in flight"


@dataclass
class Tally:
    """What became of one kind of request."""

    weight: int
    sent: int = 0
    ok: int = 0
    failed: int = 0


@dataclass
class LoadReport:
    host: str
    port: int
    path: str
    rate: float
    started: str  # UTC, ISO 8601
    duration_s: float = 0.0
    sent: int = 0  # ticks, including those not sent for the in-flight ceiling
    ok: int = 0
    failures: list[Failure] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # of the requests that got an answer
    mix: dict[str, Tally] = field(default_factory=dict)  # "METHOD path" -> its counts

    def failures_between(self, t0: float, t1: float) -> list[Failure]:
        return [f for f in self.failures if t0 <= f.at < t1]

    def requests_between(self, t0: float, t1: float) -> int:
        """Ticks scheduled in [t0, t1): the schedule is exact, so this needs no record per request."""
        return max(0, self._tick_at(t1) - self._tick_at(t0))

    def _tick_at(self, t: float) -> int:
        """The index of the first tick at or after ``t`` (tick n is due at n / rate), at most ``sent``."""
        if t <= 0:
            return 0
        if not math.isfinite(t) or t * self.rate >= self.sent:
            return self.sent
        return math.ceil(t * self.rate)

    def percentile_ms(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, object]:
        return {
            "target": f"http://{self.host}:{self.port}" + (self.path if len(self.mix) <= 1 else ""),
            "rate_per_s": self.rate,
            "started": self.started,
            "duration_s": round(self.duration_s, 2),
            "requests": self.sent,
            "ok": self.ok,
            "failed": len(self.failures),
            "p50_ms": round(self.percentile_ms(50), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "mix": {
                name: {"weight": t.weight, "sent": t.sent, "ok": t.ok, "failed": t.failed}
                for name, t in self.mix.items()
            },
            "failures": [{"at_s": round(f.at, 3), "what": f.what} for f in self.failures],
        }


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback address: the load must stay on this machine."""
    if host in LOOPBACK_NAMES:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InputError(
            f"the load generator drives loopback addresses only, not {host!r}",
            hint="publish the port on 127.0.0.1 (or ::1) and benchmark it there",
        )


class LoadGenerator:
    """``with LoadGenerator(...) as load: ...; report = load.report`` or ``start()`` / ``stop()``."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        rate: float,
        *,
        timeout_s: float = 5.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        method: str = "GET",
        requests: Sequence[Request] = (),
    ) -> None:
        """``requests`` is the mix; without it every request is ``method path``."""
        check_loopback(host)
        if not 0 < rate <= MAX_RATE:
            raise InputError(f"load rate {rate:g}/s is outside (0, {MAX_RATE:g}]", hint="a bounded, constant load")
        if not 1 <= port <= 65535:
            raise InputError(f"port {port} is not a TCP port")
        if not 1 <= max_in_flight <= 1024:
            raise InputError(f"max_in_flight {max_in_flight} is outside [1, 1024]")
        mix = tuple(requests) or (Request(method, path),)
        for r in mix:
            if not r.path.startswith("/"):
                raise InputError(f"path {r.path!r} does not start with '/'")
            if not 1 <= r.weight <= MAX_WEIGHT:
                raise InputError(f"{r.name}: weight {r.weight} is outside [1, {MAX_WEIGHT}]")
            if r.body is not None and len(r.body) > MAX_BODY:
                raise InputError(f"{r.name}: body of {len(r.body)} bytes is over {MAX_BODY}")
        if len({r.name for r in mix}) != len(mix):
            raise InputError("the load names one method and path twice", hint="give each its weight once")
        self.host, self.port, self.path, self.rate = host, port, mix[0].path, rate
        self.requests = mix
        self._cycle = schedule(mix)
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.report = LoadReport(host, port, self.path, rate, started="")
        self.report.mix = {r.name: Tally(r.weight) for r in mix}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._in_flight = 0
        self._t0 = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._ticker: threading.Thread | None = None

    def elapsed(self) -> float:
        """Seconds since start, on the clock failures are recorded with."""
        return time.monotonic() - self._t0

    def start(self) -> LoadGenerator:
        # Imported here, before the first tick: every config with a [bench.deploy] load reads this module's
        # limits, and its commands need not load an HTTP client and a thread pool (30 ms of each start).
        import http.client  # noqa: F401
        from concurrent.futures import ThreadPoolExecutor

        if self._ticker is not None:
            raise RuntimeError("a LoadGenerator runs once")
        self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="load")
        self._t0 = time.monotonic()
        self.report.started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._ticker = threading.Thread(target=self._tick, name="load-ticker", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> LoadReport:
        """Stop sending, wait for the requests in flight (each bounded by the timeout), return the report."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.report.duration_s = self.elapsed()
        self.report.failures.sort(key=lambda f: f.at)
        return self.report

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        if self._pool is None:  # start() sets it before this thread exists
            raise RuntimeError("the ticker runs only after start()")
        n = 0
        while not self._stop.is_set():
            due = n / self.rate
            delay = due - self.elapsed()
            if delay > 0 and self._stop.wait(delay):
                break
            request = self.requests[self._cycle[n % len(self._cycle)]]
            tally = self.report.mix[request.name]
            with self._lock:
                self.report.sent += 1
                tally.sent += 1
                full = self._in_flight >= self.max_in_flight
                if full:
                    tally.failed += 1
                    self.report.failures.append(
                        Failure(due, f"{request.name}: not sent: {self._in_flight} requests in flight")
                    )
                else:
                    self._in_flight += 1
            if not full:
                self._pool.submit(self._one, due, request)
            n += 1

    def _one(self, due: float, request: Request) -> None:
        import http.client  # loaded by start()

        start = time.monotonic()
        problem = ""
        headers = {"Connection": "close"}
        if request.body is not None:
            headers["Content-Type"] = request.content_type
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                conn.request(request.method, request.path, body=request.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if not 200 <= resp.status < 400:
                    problem = f"HTTP {resp.status}"
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ms = (time.monotonic() - start) * 1000
        tally = self.report.mix[request.name]
        with self._lock:
            self._in_flight -= 1
            if problem:
                tally.failed += 1
                self.report.failures.append(Failure(due, f"{request.name}: {problem}"))
            else:
                tally.ok += 1
                self.report.ok += 1
                self.report.latencies_ms.append(ms)
