"""The images to build: one per distinct build, named, with the context a lone Dockerfile builds from."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .. import refs
from .dockerfiles import parse_dockerfile
from .model import ComposeService, Dockerfile, Service, Undecided
from .project import dependency_style, is_python_image

# Directory names that say nothing about the service whose Dockerfile they hold.
GENERIC_DIRS = frozenset({"", ".", "docker", "deploy", ".docker", "build", "containers", "container", "ci", "ops"})


def image_name(raw: str, fallback: str = "app") -> str:
    """A name usable as `[services.NAME]` and repository component: lowercase, invalid runs become '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    name = re.sub(r"-+", "-", name)
    if not name or refs.component_problem(name):
        return fallback
    return name[:64].strip("-") or fallback


def dockerfile_path(context: str, dockerfile: str) -> str:
    joined = os.path.normpath(PurePosixPath(context) / dockerfile)
    return PurePosixPath(joined).as_posix()


def _with_also(s: Service, other: str) -> Service:
    from dataclasses import replace

    return replace(s, also=(*s.also, other))


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate = f"{name}-{n}"
        n += 1
    used.add(candidate)
    return candidate


def _name_from_path(path: str, project: str) -> str:
    p = PurePosixPath(path)
    n = p.name
    for prefix in ("Dockerfile.", "Containerfile."):
        if n.startswith(prefix) and len(n) > len(prefix):
            return n[len(prefix) :]
    low = n.lower()
    for suffix in (".dockerfile", ".containerfile"):
        if low.endswith(suffix) and len(n) > len(suffix):
            return n[: -len(suffix)]
    parent = p.parent.name
    return project if parent.lower() in GENERIC_DIRS else parent


def _guess_context(root: Path, df: Dockerfile) -> str:
    """The directory a Dockerfile not named by Compose builds from: the one where what it COPYs exists."""
    here = PurePosixPath(df.path).parent.as_posix()
    candidates = [here] if here == "." else [here, "."]
    literal = [c for c in df.copies if not any(ch in c for ch in "*?[$")]
    if not literal:
        return here if PurePosixPath(df.path).parent.name.lower() not in GENERIC_DIRS else "."
    best, score = candidates[0], -1
    for c in candidates:
        base = root / c if c != "." else root
        hits = sum(1 for s in literal if (base / s.lstrip("/")).exists())
        if hits > score:
            best, score = c, hits
    return best


def _service(
    root: Path,
    name: str,
    context: str,
    dockerfile: str,
    target: str | None,
    source: str,
    df: Dockerfile,
    ports: tuple[str, ...],
    undecided: list[Undecided],
) -> Service | None:
    if target and df.final(target) is None:
        undecided.append(
            Undecided(df.path, 1, f"service {name}: build target {target!r} is no stage of this Dockerfile", "compose")
        )
        return None
    image, line = df.root_image(target)
    python = is_python_image(image) if image else None
    if python is None:
        undecided.append(
            Undecided(
                df.path,
                line or 1,
                f"service {name}: the final stage starts FROM {image or '(nothing)'}; the base image is decided "
                "by a build argument, so whether it is a Python image cannot be told here",
                f"services.{name}",
            )
        )
    elif not python:
        undecided.append(
            Undecided(
                df.path,
                line,
                f"service {name}: the final stage starts FROM {image}, not a Python image; keep it as a service, "
                "or remove it if this repository does not own it",
                f"services.{name}",
            )
        )
    ctx_dir = root / context if context != "." else root
    return Service(
        name=name,
        context=context,
        dockerfile=dockerfile,
        target=target,
        source=source,
        deps=dependency_style(ctx_dir),
        python=python,
        base=image,
        ports=tuple(dict.fromkeys((*ports, *df.expose))),
    )


def find_services(
    root: Path,
    project: str,
    dockerfiles: dict[str, Dockerfile],
    compose_services: Sequence[ComposeService],
    base_compose: tuple[str, ...],
    undecided: list[Undecided],
) -> tuple[list[Service], set[str]]:
    """The images to build, and the names of the Compose services whose build was read (each name once).

    Compose's builds come first, then every Dockerfile no Compose service builds; a Dockerfile only Compose
    names is added to ``dockerfiles``.
    """
    # Compose services whose image is the same build: one [services.*] table, the others noted beside it.
    services: list[Service] = []
    by_build: dict[tuple[str, str, int | str | None, tuple[tuple[str, str], ...]], int] = {}
    used: set[str] = set()
    # The base file decides first; an overlay's build of the same service adds nothing new.
    seen_compose: set[str] = set()
    for cs in sorted(compose_services, key=lambda s: (s.file not in base_compose, s.file, s.line)):
        if cs.role != "built" or cs.context is None or cs.dockerfile is None:
            continue
        if cs.name in seen_compose:
            continue
        seen_compose.add(cs.name)
        df_rel = dockerfile_path(cs.context, cs.dockerfile)
        df = dockerfiles.get(df_rel)
        where = f"{cs.file}:{cs.line}"
        if df is None:
            path = refs.inside(root, df_rel)
            if path is not None and path.is_file() and not path.is_symlink():
                df = parse_dockerfile(root, path)
                dockerfiles[df.path] = df
            else:
                undecided.append(
                    Undecided(cs.file, cs.line, f"service {cs.name}: Dockerfile {df_rel} does not exist", "compose")
                )
                continue
        # The same image: the same context, Dockerfile, final stage (no target is the last one) and arguments.
        final = df.final(cs.target)
        key = (cs.context, df_rel, final.line if final else cs.target, tuple(sorted(cs.args.items())))
        if key in by_build:
            i = by_build[key]
            services[i] = _with_also(services[i], cs.name)
            continue
        name = _unique(image_name(cs.name), used)
        svc = _service(root, name, cs.context, cs.dockerfile, cs.target, where, df, cs.ports, undecided)
        if svc is None:
            continue
        by_build[key] = len(services)
        services.append(svc)

    referenced = {dockerfile_path(s.context, s.dockerfile) for s in services}
    for orphan in dockerfiles.values():
        if orphan.path in referenced:
            continue
        context = _guess_context(root, orphan)
        dockerfile = (
            PurePosixPath(orphan.path).relative_to(PurePosixPath(context)).as_posix() if context != "." else orphan.path
        )
        name = _unique(image_name(_name_from_path(orphan.path, project), image_name(project)), used)
        svc = _service(root, name, context, dockerfile, None, orphan.path, orphan, (), undecided)
        if svc is not None:
            services.append(svc)
    return services, seen_compose
