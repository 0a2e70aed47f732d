"""What a repository holds, read without an engine or the network: Dockerfiles, Compose files, their services.

Everything here is read from files; nothing is run but one `git ls-files` (to tell a committed env_file
from one that only exists on this machine). What cannot be decided from the files is recorded as an
:class:`Undecided` naming the file and line a person has to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .. import inputs, refs
from ..composefile import ComposeLoader
from ..errors import ConfigError, InputError

# Directories that hold someone else's files or generated ones: their Dockerfiles are not this repository's services.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "env",
        ".env",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        "vendor",
        "vendored",
        "_vendor",
        "third_party",
        "third-party",
        "thirdparty",
        "external",
        ".devcontainer",  # an editor's container, not a service
    }
)
# A tree this large is not walked to the end: discovery stays quick on a monorepo.
MAX_ENTRIES = 50_000
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
# Image name (last path component, before the tag) -> the datastore it is.
DATASTORES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "postgis": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "redis": "redis",
    "valkey": "redis",
    "redis-stack": "redis",
    "mongo": "mongo",
    "mongodb": "mongo",
    "rabbitmq": "rabbitmq",
    "memcached": "memcached",
    "elasticsearch": "elasticsearch",
    "opensearch": "elasticsearch",
}
# Directory names that say nothing about the service whose Dockerfile they hold.
GENERIC_DIRS = frozenset({"", ".", "docker", "deploy", ".docker", "build", "containers", "container", "ci", "ops"})
# Files that pin a context's Python dependencies, in the order they are recognised.
_LOCKS = (("uv.lock", "uv"), ("poetry.lock", "poetry"), ("pdm.lock", "pdm"), ("Pipfile.lock", "pipenv"))
_PYTHON_IMAGE = re.compile(r"(^|/)(python[0-9.]*|pypy[0-9.]*)(:|@|$)|(^|[/:-])python[0-9.]*(-|$)")


@dataclass(frozen=True)
class Undecided:
    """A question only a person can answer: where to look, what is open, and which config section it concerns."""

    file: str  # relative to the repository, POSIX
    line: int  # 0: the file as a whole
    what: str
    section: str = ""  # the pipeline.toml table the comment goes next to ("" for the top of the file)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Stage:
    name: str  # "" when the stage is not named
    base: str  # what FROM names (a previous stage, an image, an ARG)
    line: int


@dataclass(frozen=True)
class Dockerfile:
    path: str  # relative to the repository, POSIX
    stages: tuple[Stage, ...]
    copies: tuple[str, ...]  # COPY/ADD sources from the build context (not from other stages)
    expose: tuple[str, ...]
    healthcheck: bool

    def final(self, target: str | None) -> Stage | None:
        """The stage a build with ``target`` ends in (the last stage without one)."""
        if target:
            for s in self.stages:
                if s.name.lower() == target.lower():  # stage names are case-insensitive
                    return s
            return None
        return self.stages[-1] if self.stages else None

    def root_image(self, target: str | None) -> tuple[str, int]:
        """The image the final stage ultimately starts from, following stage names (and its line)."""
        stage = self.final(target)
        seen: set[str] = set()
        while stage is not None:
            named = {s.name.lower(): s for s in self.stages if s.name and s.line < stage.line}
            base = stage.base.lower()
            if base in named and base not in seen:
                seen.add(base)
                stage = named[base]
                continue
            return stage.base, stage.line
        return "", 0


@dataclass(frozen=True)
class ComposeService:
    name: str
    file: str
    line: int
    role: str  # built | datastore | image
    context: str | None = None  # relative to the repository, POSIX ("." for the root)
    dockerfile: str | None = None  # relative to the context
    target: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    datastore: str = ""
    ports: tuple[str, ...] = ()
    healthcheck: bool = False
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeFile:
    path: str
    env: str  # "" for a base file; the environment an overlay belongs to
    services: tuple[ComposeService, ...]
    overlay: bool


@dataclass(frozen=True)
class Service:
    """One image the pipeline builds: a `[services.NAME]` table."""

    name: str
    context: str
    dockerfile: str  # relative to the context
    target: str | None
    source: str  # where it was found (file:line)
    deps: str  # how the context pins its Python dependencies
    python: bool | None  # the final stage starts from a Python image (None: cannot tell)
    base: str
    ports: tuple[str, ...]
    also: tuple[str, ...] = ()  # Compose services that run the same image


@dataclass(frozen=True)
class Discovery:
    root: Path
    project: str
    dockerfiles: tuple[Dockerfile, ...]
    compose: tuple[ComposeFile, ...]
    base_compose: tuple[str, ...]  # [compose].files
    environments: Mapping[str, tuple[str, ...]]  # env -> overlays
    services: tuple[Service, ...]
    compose_services: tuple[ComposeService, ...]
    undecided: tuple[Undecided, ...]


# --------------------------------------------------------------------------- reading


def _read(path: Path, display: str) -> str:
    try:
        return inputs.read_text(path, display)
    except ConfigError as exc:
        raise InputError(exc.what, hint=exc.hint) from None


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def walk(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(relative directory, file names) of the tree, without the directories of others, symlinks not followed."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        seen += len(dirnames) + len(filenames)
        rel = Path(dirpath).relative_to(root).as_posix()
        yield ("" if rel == "." else rel), sorted(filenames)
        if seen > MAX_ENTRIES:
            return


def is_dockerfile(name: str) -> bool:
    if name.endswith(".dockerignore"):
        return False
    low = name.lower()
    return (
        name in ("Dockerfile", "Containerfile")
        or name.startswith(("Dockerfile.", "Containerfile."))
        or low.endswith(".dockerfile")
        or low.endswith(".containerfile")
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Dockerfile instructions with continuations joined, each with the line it starts on."""
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        yield start, " ".join(buf)
        buf = []
    if buf:
        yield start, " ".join(buf)


