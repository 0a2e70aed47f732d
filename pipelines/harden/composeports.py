"""The container ports the config's Compose files publish for a service's build: the health check's last hint."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .. import inputs
from ..errors import ConfigError


def _container_port(entry: object) -> str:
    if isinstance(entry, dict):
        target = entry.get("target")
        return str(target) if isinstance(target, int) or (isinstance(target, str) and target.isdigit()) else ""
    if isinstance(entry, (int, str)):
        # "8000", "8080:8000", "127.0.0.1:8080:8000", "8000/tcp": the container's side is the last number.
        m = re.search(r"(\d+)(?:/\w+)?$", str(entry))
        return m.group(1) if m else ""
    return ""


def ports(files: Sequence[Path], context: Path, dockerfile: Path) -> list[str]:
    """Ports of every Compose service whose build is this context and Dockerfile (unreadable files tell nothing)."""
    out: list[str] = []
    for file in files:
        try:
            data, _ = inputs.load_yaml(inputs.read_text(file, str(file)), str(file))
        except (ConfigError, OSError):
            continue
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            continue
        for svc in services.values():
            if not isinstance(svc, dict):
                continue
            build = svc.get("build")
            if isinstance(build, str):
                build = {"context": build}
            if not isinstance(build, dict) or not isinstance(build.get("context", "."), str):
                continue
            ctx = (file.parent / str(build.get("context", "."))).resolve()
            df = build.get("dockerfile", "Dockerfile")
            if ctx != context.resolve() or not isinstance(df, str) or (ctx / df).resolve() != dockerfile.resolve():
                continue
            for entry in [*(svc.get("ports") or []), *(svc.get("expose") or [])]:
                port = _container_port(entry)
                if port:
                    out.append(port)
    return list(dict.fromkeys(out))
