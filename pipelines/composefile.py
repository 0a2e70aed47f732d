"""A Compose project's merged, resolved config, as `docker compose config` renders it.

Lint judges it, verify reads each service's limits from it: both see what
Compose itself would run (overlays, variables, `.env`, optional env files),
with every key mapped back to the file and line where it is written.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import _proc, compose_model, inputs
from .compose_model import Project
from .errors import ConfigError, InputError
from .tools import Toolchain

REQUIRED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
UNSET_VAR = re.compile(r'The \\?"([A-Za-z_][A-Za-z0-9_]*)\\?" variable is not set')


@dataclass
class Rendered:
    files: list[Path]
    displays: list[str]
    config: dict[str, Any]
    nodes: list[yaml.Node | None]  # parsed source files, for line numbers
    notices: list[str] = field(default_factory=list)
    project: Project = field(default_factory=Project)  # config as typed records
    # Each file's services as written, read once: lint asks for every service's (source_environment).
    raw_services: dict[Path, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)


def _load_yaml_node(path: Path, display: str) -> yaml.Node | None:
    text = inputs.read_text(path, display)
    depth, line = inputs.flow_depth(text)
    if depth > inputs.MAX_DEPTH:
        # Before the parser: PyYAML's scanner slows down quadratically with flow nesting (20,000 levels: 2 s).
        raise InputError(
            f"{display}:{line}: not usable YAML: nested too deeply (at most {inputs.MAX_DEPTH} levels)",
            hint="write the value out with less nesting",
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError(f"{display}: not usable YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{display}:{mark.line + 1}" if mark else display
        raise InputError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
            hint="fix the YAML; docker compose rejects it too",
        ) from None
    inputs.check_yaml_expansion(node, display)
    return node


def _env_values(env_file: Path | None, project_dir: Path) -> dict[str, str]:
    """Variables Compose would interpolate with: the process environment and the env file it reads."""
    source = env_file if env_file is not None else project_dir / ".env"
    values = _proc.inherited_environ()  # what Compose inherits: never the withheld signing secrets
    if source.exists():  # not only a regular file: Compose would block on a FIFO named .env
        # Guarded (a FIFO or a huge file is one clear error); bytes Compose cannot use are its to report.
        for raw in inputs.read_bytes(source).decode("utf-8", errors="replace").splitlines():
            line = raw.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.removeprefix("export ").partition("=")
                values[k.strip()] = v.strip()
    return values


_VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)")


def _interpolate(text: str, env: Mapping[str, str]) -> str | None:
    """Compose's interpolation of one value (``${V}``, ``${V:-default}``, ``${V-default}``, ``${V:+alt}``,
    ``$V``, ``$$``); None when a ``${V:?message}`` is unset (Compose itself reports that)."""
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(0) == "$$":
            return "$"
        name, op, arg = (m.group(1), m.group(2), m.group(3) or "") if m.group(1) else (m.group(4), None, "")
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if (value is None if op == "-" else empty) else str(value)
        if op in (":?", "?"):
            if value is None if op == "?" else empty:
                missing = True
            return value or ""
        if op in (":+", "+"):
            return arg if not (value is None if op == "+" else empty) else ""
        return value or ""

    out = _VAR.sub(one, text)
    return None if missing else out


def _optional_env_files(
    path: Path, project_dir: Path, display: str, notices: list[str], out_dir: Path, env: Mapping[str, str]
) -> Path:
    """A copy of the file where service `env_file:` entries absent from this checkout are `required: false`.

    A `.env` or `.env.production` named by a service is usually not committed; Compose itself
    lints such a file as if it were empty when the entry says `required: false`. The path may be
    interpolated (`${ENV_FILE:-.env}`): it is resolved as Compose would. The copy is made from the
    YAML's nodes, so Compose's own tags (`!reset`, `!override`) and every other value stay as written.
    """
    try:
        root = yaml.compose(inputs.read_text(path, display), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return path  # Compose reports what is wrong with it
    # Every mapping with an `env_file:`: a service's, or a shared block (`x-common: &common`) merged into
    # services with `<<:`, which is one node wherever it is merged. An `include:` entry's env_file is not a
    # service's: left alone.
    owners: list[tuple[str, yaml.MappingNode]] = []
    seen: set[int] = set()
    services: list[tuple[str, yaml.Node]] = []
    blocks: list[tuple[str, yaml.Node]] = []
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if getattr(k, "value", None) == "services" and isinstance(v, yaml.MappingNode):
                services += [(f"service {name.value}", svc) for name, svc in v.value]
            elif getattr(k, "value", None) != "include":
                blocks.append((str(getattr(k, "value", "")), v))
    stack = services + blocks  # popped last first: a shared block is named by its own key
    while stack:
        where, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if _child(node, "env_file") is not None:
                owners.append((where, node))
            stack += [(where, v) for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(where, v) for v in node.value]
    changed = False
    for where, svc in owners:
        env_node = _child(svc, "env_file")
        if env_node is None:
            continue
        entries = env_node.value if isinstance(env_node, yaml.SequenceNode) else [env_node]
        new: list[yaml.Node] = []
        touched = False
        for e in entries:
            path_node = e if isinstance(e, yaml.ScalarNode) else _child(e, "path")
            required = _child(e, "required") if isinstance(e, yaml.MappingNode) else None
            raw = path_node.value if isinstance(path_node, yaml.ScalarNode) else None
            target = _interpolate(raw, env) if isinstance(raw, str) else None
            optional = isinstance(required, yaml.ScalarNode) and str(required.value).lower() == "false"
            if path_node is None or not target or optional or (project_dir / target).exists():
                new.append(e)
                continue
            touched = True
            shown = target if target == raw else f"{raw} ({target})"
            notices.append(f"{display}: {where}: env_file {shown} is absent; linted as if empty")
            new.append(
                yaml.MappingNode(
                    "tag:yaml.org,2002:map",
                    [
                        (yaml.ScalarNode("tag:yaml.org,2002:str", "path"), path_node),
                        (
                            yaml.ScalarNode("tag:yaml.org,2002:str", "required"),
                            yaml.ScalarNode("tag:yaml.org,2002:bool", "false"),
                        ),
                    ],
                )
            )
        if touched:
            changed = True
            svc.value = [
                (k, yaml.SequenceNode("tag:yaml.org,2002:seq", new) if k.value == "env_file" else v)
                for k, v in svc.value
            ]
    if not changed:
        return path
    copy = out_dir / path.name
    copy.write_text(yaml.serialize(root))
    return copy


def _without_comments(path: Path) -> str:
    # Compose ignores a `${NAME:?}` in a comment; so must the check for required variables.
    return "\n".join(
        line
        for line in inputs.read_bytes(path).decode("utf-8", errors="replace").splitlines()
        if not line.lstrip().startswith("#")
    )


def render(
    tools: Toolchain,
    files: list[Path],
    displays: list[str],
    *,
    project_dir: Path,
    env_file: Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> Rendered:
    """The files merged and interpolated by `docker compose config`; ``variables`` win over the environment's."""
    nodes = [_load_yaml_node(f, d) for f, d in zip(files, displays, strict=True)]
    what = " + ".join(displays)
    env = {**_env_values(env_file, project_dir), **(variables or {})}
    needed = sorted({m.group(1) for f in files for m in REQUIRED_VAR.finditer(_without_comments(f))} - set(env))
    if needed:
        raise InputError(
            f"{what}: needs variables that are not set: {', '.join(needed)}",
            hint="set them in the environment, in a .env beside the file, or pass --env-file",
        )
    notices: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pipelines-compose-") as tmp:
        used = [
            _optional_env_files(f, project_dir, d, notices, Path(tmp), env)
            for f, d in zip(files, displays, strict=True)
        ]
        # Every profile is linted: a service behind `profiles:` still runs when someone enables it.
        argv = [tools.docker, "compose", "--project-directory", str(project_dir), "--profile", "*"]
        for f in used:
            argv += ["-f", str(f)]
        if env_file is not None:
            argv += ["--env-file", str(env_file)]
        argv += ["config", "--format", "json"]
        r = _proc.run(argv, timeout=60, env=variables, check=False, quiet=True, what="docker compose config")
    if r.returncode != 0:
        raise InputError(
            f"{what}: docker compose rejects this configuration",
            seen=_proc.tail(r.stderr or r.stdout, 10),
            hint="`docker compose config` shows the same",
        )
    unset = sorted(set(UNSET_VAR.findall(r.stderr or "")))
    if unset:
        notices.append(f"{what}: variables not set, linted as empty: {', '.join(unset)}")
    try:
        config = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: docker compose config gave no JSON ({exc})") from None
    return Rendered(files, displays, config, nodes, notices, compose_model.parse(config, source=what))


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return v if isinstance(v, yaml.Node) else None
    return None