def parse_dockerfile(root: Path, path: Path) -> Dockerfile:
    rel = _rel(root, path)
    text = _read(path, rel)
    stages: list[Stage] = []
    copies: list[str] = []
    expose: list[str] = []
    health = False
    for line, instr in _logical_lines(text):
        word, _, rest = instr.partition(" ")
        word = word.upper()
        parts = rest.split()
        if word == "FROM":
            args = [p for p in parts if not p.startswith("--")]
            if args:
                name = args[2] if len(args) >= 3 and args[1].lower() == "as" else ""
                stages.append(Stage(name=name, base=args[0], line=line))
        elif word in ("COPY", "ADD"):
            if any(p.startswith("--from") for p in parts):
                continue
            if rest.lstrip().startswith("["):
                try:
                    import json

                    items = [str(x) for x in json.loads(rest[rest.index("[") :])]
                except (ValueError, TypeError):
                    items = []
            else:
                items = [p for p in parts if not p.startswith("--")]
            copies.extend(s for s in items[:-1] if not s.startswith(("http://", "https://", "<<")))
        elif word == "EXPOSE":
            expose.extend(parts)
        elif word == "HEALTHCHECK":
            health = not rest.strip().upper().startswith("NONE")
    return Dockerfile(path=rel, stages=tuple(stages), copies=tuple(copies), expose=tuple(expose), healthcheck=health)


def is_python_image(image: str) -> bool | None:
    """Whether an image reference is a Python base (None: an ARG decides, so the file alone cannot tell)."""
    if "$" in image:
        return None
    ref = image.lower().split("@")[0]
    return bool(_PYTHON_IMAGE.search(ref))


def datastore_of(image: str) -> str:
    if not image or "$" in image.split("/")[-1].split(":")[0]:
        return ""
    name = image.lower().split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return DATASTORES.get(name, "")


