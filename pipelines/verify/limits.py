"""The limits a throwaway container runs under: the environment's Compose service for the image, else [verify]'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import report
from ..compose_model import Service
from ..config import Config
from ..result import Context
from .targets import Target


def repository(ref: str) -> str:
    """An image reference without its tag or digest (a registry's :port stays)."""
    ref = ref.split("@", 1)[0]
    head, sep, tail = ref.rpartition(":")
    return head if sep and "/" not in tail else ref


def compose_services(ctx: Context, env: str) -> dict[str, tuple[str, Service]]:
    """The environment's merged Compose services by image repository: (service name, its settings).

    Where several services run one image (a one-shot job and the server), the
    one that keeps the image's own entrypoint describes how the image runs.
    """
    from ..composefile import render

    cfg = ctx.cfg
    files = [*cfg.compose.files, *cfg.env(env).compose]
    if not cfg.compose.files:
        return {}
    displays = [report.display_path(f, cfg.root) for f in files]
    # The image references the environment's stack runs: its registry, as smoke and deploy render them.
    reg = cfg.registry_for(env)
    variables = {"REGISTRY": reg.address, "NAMESPACE": reg.namespace}
    rendered = render(
        ctx.tools, files, displays, project_dir=cfg.root, env_file=cfg.compose.env_file, variables=variables
    ).project
    out: dict[str, tuple[str, Service]] = {}
    for name, svc in sorted(rendered.services.items()):
        if not svc.image:
            continue
        repo = repository(svc.image)
        if repo not in out or (out[repo][1].entrypoint and not svc.entrypoint):
            out[repo] = (name, svc)
    return out


@dataclass(frozen=True)
class Limits:
    """The limits a throwaway container gets, and where they come from."""

    memory: str | int
    pids: int
    nano_cpus: int
    tmpfs: tuple[str, ...]  # Compose's short syntax: PATH[:OPTIONS]
    source: str


def limits_for(cfg: Config, env: str, t: Target, services: Mapping[str, tuple[str, Service]]) -> Limits:
    """The environment's Compose limits for the service that runs this image, else [verify]'s."""
    vc = cfg.verify
    repo = repository(cfg.repo(t.image, env) if t.image is not None else (t.named or t.ref))
    name, svc = services.get(repo, ("", Service("")))
    mem, pids, cpus = svc.mem_limit, svc.pids_limit, svc.cpus
    if name and (mem or pids or cpus):
        return Limits(
            int(mem) if mem else f"{vc.memory_mb}m",
            int(pids or vc.pids),
            int(float(cpus or 1) * 1e9),
            svc.tmpfs,
            f"limits of Compose service {name!r} in {env}",
        )
    why = f"{env}'s Compose sets no limits for {name!r}" if name else f"no Compose service of {env} runs it"
    return Limits(f"{vc.memory_mb}m", vc.pids, 1_000_000_000, (), f"[verify] limits ({why})")
