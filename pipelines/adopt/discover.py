"""What a repository holds, read without an engine or the network: Dockerfiles, Compose files, their services.

Everything here is read from files; nothing is run but one `git ls-files` (to tell a committed env_file
from one that only exists on this machine). What cannot be decided from the files is recorded as an
:class:`Undecided` naming the file and line a person has to look at.
"""

from __future__ import annotations

from pathlib import Path

from .compose import environments_of, find_compose, read_compose_file
from .dockerfiles import is_dockerfile, parse_dockerfile
from .model import Discovery, Dockerfile, Undecided
from .project import project_name
from .services import dockerfile_path, find_services
from .tree import git_files, walk


def discover(root: Path) -> Discovery:
    root = root.resolve()
    undecided: list[Undecided] = []
    project = project_name(root)

    dockerfiles: dict[str, Dockerfile] = {}
    for d, names in walk(root):
        for n in names:
            if is_dockerfile(n):
                p = root / d / n if d else root / n
                if p.is_symlink() or not p.is_file():
                    continue
                parsed = parse_dockerfile(root, p)
                dockerfiles[parsed.path] = parsed

    tracked = git_files(root)
    compose_files = [
        read_compose_file(root, rel, overlay, suffix, tracked, undecided) for rel, overlay, suffix in find_compose(root)
    ]
    base_compose, environments = environments_of(compose_files, undecided)

    compose_services = [s for c in compose_files for s in c.services]
    services, seen_compose = find_services(root, project, dockerfiles, compose_services, base_compose, undecided)

    # A port is what an HTTP probe needs: a Compose service's own ports, or the Dockerfile's EXPOSE when no
    # other Compose service runs the same image (a Celery worker shares the web image and its EXPOSE).
    by_name = {s.name: s for s in services}
    ported: list[tuple[str, int, str, str]] = []
    for cs in compose_services:
        if cs.role == "built" and cs.file in base_compose and cs.name in seen_compose:
            owner = next((s for s in services if cs.name in s.also or s.source == f"{cs.file}:{cs.line}"), None)
            if owner is None:
                continue
            shared = bool(owner.also)
            own = dockerfiles.get(dockerfile_path(owner.context, owner.dockerfile))
            exposed = () if shared or own is None else own.expose
            if not cs.ports and not exposed:
                ported.append((cs.file, cs.line, cs.name, owner.name))
    for s in services:
        if ":" not in s.source and not s.ports:
            ported.append((s.source, 0, s.name, s.name))
    for file, line, name, owner_name in ported:
        section = f"services.{owner_name}" if owner_name in by_name else "compose"
        undecided.append(
            Undecided(
                file,
                line,
                f"service {name} publishes no port (a worker?): smoke can only judge it by its healthcheck",
                section,
            )
        )
    for cs in compose_services:
        if cs.role == "built" and not cs.healthcheck:
            own = dockerfiles.get(dockerfile_path(cs.context or ".", cs.dockerfile or "Dockerfile"))
            if own is not None and own.healthcheck:
                continue
            if cs.file in base_compose:
                undecided.append(
                    Undecided(
                        cs.file,
                        cs.line,
                        f"service {cs.name} has no healthcheck: smoke waits for every service to be healthy",
                        "compose",
                    )
                )

    return Discovery(
        root=root,
        project=project,
        dockerfiles=tuple(dockerfiles.values()),
        compose=tuple(compose_files),
        base_compose=base_compose,
        environments={k: tuple(v) for k, v in environments.items()},
        services=tuple(services),
        compose_services=tuple(compose_services),
        undecided=tuple(_dedupe(undecided)),
    )


def _dedupe(items: list[Undecided]) -> list[Undecided]:
    seen: set[Undecided] = set()
    out = []
    for u in items:
        if u not in seen:
            seen.add(u)
            out.append(u)
    # Grouped by file, in the order of their lines: the order a person works through them.
    return sorted(out, key=lambda u: (u.file, u.line))
