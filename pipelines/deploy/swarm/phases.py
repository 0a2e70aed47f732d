"""The deploy's phases: which services each `docker stack deploy` carries, and how long each may take."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .policy import NOTICES_KEY
from .render import _duration_ns


def phases(stack_file: Mapping[str, Any], *, run_jobs: bool = True) -> list[tuple[str, list[str]]]:
    """(label, services) per `docker stack deploy`, in order.

    First the services nothing of which waits for a job (a job's own dependencies among them), then each
    job alone (Swarm re-runs a job whenever its service is updated, so a job is in one phase only), then
    every long-running service. Without jobs: one phase.
    """
    meta = stack_file.get(NOTICES_KEY) or {}
    jobs: list[str] = list(meta.get("jobs") or [])
    needs: Mapping[str, list[str]] = meta.get("needs") or {}
    services = sorted(stack_file.get("services") or {})
    longrun = [s for s in services if s not in jobs]
    if not jobs:
        return [("services", longrun)]

    def waits_for_job(s: str, seen: frozenset[str] = frozenset()) -> bool:
        deps = set(needs.get(s) or [])
        return bool(deps & set(jobs)) or any(waits_for_job(d, seen | {s}) for d in deps - seen - {s})

    first = [s for s in longrun if not waits_for_job(s)]
    out: list[tuple[str, list[str]]] = []
    if run_jobs:
        if first:
            out.append(("before jobs", first))
        out += [(f"job {j}", [j]) for j in jobs]
    out.append(("services", longrun))
    return out


def _phase_file(stack_file: Mapping[str, Any], services: Iterable[str]) -> dict[str, Any]:
    keep = set(services)
    out = {k: v for k, v in stack_file.items() if k != NOTICES_KEY}
    out["services"] = {k: v for k, v in (stack_file.get("services") or {}).items() if k in keep}
    return out


def deadline_for(stack_file: Mapping[str, Any], services: Iterable[str], *, pull: float = 180.0) -> float:
    """Seconds a phase may take: image pulls, then per service its replicas one by one, each start + monitor."""
    longest = 0.0
    for name in services:
        svc = (stack_file.get("services") or {})[name]
        dep = svc.get("deploy") or {}
        monitor = _duration_ns((dep.get("update_config") or {}).get("monitor") or "0s", name, "monitor") / 1e9
        replicas = int(dep.get("replicas") or 1)
        longest = max(longest, replicas * 2 * (monitor + 10))
    return pull + longest