def _key_line(node: yaml.Node | None, key: str) -> int:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if getattr(k, "value", None) == key:
                return int(k.start_mark.line) + 1
    return 0


def locate(r: Rendered, service: str, key: str | None) -> tuple[str, int]:
    """Where to point: the last file that sets services.SERVICE.KEY, else where SERVICE is first defined."""
    if key:
        for node, display in reversed(list(zip(r.nodes, r.displays, strict=True))):
            svc = _child(_child(node, "services"), service)
            line = _key_line(svc, key)
            if line:
                return display, line
    for node, display in zip(r.nodes, r.displays, strict=True):
        line = _key_line(_child(node, "services"), service)
        if line:
            return display, line
    return r.displays[0], 0


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader that reads Compose's own tags: ``!override`` (and any other) as the plain value it carries,
    ``!reset`` as null, whatever it carries (Compose removes the key: nothing of it comes from the files)."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if suffix == "reset":
        return None
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ComposeLoader.add_multi_constructor("!", _untagged)


def _raw_services(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(inputs.read_text(path), Loader=ComposeLoader)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, ConfigError):
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) else {}


def source_environment(r: Rendered, service: str) -> dict[str, str | None]:
    """environment: as written (anchors merged, before interpolation), to tell `${VAR}` from a literal.

    None is a pass-through (`KEY:` or `- KEY`): the value comes from the shell or the env file.
    """
    out: dict[str, str | None] = {}
    for f in r.files:
        if f not in r.raw_services:
            r.raw_services[f] = _raw_services(f)
        svc = r.raw_services[f].get(service)
        env = svc.get("environment") if isinstance(svc, dict) else None
        if isinstance(env, dict):
            out.update({str(k): None if v is None else str(v) for k, v in env.items()})
        elif isinstance(env, list):
            for item in env:
                k, eq, v = str(item).partition("=")
                out[k] = v if eq else None
    return out
