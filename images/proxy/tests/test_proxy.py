"""The front door (images/proxy) sends nothing to an upstream that listens but is not ready.

Real containers on a real Docker network, found by the engine's DNS as in the
stack: the proxy image as built, and upstreams of our own (the python runtime
image serving a few lines of Python) whose readiness route says 503, slowly,
until they are ready, like an api still waiting for its database. Every
request that reaches one before that is answered 500 and logged, so it shows
twice: as a failed request of the load and in the upstream's own count.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pipelines import loadgen
from tests.harness import docker
from tests.test_images import local_ref

# An upstream: ready READY_AFTER seconds after it starts; before that its readiness route takes
# NOT_READY_SLOW_S to say 503 and every other request is answered 500. Each request is logged with
# whether it came before or after ready. SIGTERM: not ready any more (the front door takes it out),
# still serving for DRAIN_S, then it stops accepting, finishes what is in flight and exits.
UPSTREAM = r"""
import http.server, json, os, signal, socketserver, threading, time
name = os.environ["NAME"]
ready_at = time.monotonic() + float(os.environ.get("READY_AFTER", "0"))
slow = float(os.environ.get("NOT_READY_SLOW_S", "1.5"))
drain = float(os.environ.get("DRAIN_S", "3"))
stopping = threading.Event()
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        ready = time.monotonic() >= ready_at
        if self.path == "/ready":
            if not ready:
                time.sleep(slow)
            status = 200 if ready and not stopping.is_set() else 503
        else:
            status = 200 if ready else 500
            print(f"{'served' if ready else 'PREMATURE'} {self.command} {self.path}", flush=True)
        body = json.dumps({"upstream": name, "ready": ready}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    block_on_close = True
server = Server(("0.0.0.0", 8000), Handler)
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server.socket.settimeout(0.05)
deadline = None
while deadline is None or time.monotonic() < deadline:
    if stopping.is_set() and deadline is None:
        deadline = time.monotonic() + drain
    try:
        conn, address = server.socket.accept()
    except (TimeoutError, InterruptedError):
        continue
    conn.settimeout(None)
    server.process_request(conn, address)
server.server_close()
"""
HARDENED = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
MIX = (
    loadgen.Request("GET", "/documents"),
    loadgen.Request("POST", "/documents", body=b'{"body": "not safe to send twice"}'),
)


@dataclass
class Rollover:
    load: loadgen.LoadReport
    premature: dict[str, int]  # upstream -> requests it got before it was ready
    served: dict[str, int]  # upstream -> requests it served once ready
    proxy_log: str


class Front:
    """A network, the proxy in front of it, and upstreams answering to one name."""

    def __init__(self, proxy: str, runtime: str, tag: str) -> None:
        self.proxy, self.runtime, self.tag = proxy, runtime, tag
        self.names: list[str] = []
        docker("network", "create", tag)

    def upstream(self, name: str, ready_after: float) -> None:
        full = f"{self.tag}-{name}"
        self.names.append(full)
        docker("run", "-d", "--name", full, "--network", self.tag, "--network-alias", "upstream", *HARDENED,
               "-e", f"NAME={name}", "-e", f"READY_AFTER={ready_after}", self.runtime, "-c", UPSTREAM)  # fmt: skip

    def start_proxy(self) -> int:
        full = f"{self.tag}-proxy"
        self.names.append(full)
        docker("run", "-d", "--name", full, "--network", self.tag, *HARDENED, "-p", "127.0.0.1::8080",
               "-e", "UPSTREAM=upstream:8000", self.proxy)  # fmt: skip
        return int(docker("port", full, "8080").stdout.strip().splitlines()[0].rpartition(":")[2])

    def counts(self, name: str) -> tuple[int, int]:
        out = docker("logs", f"{self.tag}-{name}", check=False).stdout
        return len(re.findall(r"^PREMATURE ", out, re.M)), len(re.findall(r"^served ", out, re.M))

    def close(self) -> None:
        for n in self.names:
            docker("rm", "-f", n, check=False)
        docker("network", "rm", self.tag, check=False)


def _wait_served(port: int, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with loadgen.LoadGenerator("127.0.0.1", port, "/documents", 20) as probe:
            time.sleep(0.5)
        if probe.report.sent and not probe.report.failures:
            return
    raise AssertionError(f"the proxy on port {port} did not serve within {deadline_s} s")


def rollover(proxy: str, runtime: str, tag: str) -> Rollover:
    """Under GET and POST load: a second upstream starts (ready 4 s later), the first stops, a third starts."""
    front = Front(proxy, runtime, tag)
    try:
        front.upstream("a", 0)
        port = front.start_proxy()
        _wait_served(port)
        with loadgen.LoadGenerator("127.0.0.1", port, "/", 40, requests=MIX) as load:
            time.sleep(1)
            front.upstream("b", 4)
            time.sleep(8)
            docker("stop", "--time", "5", f"{tag}-a")
            time.sleep(2)
            front.upstream("c", 4)
            time.sleep(8)
        counts = {n: front.counts(n) for n in ("a", "b", "c")}
        log = docker("logs", f"{tag}-proxy", check=False)
        return Rollover(
            load.report,
            {n: c[0] for n, c in counts.items()},
            {n: c[1] for n, c in counts.items()},
            log.stdout + log.stderr,
        )
    finally:
        front.close()


@pytest.fixture
def images(built: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield local_ref(built["images"]["proxy"]), local_ref(built["images"]["python-runtime"])


def test_an_upstream_that_listens_but_is_not_ready_gets_no_request(images: tuple[str, str]) -> None:
    proxy, runtime = images
    r = rollover(proxy, runtime, f"pipelines-test-front-{os.getpid()}")
    tail = "\n".join(r.proxy_log.splitlines()[-40:])
    assert r.premature == {"a": 0, "b": 0, "c": 0}, f"requests before ready: {r.premature}\n{tail}"
    failures = [f"{f.at:.2f} s {f.what}" for f in r.load.failures]
    assert failures == [], f"{len(failures)} of {r.load.sent} failed: {failures[:10]}\n{tail}"
    # Not vacuous: both new upstreams were found and served GETs and POSTs once ready.
    assert r.served["b"] > 20 and r.served["c"] > 20, r.served
    assert r.load.mix["POST /documents"].ok > 200, r.load.mix
