"""The Swarm manager as the deploy sees it: its role, its services' and tasks' state, `docker stack deploy`,
and the removal of secrets no service uses any more."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import _proc
from ...engine import Engine
from ...errors import PipelineError
from ...tools import Toolchain
from .policy import STACK_LABEL, Log

if TYPE_CHECKING:
    import docker


class SwarmNotReady(PipelineError):
    """The engine is not a Swarm manager: nothing can be deployed to it (exit 2)."""


def check_manager(engine: Engine) -> None:
    """Raise SwarmNotReady (exit 2) unless the engine is an active Swarm manager."""
    info = engine.client.info()
    swarm = info.get("Swarm") or {}
    state = str(swarm.get("LocalNodeState") or "inactive")
    if state != "active":
        raise SwarmNotReady(
            "the Docker engine is not part of a swarm: `--engine swarm` cannot deploy",
            seen=f"docker info: Swarm.LocalNodeState = {state}",
            hint="on a single host: `docker swarm init --advertise-addr 127.0.0.1`; otherwise point DOCKER_HOST "
            "at a manager of the swarm",
        )
    if not swarm.get("ControlAvailable"):
        raise SwarmNotReady(
            "the Docker engine is a swarm worker, not a manager: stacks are deployed through a manager",
            seen=f"docker info: node {swarm.get('NodeID')}, ControlAvailable = false",
            hint="point DOCKER_HOST at a manager (`docker node ls` on one lists them), or promote this node "
            "there with `docker node promote NODE`",
        )


def _digest(ref: str) -> str:
    return ref.rpartition("@")[2] if "@" in ref else ""


def _api_error(what: str, exc: Exception) -> PipelineError:
    return PipelineError(what, seen=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _service_state(client: docker.DockerClient, full: str) -> dict[str, Any] | None:
    import docker.errors

    try:
        return dict(client.api.inspect_service(full))
    except docker.errors.NotFound:
        return None


def _tasks(client: docker.DockerClient, full: str) -> list[dict[str, Any]]:
    return [dict(t) for t in client.api.tasks(filters={"service": full})]


def _container_health(client: docker.DockerClient, task: Mapping[str, Any]) -> str:
    """The task's container health when the container is on this engine's node ("" elsewhere or unknown)."""
    import docker.errors

    cid = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
    if not cid:
        return ""
    try:
        attrs = client.api.inspect_container(cid)
    except docker.errors.NotFound:
        return ""
    return str(((attrs.get("State") or {}).get("Health") or {}).get("Status") or "")


def _stack_deploy(tools: Toolchain, file: Path, stack: str, *, registry_auth: bool, log: Log) -> None:
    argv = [tools.docker, "stack", "deploy", "--resolve-image", "never", "-c", str(file)]
    if registry_auth:
        argv.append("--with-registry-auth")
    r = _proc.run([*argv, stack], timeout=300, check=False, log=log, what="docker stack deploy")
    for line in (r.stdout + "\n" + r.stderr).splitlines():
        if line.strip() and "detach" not in line:
            log(f"  {line.strip()}")
    if not r.ok:
        raise PipelineError(
            f"docker stack deploy {stack} failed with exit code {r.returncode}",
            seen=_proc.tail(r.stderr or r.stdout, 20),
            hint=f"the stack file is {file}; `docker stack config -c {file}` checks it",
        )


def _prune_secrets(client: docker.DockerClient, stack: str, log: Log) -> list[str]:
    """Remove the stack's secrets and configs no service uses any more (older hashes)."""
    import docker.errors

    used: set[str] = set()
    for svc in client.api.services(filters={"label": f"{STACK_LABEL}={stack}"}):
        cs = svc["Spec"]["TaskTemplate"]["ContainerSpec"]
        used |= {s["SecretName"] for s in cs.get("Secrets") or []}
        used |= {c["ConfigName"] for c in cs.get("Configs") or []}
        prev = ((svc.get("PreviousSpec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        # A rollback goes back to the previous spec: keep what it needs.
        used |= {s["SecretName"] for s in prev.get("Secrets") or []}
        used |= {c["ConfigName"] for c in prev.get("Configs") or []}
    removed: list[str] = []
    for kind, lister, remover in (
        ("secret", client.api.secrets, client.api.remove_secret),
        ("config", client.api.configs, client.api.remove_config),
    ):
        for obj in lister(filters={"label": f"{STACK_LABEL}={stack}"}):
            name = obj["Spec"]["Name"]
            if name in used:
                continue
            try:
                remover(obj["ID"])
            except docker.errors.APIError as exc:  # in use by a task still shutting down: next deploy removes it
                log(f"swarm: {kind} {name} kept for now ({str(exc).splitlines()[0]})")
                continue
            removed.append(name)
            log(f"swarm: removed unused {kind} {name}")
    return sorted(removed)