def dependency_style(context: Path) -> str:
    """How a build context pins its Python dependencies, as recorded in the found-services table."""
    try:
        names = {p.name for p in context.iterdir()}
    except OSError:
        return "unknown"
    for lock, style in _LOCKS:
        if lock in names:
            return style
    if "pyproject.toml" in names:
        data = _toml(context / "pyproject.toml")
        tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
        if isinstance(tool, dict):
            for style in ("poetry", "pdm", "uv"):
                if style in tool:
                    return f"{style} (no lock file)"
    if "Pipfile" in names:
        return "pipenv (no lock file)"
    reqs = sorted(n for n in names if n.startswith("requirements") and n.endswith((".txt", ".in")))
    if reqs or "requirements" in names:
        return "pip (" + ", ".join(reqs or ["requirements/"]) + ")"
    if "pyproject.toml" in names:
        return "pyproject.toml (no lock file)"
    if "setup.py" in names or "setup.cfg" in names:
        return "setuptools (no lock file)"
    return "none found"


def _toml(path: Path) -> dict[str, Any]:
    """A pyproject.toml as data; one that cannot be read only tells less (it is a hint here, not an input)."""
    try:
        return tomllib.loads(inputs.read_text(path, path.name))
    except (ConfigError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return {}


def project_name(root: Path) -> str:
    py = root / "pyproject.toml"
    if py.is_file():
        data = _toml(py)
        for table in (
            data.get("project"),
            (data.get("tool") or {}).get("poetry") if isinstance(data.get("tool"), dict) else None,
        ):
            if isinstance(table, dict) and isinstance(table.get("name"), str) and table["name"].strip():
                return str(table["name"]).strip()
    return root.resolve().name or "project"


def image_name(raw: str, fallback: str = "app") -> str:
    """A name usable as `[services.NAME]` and repository component: lowercase, invalid runs become '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    name = re.sub(r"-+", "-", name)
    if not name or refs.component_problem(name):
        return fallback
    return name[:64].strip("-") or fallback


# --------------------------------------------------------------------------- Compose


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
        store = datastore_of(image)
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
        context=_rel(root.resolve(), ctx_path) or ".",
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
        rel = f"{d}/" if d else ""
        # Base files first: overlays are read as changes to them.
        out.extend((rel + n, False, "") for n in names if n in BASE_COMPOSE)
        for n in names:
            if n not in BASE_COMPOSE and (m := _OVERLAY.match(n)):
                out.append((rel + n, True, m.group("env").lower()))
    return out


def git_files(root: Path) -> set[str] | None:
    """The files git tracks (None: not a git work tree, or no git)."""
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return {p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p}


# --------------------------------------------------------------------------- the whole repository


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
    compose_files: list[ComposeFile] = []
    for rel, overlay, suffix in find_compose(root):
        data, lines = load_compose(_read(root / rel, rel), rel)
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
                norm = _rel(root, ef_path) if ef_path is not None else ef_rel
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
        compose_files.append(ComposeFile(path=rel, env=env, services=tuple(svcs), overlay=overlay))

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

    # Compose services whose image is the same build: one [services.*] table, the others noted beside it.
    services: list[Service] = []
    by_build: dict[tuple[str, str, int | str | None, tuple[tuple[str, str], ...]], int] = {}
    used: set[str] = set()
    compose_services = [s for c in compose_files for s in c.services]
    # The base file decides first; an overlay's build of the same service adds nothing new.
    seen_compose: set[str] = set()
    for cs in sorted(compose_services, key=lambda s: (s.file not in base_compose, s.file, s.line)):
        if cs.role != "built" or cs.context is None or cs.dockerfile is None:
            continue
        if cs.name in seen_compose:
            continue
        seen_compose.add(cs.name)
        df_rel = _norm(cs.context, cs.dockerfile)
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

    referenced = {_norm(s.context, s.dockerfile) for s in services}
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
            own = dockerfiles.get(_norm(owner.context, owner.dockerfile))
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
            own = dockerfiles.get(_norm(cs.context or ".", cs.dockerfile or "Dockerfile"))
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


def _norm(context: str, dockerfile: str) -> str:
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
