"""Readiness: a new container can take traffic, not only lives.

An engine healthcheck is often liveness (the process answers); a front door
routes by readiness (the container's own dependencies answer). A rolling
deploy that stops the old container as soon as the new one is live can leave
nothing ready behind the front door. So, for a service with a
``[deploy.readiness.SERVICE]`` route, the engine asks that route on the new
container, from the deploy host, at the container's address on one of its
networks the host can reach (not ``internal``), until it answers as expected or
the gate's deadline passes.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Readiness
from ..engine import Engine
from ..errors import PipelineError

POLL_S = 0.25
BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """One request's outcome: whether it was the expected answer, and what it was."""

    ok: bool
    seen: str


def _reachable(engine: Engine, network: str, cache: dict[str, bool]) -> bool:
    """An ``internal`` network has no route from the host; every other bridge network has."""
    if network not in cache:
        attrs = engine.inspect_network(network)
        cache[network] = not attrs.get("Internal") and attrs.get("Driver") in ("bridge", None, "")
    return cache[network]


def address(engine: Engine, container: str) -> str:
    """The container's IP address on a network the deploy host reaches, or PipelineError naming its networks."""
    attrs = engine.inspect_container(container)
    networks: Mapping[str, Any] = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    cache: dict[str, bool] = {}
    for name in sorted(networks):
        ip = str((networks[name] or {}).get("IPAddress") or "")
        if ip and _reachable(engine, name, cache):
            return ip
    raise PipelineError(
        f"container {container[:12]} has no address the deploy host can reach",
        seen=f"its networks: {', '.join(sorted(networks)) or 'none'} (internal ones do not count)",
        hint="a service with [deploy.readiness] needs a non-internal bridge network "
        "(the single-host engine asks it from the host)",
    )


def _opener() -> urllib.request.OpenerDirector:
    # A container address is never reached through the operator's HTTP proxy.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ask(url: str, spec: Readiness, timeout: float) -> Answer:
    """GET ``url`` once: the expected status and, when configured, the expected JSON values."""
    try:
        with _opener().open(url, timeout=timeout) as resp:
            status, body = int(resp.status), resp.read(BODY_LIMIT)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(BODY_LIMIT) if exc.fp else b""
    except (OSError, ValueError) as exc:  # refused, reset, timed out, not HTTP
        reason = getattr(exc, "reason", None) or exc
        return Answer(False, f"no answer ({reason})")
    text = body.decode("utf-8", "replace").strip()
    seen = f"{status} {text[:200]}".strip()
    if status != spec.status:
        return Answer(False, seen)
    if spec.json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return Answer(False, f"{seen} (not JSON)")
        if not isinstance(data, dict):
            return Answer(False, f"{seen} (not a JSON object)")
        for key, want in spec.json.items():
            # true == 1 in Python; not in the answer a route means.
            if key not in data or data[key] != want or isinstance(data[key], bool) != isinstance(want, bool):
                return Answer(False, f"{seen} ({key} is not {json.dumps(want)})")
    return Answer(True, seen)


def wait_ready(engine: Engine, container: str, spec: Readiness, deadline_s: float) -> tuple[bool, str, float]:
    """Poll the container's readiness route until it answers as expected or ``deadline_s`` passes.

    Returns (ready, what was last seen, seconds taken). A container that stops
    meanwhile is not ready, whatever it answered before.
    """
    start = time.monotonic()
    url = f"http://{address(engine, container)}:{spec.port}{spec.path}"
    last = "not asked"
    while True:
        left = deadline_s - (time.monotonic() - start)
        answer = ask(url, spec, max(0.2, min(spec.timeout, left)))
        took = round(time.monotonic() - start, 2)
        if answer.ok:
            return True, f"GET {url} -> {answer.seen}", took
        last = answer.seen
        if engine.state(container).status != "running":
            return False, f"GET {url} -> {last}; the container stopped", took
        if time.monotonic() - start + POLL_S >= deadline_s:
            return False, f"GET {url} -> {last}", took
        time.sleep(POLL_S)
