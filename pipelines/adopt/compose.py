"""Compose files: where they are kept, overlays and their environments, each service as init reads it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .. import datastores, inputs, refs
from ..composefile import ComposeLoader
from ..errors import ConfigError, InputError
from .model import ComposeFile, ComposeService, Undecided
from .tree import read_file, relative, walk

# Directories besides the root where Compose files are conventionally kept.
COMPOSE_DIRS = ("", "docker", "deploy", "compose", ".docker", "deployment", "ops", "infra")
BASE_COMPOSE = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_OVERLAY = re.compile(r"^(?:docker-)?compose\.(?P<env>[A-Za-z0-9_-]+)\.ya?ml$")
# Overlay name -> environment.
ENV_OF_OVERLAY = {
    "override": "dev",
    "dev": "dev",
    "development": "dev",
    "local": "dev",
    "staging": "staging",
    "stage": "staging",
    "prod": "prod",
    "production": "prod",
}


def load_compose(text: str, display: str) -> tuple[Any, dict[str, int]]:
    """The document, and the line of each service (`services.NAME`); invalid YAML names file:line."""
    try:
        loader = ComposeLoader(text)
        try:
            node = loader.get_single_node()
            try:
                inputs.check_yaml_expansion(node, display)
            except ConfigError as exc:
                raise InputError(exc.what) from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark else ""
        col = f" (column {mark.column + 1})" if mark else ""
        raise InputError(
            f"{display}{where}: is not valid YAML{col}: {exc.problem or exc.context}",
            hint="fix the file (docker compose config shows the same problem), then run init again",
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"{display}: is not valid YAML: {exc}") from None
    except (RecursionError, TypeError, ValueError) as exc:
        # Unhashable keys ({[1]: x}), nesting past the parser's stack, impossible timestamps.
        raise InputError(f"{display}: is not usable YAML: {type(exc).__name__}: {exc}") from None
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "services" and isinstance(v, yaml.MappingNode):
                for sk, _sv in v.value:
                    if isinstance(sk, yaml.ScalarNode):
                        lines.setdefault(str(sk.value), sk.start_mark.line + 1)
    return data, lines


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int | float))
    if isinstance(value, dict):
        return tuple(str(k) for k in value)
    return ()


def _env_files(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                out.append(item["path"])
        return tuple(out)
    return _strings(value)


def _ports(value: object) -> tuple[str, ...]:
    out: list[str] = []
    if isinstance(value, list):
        for p in value:
            if isinstance(p, dict):
                target = p.get("target")
                if target is not None:
                    out.append(str(target))
            elif isinstance(p, str | int):
                out.append(str(p).rsplit(":", 1)[-1])
    return tuple(out)


def _args_map(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str] = {}
        for item in value:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {}


def compose_service(
    root: Path, file: str, name: str, line: int, svc: Mapping[str, Any], undecided: list[Undecided]
) -> ComposeService:
    base_dir = PurePosixPath(file).parent
    build = svc.get("build")
    image = str(svc["image"]) if isinstance(svc.get("image"), str) else ""
    ports = _ports(svc.get("ports")) + tuple(str(p) for p in _strings(svc.get("expose")))
    common: dict[str, Any] = {
        "name": name,
        "file": file,
        "line": line,
        "image": image,
        "ports": ports,
        "healthcheck": isinstance(svc.get("healthcheck"), dict) and not svc["healthcheck"].get("disable"),
        "profiles": _strings(svc.get("profiles")),
        "env_files": _env_files(svc.get("env_file")),
        "depends_on": _strings(svc.get("depends_on")),
    }
    if build is None or build is False:
        store = datastores.kind_of(image)
        return ComposeService(role="datastore" if store else "image", datastore=store, **common)
    spec: Mapping[str, Any] = {"context": build} if isinstance(build, str) else build if isinstance(build, dict) else {}
    ctx_raw = spec.get("context", ".")
    if not isinstance(ctx_raw, str) or not ctx_raw:
        ctx_raw = "."
    if "://" in ctx_raw or ctx_raw.startswith("git@") or "$" in ctx_raw:
        undecided.append(Undecided(file, line, f"service {name}: build context {ctx_raw!r} is not a directory here"))
        return ComposeService(role="image", **common)
    ctx_path = refs.inside(root, str(base_dir / ctx_raw))
    if ctx_path is None or not ctx_path.is_dir():
        undecided.append(
            Undecided(file, line, f"service {name}: build context {ctx_raw!r} is not a directory inside the repository")
        )
        return ComposeService(role="image", **common)
    if isinstance(spec.get("dockerfile_inline"), str):
        undecided.append(
            Undecided(file, line, f"service {name}: dockerfile_inline; pipelines builds from a Dockerfile on disk")
        )
        return ComposeService(role="image", **common)
    dockerfile = spec.get("dockerfile") if isinstance(spec.get("dockerfile"), str) else "Dockerfile"
    target = spec.get("target") if isinstance(spec.get("target"), str) else None
    return ComposeService(
        role="built",
        context=relative(root.resolve(), ctx_path) or ".",
        dockerfile=str(dockerfile),
        target=target,
        args=_args_map(spec.get("args")),
        **common,
    )


def find_compose(root: Path) -> list[tuple[str, bool, str]]:
    """(relative path, is overlay, overlay suffix) of the Compose files in the conventional places."""
    out: list[tuple[str, bool, str]] = []
    for d in COMPOSE_DIRS:
        directory = root / d if d else root
        if directory.is_symlink() or not directory.is_dir():
            continue
        try:
            names = sorted(p.name for p in directory.iterdir() if p.is_file() and not p.is_symlink())
        except OSError:
            continue
        out.extend(_compose_in(d, names))
    if not any(not overlay for _, overlay, _ in out):
        # None in the usual places: the first directory, at most three levels down (docker/compose/,
        # server/), whose base file builds a service of this repository. Tests, examples, docs, templates and
        # tool directories (.devcontainer and the like) describe other setups; a file that only runs
        # published images (a side tool's stack) is not the services' either.
        for d, names in walk(root):
            if d and d not in COMPOSE_DIRS and d.count("/") < 3 and not _elsewhere(d):
                regular = [n for n in names if (root / d / n).is_file() and not (root / d / n).is_symlink()]
                found = _compose_in(d, regular)
                if any(not overlay and _builds(root / rel) for rel, overlay, _ in found):
                    out.extend(found)
                    break
    return out


# Directories whose Compose files are about other setups than the repository's own services.
_NOT_THE_SERVICES = re.compile(r"^(\..*|tests?|testing|examples?|samples?|docs?|fixtures?|demos?|\{\{.*)$", re.I)


def _elsewhere(rel: str) -> bool:
    return any(_NOT_THE_SERVICES.match(part) for part in rel.split("/"))


def _builds(path: Path) -> bool:
    """Whether a Compose file builds at least one service (one that cannot be read builds nothing here)."""
    try:
        data, _ = load_compose(read_file(path, path.name), path.name)
    except InputError:
        return False
    services = data.get("services") if isinstance(data, dict) else None
    return isinstance(services, dict) and any(isinstance(s, dict) and s.get("build") for s in services.values())


def _compose_in(d: str, names: Sequence[str]) -> list[tuple[str, bool, str]]:
    rel = f"{d}/" if d else ""
    # Base files first: overlays are read as changes to them.
    out = [(rel + n, False, "") for n in names if n in BASE_COMPOSE]
    for n in names:
        if n not in BASE_COMPOSE and (m := _OVERLAY.match(n)):
            out.append((rel + n, True, m.group("env").lower()))
    return out


def read_compose_file(
    root: Path, rel: str, overlay: bool, suffix: str, tracked: set[str] | None, undecided: list[Undecided]
) -> ComposeFile:
    """One Compose file and its services; what it leaves open goes to ``undecided``."""
    data, lines = load_compose(read_file(root / rel, rel), rel)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{rel}: is not a Compose file: its top level is not a mapping")
    raw_services = data.get("services") or {}
    if not isinstance(raw_services, dict):
        raise InputError(f"{rel}:{lines.get('services', 1)}: `services` is not a mapping")
    env = ENV_OF_OVERLAY.get(suffix, "") if overlay else ""
    if overlay and not env:
        undecided.append(
            Undecided(
                rel, 0, f"overlay {suffix!r} is not mapped to an environment; add it to one", section="environments"
            )
        )
    svcs: list[ComposeService] = []
    for name, svc in raw_services.items():
        name = str(name)
        if not isinstance(svc, dict):
            svc = {}
        line = lines.get(name, 1)
        cs = compose_service(root, rel, name, line, svc, undecided)
        svcs.append(cs)
        for ef in cs.env_files:
            ef_rel = (PurePosixPath(rel).parent / ef).as_posix()
            ef_path = refs.inside(root, ef_rel)
            norm = relative(root, ef_path) if ef_path is not None else ef_rel
            if ef_path is None or not ef_path.is_file():
                undecided.append(Undecided(rel, line, f"service {name}: env_file {ef} does not exist", "compose"))
            elif tracked is not None and norm not in tracked:
                undecided.append(
                    Undecided(
                        rel,
                        line,
                        f"service {name}: env_file {ef} is not committed (CI will not have it)",
                        "compose",
                    )
                )
        if cs.profiles:
            undecided.append(
                Undecided(
                    rel,
                    line,
                    f"service {name} runs only with profile {', '.join(cs.profiles)}: smoke and deploy start the "
                    "default services; decide whether it belongs to an environment",
                    "compose",
                )
            )
    if not overlay and svcs and not any(s.role == "built" for s in svcs):
        undecided.append(
            Undecided(rel, 0, "no service has build:; which of its images does this repository build?", "compose")
        )
    return ComposeFile(path=rel, env=env, services=tuple(svcs), overlay=overlay)


def environments_of(
    compose_files: Sequence[ComposeFile], undecided: list[Undecided]
) -> tuple[tuple[str, ...], dict[str, list[str]]]:
    """The base file (`[compose].files`) and each environment's overlays beside it."""
    bases = [c.path for c in compose_files if not c.overlay]
    base_compose = tuple(bases[:1])
    for extra in bases[1:]:
        undecided.append(
            Undecided(extra, 0, f"a second base Compose file; [compose] files uses {bases[0]}", section="compose")
        )
    base_dir = PurePosixPath(bases[0]).parent if bases else None
    environments: dict[str, list[str]] = {"dev": []}
    for c in compose_files:
        if not c.overlay or not c.env:
            continue
        if base_dir is not None and PurePosixPath(c.path).parent != base_dir:
            undecided.append(
                Undecided(c.path, 0, f"an overlay beside no base file ({bases[0]} is the base)", "compose")
            )
            continue
        if base_dir is None:
            undecided.append(Undecided(c.path, 0, "an overlay without a base Compose file", "compose"))
            continue
        environments.setdefault(c.env, []).append(c.path)
    return base_compose, environments
