"""The health check of the hardened image, without a shell: an HTTP probe, else a TCP connect, else none."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PYTHON = "/usr/bin/python3"  # python-runtime's interpreter: there whatever the venv holds
_NAMES = (
    r"(?:api/)?(?:v\d/)?(?:health|healthz|healthcheck|health-check|health_check|ready|readyz|readiness|"
    r"live|livez|liveness|ping|status|heartbeat)"
)
# A route: a decorator or router call (FastAPI, Flask, aiohttp, Starlette) or a Django/URL pattern.
_ROUTE = re.compile(
    r"(?:\.(?:get|route|api_route|head|add_route|add_get)\s*\(|\b(?:re_)?path\s*\(|\burl\s*\(|Route\s*\()\s*r?[\"']\^?/?("
    + _NAMES
    + r")/?\$?[\"']"
)
_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(/[\w./-]*)")
_PORT_FLAG = re.compile(r"^(?:--port|-p|--http-port)$")
_BIND_FLAG = re.compile(r"^(?:--bind|-b|--http|--listen|--host-port)$")
_SKIP = frozenset(
    {"node_modules", ".git", ".venv", "venv", "tests", "test", "migrations", "static", "docs", "site-packages"}
)
MAX_FILES = 4000


@dataclass(frozen=True)
class Probe:
    kind: str  # http | tcp | none
    port: str = ""
    path: str = ""
    source: str = ""  # where the endpoint or port was found

    def instruction(self) -> str:
        if self.kind == "none":
            return ""
        if self.kind == "http":
            code = (
                "import sys, urllib.request; "
                f"url = 'http://127.0.0.1:{self.port}{self.path}'; "
                "sys.exit(0 if urllib.request.urlopen(url, timeout=4).status < 400 else 1)"
            )
        else:
            code = f"import socket; socket.create_connection(('127.0.0.1', {self.port}), timeout=4).close()"
        argv = json.dumps([PYTHON, "-c", code])
        return f"HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \\\n  CMD {argv}"

    def describe(self) -> str:
        if self.kind == "http":
            return f"HTTP GET 127.0.0.1:{self.port}{self.path} ({self.source})"
        if self.kind == "tcp":
            return f"TCP connect to port {self.port} ({self.source})"
        return "no health check: no port is exposed or passed to the command (a worker); its liveness is its process"


def port_of(argv: Sequence[str]) -> str:
    """The port a server command listens on (``--port N``, ``--bind HOST:N``, ``-b :N``), or ""."""
    for i, word in enumerate(argv):
        flag, eq, value = word.partition("=")
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        if _PORT_FLAG.match(flag) and value.isdigit():
            return value
        if _BIND_FLAG.match(flag):
            m = re.search(r":(\d+)$", value)
            if m:
                return m.group(1)
    # runserver 0.0.0.0:8000, or a bare HOST:PORT argument
    for word in argv:
        m = re.fullmatch(r"(?:[\w.]+|\[[\w:]*\])?:(\d{2,5})", word)
        if m:
            return m.group(1)
    return ""


# The port a server listens on when its command names none.
DEFAULT_PORTS = {
    "uvicorn": "8000",
    "gunicorn": "8000",
    "fastapi": "8000",
    "daphne": "8000",
    "hypercorn": "8000",
    "granian": "8000",
    "runserver": "8000",
    "flask": "5000",
    "waitress-serve": "8080",
}


def default_port(argv: Sequence[str]) -> tuple[str, str]:
    """(port, server) of a known server command that names no port, or ("", "")."""
    words = [PurePosixPath(w).name for w in argv]
    if "celery" in words or "rq" in words or "worker" in words:
        return "", ""
    for w in words[:4]:
        if w in DEFAULT_PORTS and (w != "flask" or "run" in words) and (w != "fastapi" or "run" in words):
            return DEFAULT_PORTS[w], w
    return "", ""


def _sources(context: Path) -> Iterable[Path]:
    seen = 0
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".py", ".toml", ".yml", ".yaml", ".cfg", ".ini")):
                seen += 1
                if seen > MAX_FILES:
                    return
                yield Path(dirpath) / name


def endpoint(context: Path, root: Path) -> tuple[str, str]:
    """(path, where) of the first health route in the build context's code, or ("", "")."""
    for path in _sources(context):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        m = _ROUTE.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
            route = "/" + m.group(1)
            if "path(" in m.group(0) or "url(" in m.group(0):
                route = route if route.endswith("/") else route + "/"  # a Django URL ends with a slash
            return route, f"{rel}:{line}"
    return "", ""


def from_healthcheck(text: str) -> tuple[str, str]:
    """(port, path) of the URL an original HEALTHCHECK (or Compose test) requests, or ("", "")."""
    m = _URL.search(text)
    return (m.group(1) or "", m.group(2)) if m else ("", "")


def choose(
    *,
    original: str,
    original_line: int,
    dockerfile: str,
    expose: Sequence[str],
    argv: Sequence[str],
    compose_ports: Sequence[str],
    context: Path,
    root: Path,
) -> Probe:
    """The probe: the original's URL, else a health route of the code on the service's port, else TCP, else none."""
    hc_port, hc_path = from_healthcheck(original)
    ports = [(p.split("/")[0], f"{dockerfile}: EXPOSE") for p in expose if p.split("/")[0].isdigit()]
    cmd_port = port_of(argv)
    if cmd_port:
        ports.insert(0, (cmd_port, f"{dockerfile}: the command's port"))
    ports += [(p, "Compose ports") for p in compose_ports]
    fallback, server = default_port(argv)
    if fallback:
        ports.append((fallback, f"the default port of {server}"))
    if hc_port:
        ports.insert(0, (hc_port, f"{dockerfile}:{original_line}: HEALTHCHECK"))
    if not ports:
        return Probe("none")
    port, where = ports[0]
    if hc_path and hc_path != "/":
        return Probe("http", port, hc_path, f"{dockerfile}:{original_line}: the original HEALTHCHECK")
    path, found = endpoint(context, root)
    if path:
        return Probe("http", port, path, f"route in {found}; port from {where}")
    return Probe("tcp", port, source=where)
