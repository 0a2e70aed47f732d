"""One Dockerfile on an upstream Python image -> the hardened one: a builder on BUILDER_IMAGE making /opt/venv,
a runtime on RUNTIME_IMAGE with only the venv and the application, tini first, no shell needed."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import deps, health, pyversion, syslibs
from .command import TINI, Command, Unconvertible, convert
from .parse import Dockerfile, Instruction, Stage, chain, parse

BUILDER = "builder"
RUNTIME_USER = "65532:65532"
PATH = f"{deps.VENV}/bin:/usr/local/bin:/usr/bin"
_PYTHON = re.compile(
    r"^(?:(?:docker\.io/)?(?:library/)?(?:python|pypy)(?::|@|$)|ghcr\.io/astral-sh/uv:[\w.-]*python3)", re.IGNORECASE
)
# Destinations too wide to copy whole from the builder: what was copied there is taken file by file.
_WIDE = frozenset({"/", "/usr", "/usr/local", "/usr/local/bin", "/usr/bin", "/bin", "/etc", "/root"})
_APT = re.compile(
    r"^\s*(?:\w+=\S*\s+)*(?:apt-get|apt|apk|aptitude|dpkg|rm\s+-[rf]+\s+/var/(?:lib/apt|cache/apk)|echo\s.*>\s*/etc/apt|"
    r"(?:curl|wget)\s.*(?:apt|gpg|key)|gpg\b|mkdir\s+-p\s+/etc/apt)"
)
_USERS = re.compile(r"^\s*(?:useradd|adduser|groupadd|addgroup|usermod|chown|chmod|chgrp|su\b|gosu\b)")
_DEPS = re.compile(
    r"^\s*(?:\w+=\S*\s+)*(?:(?:python[0-9.]*\s+-m\s+)?pip3?(?:\.\d+)?\s+(?:install|wheel|download)\b|python[0-9.]*\s+-m\s+venv\b|"
    r"virtualenv\b|uv\s+(?:sync|pip\s+install|export|venv)\b|poetry\s+(?:install|export|config)\b|pdm\s+(?:install|sync|export|config)\b|"
    r"pipenv\s+install\b|(?:curl|wget)\s.*(?:install\.python-poetry|astral\.sh|pdm)|pip3?\s+install\s+(?:-U\s+|--upgrade\s+)?(?:pip|uv|poetry|pdm|setuptools|wheel|pipenv)\b)"
)
_BARE_PIP = re.compile(
    r"^\s*(?:\w+=\S*\s+)*(?:python[0-9.]*\s+-m\s+)?(?:uv\s+)?pip3?(?:\.\d+)?\s+install\s+(?P<args>.*)$"
)
_TOOLS_ONLY = frozenset({"pip", "setuptools", "wheel", "uv", "poetry", "pdm", "pipenv", "poetry-plugin-export"})


@dataclass
class Conversion:
    """The new Dockerfile and what changed, for the report."""

    text: str
    base: str  # the upstream image it started from
    deps: str
    probe: str
    command: str
    runtime_packages: tuple[str, ...] = ()
    unknown_packages: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    job: str = ""  # a setup command to run as a one-shot Compose service
    python: str = ""  # the golden Python the project's requires-python takes ("" for the default, 3.11)


def root_image(text: str, display: str, target: str | None) -> str:
    """The image the service's final stage starts from, build args resolved where the Dockerfile sets them."""
    df = parse(text, display)
    stages = chain(df, target)
    return _resolve(stages[0].base, _arg_defaults(df.preamble)) if stages else ""


def upstream_python(base: str) -> bool:
    return bool(_PYTHON.match(base))


def _resolve(base: str, args: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return args.get(name, m.group(0))

    return re.sub(r"\$\{([A-Za-z_]\w*)(?::?-[^}]*)?\}|\$([A-Za-z_]\w*)", sub, base)


def _arg_defaults(instrs: Sequence[Instruction]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ins in instrs:
        if ins.keyword == "ARG":
            for word in ins.operands.split():
                name, eq, value = word.partition("=")
                if eq:
                    out[name] = value.strip("'\"")
    return out


def _env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    rest = ins.operands
    try:
        words = shlex.split(rest, posix=True)
    except ValueError:
        return []
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]


def _abs(path: str, workdir: str) -> str:
    if path.startswith("/"):
        return str(PurePosixPath(path))
    return str(PurePosixPath(workdir or "/") / path).replace("/./", "/").rstrip("/") or "/"


def _copy_parts(ins: Instruction) -> tuple[list[str], str, list[str]]:
    """(sources, destination, flags) of a COPY/ADD."""
    flags = [w for w in ins.args.split() if w.startswith("--")]
    form = ins.exec_form()
    words = form if form is not None else ins.operands.split()
    if len(words) < 2:
        raise Unconvertible(ins.line, f"{ins.keyword} names no destination", "fix the instruction")
    return words[:-1], words[-1], flags


def _split(run: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s&&\s|\s;\s|;$", run) if p.strip()]


def _from_stage(flags: dict[str, str]) -> str:
    return flags.get("from", "")


@dataclass
class _Walk:
    workdir: str = ""
    builder: list[str] = field(default_factory=list)  # replayed in the builder, in order
    runtime_env: list[str] = field(default_factory=list)  # ENV/LABEL/ARG kept in the runtime
    args: list[str] = field(default_factory=list)  # ARG lines
    dests: list[str] = field(default_factory=list)  # absolute paths the application was copied to
    sources: list[str] = field(default_factory=list)  # what was copied from the context
    foreign: list[str] = field(default_factory=list)  # COPY --from a kept stage or image, for the runtime
    packages: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # every RUN's command, for the dependency plan
    workdirs: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # VOLUME, STOPSIGNAL
    env: dict[str, str] = field(default_factory=dict)
    healthcheck: tuple[str, int] = ("", 0)
    entrypoint: Instruction | None = None
    cmd: Instruction | None = None
    self_dir: str = ""  # where the build context's root was copied (for installing the project)
    notes: list[str] = field(default_factory=list)


def _walk(stages: Sequence[Stage], keep: set[str], dropped: set[str], df: Dockerfile) -> _Walk:
    w = _Walk()
    for stage in stages:
        for ins in stage.instructions:
            k = ins.keyword
            if k == "ARG":
                w.args.append(ins.text.strip())
                w.env.update(_arg_defaults([ins]))
            elif k == "ENV":
                pairs = _env_pairs(ins)
                for name, value in pairs:
                    w.env[name] = value
                kept = [
                    (n, v)
                    for n, v in pairs
                    if n not in ("PATH", "VIRTUAL_ENV")
                    and not n.startswith(("PIP_", "POETRY_", "UV_", "PDM_", "PIPENV_"))
                ]
                if len(kept) < len(pairs):
                    w.notes.append(
                        f"line {ins.line}: ENV PATH and installer settings are the builder's concern; PATH is {PATH}"
                    )
                if kept:
                    line = "ENV " + " ".join(f"{n}={json.dumps(v)}" for n, v in kept)
                    w.runtime_env.append(line)
                    w.builder.append(line)
            elif k in ("LABEL",):
                w.runtime_env.append(ins.text.strip())
            elif k == "WORKDIR":
                w.workdir = _abs(ins.operands.strip("'\""), w.workdir)
                w.workdirs.append(w.workdir)
                w.builder.append(f"WORKDIR {w.workdir}")
            elif k in ("COPY", "ADD"):
                sources, dest, flags = _copy_parts(ins)
                origin = _from_stage(ins.flags)
                target = _abs(dest, w.workdir)
                if origin:
                    low = origin.lower()
                    if low in dropped:
                        w.notes.append(
                            f"line {ins.line}: COPY --from={origin} dropped: "
                            "the builder's /opt/venv replaces what that stage installed"
                        )
                        continue
                    if "astral-sh/uv" in low or low.startswith("uv"):
                        continue
                    moved = [f for f in flags if not f.startswith(("--chown", "--chmod"))]
                    into = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
                    w.foreign.append(
                        " ".join(
                            ["COPY", *moved, "--chown=0:0", *sources, target + ("/" if into and target != "/" else "")]
                        )
                    )
                    continue
                walk_sources = [src.lstrip("./").lstrip("/") or "." for src in sources]
                w.sources.extend(walk_sources)
                clean = [f for f in flags if not f.startswith(("--chown", "--chmod"))]
                into_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
                shown_sources = [json.dumps(s) if " " in s else s for s in sources]
                w.builder.append(
                    " ".join([k, *clean, *shown_sources, target + ("/" if into_dir and target != "/" else "")])
                )
                if target in _WIDE:
                    for s in sources:
                        name = PurePosixPath(s.rstrip("/")).name
                        if name in ("", "."):
                            raise Unconvertible(
                                ins.line,
                                f"{k} copies the whole context to {target}",
                                f"copy the application to a directory of its own: WORKDIR /app, then {k} . .",
                            )
                        w.dests.append(str(PurePosixPath(target) / name))
                else:
                    w.dests.append(target)
                    if any(s in (".", "./") for s in sources):
                        w.self_dir = w.self_dir or target
            elif k == "RUN":
                command = ins.operands
                form = ins.exec_form()
                if form is not None:
                    command = shlex.join(form)
                w.runs.append(command)
                kept_parts: list[str] = []
                for part in _split(command):
                    if _APT.match(part):
                        w.packages.extend(syslibs.installed(part))
                        continue
                    if _USERS.match(part):
                        continue
                    if _DEPS.match(part) or _BARE_PIP.match(part):
                        # What the requirements do not name is installed by name, without the original's flags.
                        extra = _extra_packages(part)
                        if extra:
                            kept_parts.append(deps.pip_command(shlex.join(extra)))
                        continue
                    kept_parts.append(part)
                if kept_parts:
                    w.builder.append("RUN " + " \\\n && ".join(kept_parts))
                    w.notes.append(
                        f"line {ins.line}: RUN kept in the builder; "
                        "only what it writes under the application's directories reaches the runtime"
                    )
            elif k == "USER":
                if ins.operands not in ("root", "0", "0:0"):
                    w.notes.append(
                        f"line {ins.line}: USER {ins.operands} replaced by {RUNTIME_USER} (the runtime's non-root user)"
                    )
            elif k == "EXPOSE":
                w.expose.extend(ins.operands.split())
            elif k == "HEALTHCHECK":
                w.healthcheck = (ins.operands, ins.line)
            elif k == "ENTRYPOINT":
                w.entrypoint = ins
                w.cmd = None  # an ENTRYPOINT resets the CMD inherited so far
            elif k == "CMD":
                w.cmd = ins
            elif k in ("VOLUME", "STOPSIGNAL"):
                w.other.append(ins.text.strip())
            elif k == "ONBUILD":
                raise Unconvertible(
                    ins.line,
                    "ONBUILD runs in images built FROM this one",
                    "remove ONBUILD, or run its instruction here",
                )
            # SHELL and MAINTAINER have no place in a runtime without a shell.
    return w


_DEP_FILE = re.compile(
    r"(?:^|/)(?:requirements[\w.-]*|constraints[\w.-]*|pyproject\.toml|setup\.(?:py|cfg)|[\w.-]+\.lock|Pipfile|README[\w.]*)/?$"
)


# Shell steps that make nothing the final stage could miss.
_TRIVIAL = re.compile(r"^\s*(?:true|:|set\s|export\s|echo\s|cd\s|mkdir\s|rm\s|ls\b|find\s.*-delete)")
_VALUE_FLAGS = frozenset(
    {
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-w",
        "--wheel-dir",
        "-f",
        "--find-links",
        "-i",
        "--index-url",
        "--extra-index-url",
        "--prefix",
        "--target",
        "-t",
        "--root",
        "--python",
        "--platform",
        "--cache-dir",
    }
)


def _extra_packages(part: str) -> list[str]:
    """The packages a pip install/wheel names beyond its requirement files and the project itself."""
    m = re.search(r"\bpip3?(?:\.\d+)?\s+(?:install|wheel|download)\b(.*)", part)
    if not m:
        return []
    try:
        words = shlex.split(m.group(1))
    except ValueError:
        words = m.group(1).split()
    out: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in _VALUE_FLAGS:
            skip = True
        elif not w.startswith("-") and w not in (".", "./") and "$" not in w:
            out.append(w)
    return [
        w
        for w in out
        if re.split(r"[<>=!~\[]", w)[0].lower() not in _TOOLS_ONLY
        and not w.startswith(("/", "./", "../"))
        and "*" not in w
        and not w.endswith(".whl")
    ]


def _only_dependencies(stage: Stage, display: str) -> None:
    """Refuse a Python stage the final one copies from when it holds more than the dependency install."""
    for ins in stage.instructions:
        what = ""
        if ins.keyword in ("COPY", "ADD") and not _from_stage(ins.flags):
            sources, _, _ = _copy_parts(ins)
            if not all(_DEP_FILE.search(src) for src in sources):
                what = f"{ins.keyword} {' '.join(sources)}"
        elif ins.keyword == "RUN":
            for part in _split(ins.operands):
                if _APT.match(part) or _USERS.match(part) or _TRIVIAL.match(part):
                    continue
                if _DEPS.match(part) and not _extra_packages(part):
                    continue
                what = part
                break
        elif ins.keyword in ("CMD", "ENTRYPOINT", "HEALTHCHECK", "USER", "EXPOSE", "VOLUME", "ONBUILD"):
            what = ins.keyword
        if what:
            raise Unconvertible(
                ins.line,
                f"stage {stage.label} (FROM {stage.base}, line {stage.line}) does more than install "
                f"dependencies: {what}",
                "move that work into the final stage (the builder stage replaces this one and installs only the "
                "declared dependencies), or name those packages in the requirements, then run harden again",
            )


def _deps_copy(files: Sequence[str]) -> list[str]:
    by_dir: dict[str, list[str]] = {}
    for f in files:
        by_dir.setdefault(PurePosixPath(f).parent.as_posix(), []).append(f)
    out = []
    for d, names in by_dir.items():
        out.append(f"COPY {' '.join(names)} {'./' if d == '.' else './' + d + '/'}")
    return out


def _nested(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for p in sorted(dict.fromkeys(paths), key=len):
        if p == deps.VENV or any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            continue
        out.append(p)
    return sorted(out, key=paths.index)


def harden(
    text: str, display: str, *, context: Path, root: Path, target: str | None, compose_ports: Sequence[str] = ()
) -> Conversion | None:
    """The hardened Dockerfile (None: the service does not start FROM an upstream Python image)."""
    df = parse(text, display)
    if not df.stages:
        return None
    pre_args = _arg_defaults(df.preamble)
    stages = chain(df, target)
    base = _resolve(stages[0].base, pre_args)
    if not upstream_python(base):
        return None
    in_chain = {s.index for s in stages}
    python_stages = {s.index for s in df.stages if upstream_python(_resolve(s.base, pre_args))}
    names = {s.name.lower(): s for s in df.stages if s.name}
    # Every stage derived from a Python stage is a Python stage too.
    for s in df.stages:
        if s.base.lower() in names and names[s.base.lower()].index in python_stages:
            python_stages.add(s.index)
    dropped = {s.name.lower() for s in df.stages if s.index in python_stages and s.index not in in_chain and s.name}
    notes: list[str] = []
    kept_stages = [s for s in df.stages if s.index not in python_stages]
    for s in df.stages:
        if s.index in python_stages and s.index not in in_chain:
            notes.append(
                f"stage {s.label} (line {s.line}, FROM {s.base}) dropped: the builder stage installs the dependencies"
            )
    for s in kept_stages:
        notes.append(f"stage {s.label} (line {s.line}) kept as it is: it still needs the upstream image {s.base}")
    walk = _walk(stages, {s.name.lower() for s in kept_stages}, dropped, df)
    # What a dropped Python stage installed with apt is what the builder needs too; one that did more than
    # install dependencies cannot be replaced by the builder stage.
    referenced = {
        (ins.flags.get("from") or "").lower() for st in stages for ins in st.instructions if ins.keyword == "COPY"
    } | {
        m.group(1).lower()
        for st in stages
        for ins in st.instructions
        if ins.keyword == "RUN"
        for m in re.finditer(r"--mount=\S*\bfrom=([\w.-]+)", ins.args)
    }
    for s in df.stages:
        if s.name.lower() in dropped and s.name.lower() in referenced:
            _only_dependencies(s, display)
            extra = _walk([s], set(), dropped, df)
            walk.packages.extend(extra.packages)
            walk.runs.extend(extra.runs)
    notes.extend(walk.notes)
    try:
        cmd: Command = convert(walk.entrypoint, walk.cmd, walk.env)
    except Unconvertible:
        raise
    candidates = [
        context / "pyproject.toml",
        *(context / src for src in walk.sources if src.endswith("pyproject.toml")),
    ]
    found = pyversion.declared(p for p in candidates if p.is_file())
    python = ""
    if found is not None and not pyversion.allows(found[0]):
        spec, where = found
        rel = where.relative_to(root).as_posix() if where.is_relative_to(root) else where.as_posix()
        chosen = pyversion.choose(spec)
        if chosen is None:
            have = ", ".join(pyversion.golden_pythons())
            raise Unconvertible(
                stages[0].line,
                f"{rel} requires Python {spec}; the golden images carry Python {have}",
                f"make the project run on one of them (requires-python and the lock), or keep {base}",
            )
        python = chosen
        notes.append(f"{rel} requires Python {spec}: the golden images of Python {chosen} are used")
    plan = deps.plan(context, walk.runs, walk.workdirs)
    build_pkgs = syslibs.builder_packages(walk.packages)
    runtime_pkgs, unknown = syslibs.runtime_packages(walk.packages)
    argv = [*cmd.entrypoint, *cmd.cmd]
    probe = health.choose(
        original=walk.healthcheck[0],
        original_line=walk.healthcheck[1],
        dockerfile=display,
        expose=walk.expose,
        argv=argv,
        compose_ports=compose_ports,
        context=context,
        root=root,
    )
    if plan.project and not walk.self_dir:
        notes.append(
            "the project is installable, but no COPY puts the whole context in the image: "
            "only its dependencies are installed"
        )

    out: list[str] = [*df.directives]
    out += [
        f"# Hardened by `pipelines harden` from the original on {base}: the builder (golden python-builder) makes",
        f"# the virtualenv {deps.VENV}; the runtime (golden python-runtime, distroless, no shell) holds only the venv",
        "# and the application, owned by root, and runs as 65532 with tini as PID 1.",
        "ARG BUILDER_IMAGE",
        "ARG RUNTIME_IMAGE",
    ]
    out += [
        i.text.strip()
        for i in df.preamble
        if i.keyword == "ARG" and i.operands.split("=")[0] not in ("BUILDER_IMAGE", "RUNTIME_IMAGE")
    ]
    for s in kept_stages:
        out += ["", s.text]
        out += [i.text for i in s.instructions]
    builder = BUILDER if BUILDER not in {s.name.lower() for s in kept_stages} else "venv-builder"
    out += ["", f"FROM ${{BUILDER_IMAGE}} AS {builder}", *walk.args]
    if build_pkgs:
        out += [
            "# Headers to compile wheels against; the runtime needs only the shared libraries (see the report).",
            "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\",
            "    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\",
            f"    apt-get update && apt-get install -y --no-install-recommends {' '.join(build_pkgs)}",
        ]
    out += ["WORKDIR /build", *_deps_copy(plan.files)]
    out += [
        "# The CA bundle is a build secret (for TLS-intercepting proxies): mounted for this RUN only, not in a layer.",
        *deps.mounted(plan.run),
        f"ENV PATH={deps.VENV}/bin:$PATH",
    ]
    for line in walk.builder:
        out += deps.mounted(line) if deps.PIP_MARK in line else [line]
    if plan.project and walk.self_dir:
        out += deps.mounted(deps.pip_line(f"--no-deps {walk.self_dir}"))
    runtime_name = target or "runtime"
    out += ["", f"FROM ${{RUNTIME_IMAGE}} AS {runtime_name}", *walk.args]
    out += ["# Code and dependencies belong to root: the runtime user can read them, never change them."]
    out.append(f"COPY --from={builder} --chown=0:0 {deps.VENV} {deps.VENV}")
    for d in _nested(walk.dests):
        out.append(f"COPY --from={builder} --chown=0:0 {d} {d}")
    out += walk.foreign
    out += walk.runtime_env
    out.append(f"ENV PATH={PATH} VIRTUAL_ENV={deps.VENV}")
    if walk.workdir:
        out.append(f"WORKDIR {walk.workdir}")
    out.append(f"USER {RUNTIME_USER}")
    if walk.expose:
        out.append("EXPOSE " + " ".join(dict.fromkeys(walk.expose)))
    out += walk.other
    if probe.kind == "none":
        out.append("# No HEALTHCHECK: no port is exposed or passed to the command (a worker).")
    else:
        out.append(probe.instruction())
    out.append("# tini is PID 1: it forwards signals to the command and reaps children.")
    out.append(f"ENTRYPOINT {json.dumps([*TINI, *cmd.entrypoint])}")
    if cmd.cmd:
        out.append(f"CMD {json.dumps(list(cmd.cmd))}")
    notes.extend(cmd.notes)
    if runtime_pkgs:
        notes.append(
            f"runtime libraries {', '.join(runtime_pkgs)} are not in python-runtime (no apt there). If a wheel links "
            "them (a manylinux wheel bundles its own): copy the package's golden/python-runtime/ directory into "
            "the repository, add them to its packages.txt, declare it as [images.NAME] with that context and "
            'role = "runtime", and set the service\'s bases to RUNTIME_IMAGE = "NAME"'
        )
    if unknown:
        notes.append(
            f"system packages {', '.join(unknown)} installed by the original are not in the runtime: "
            "check whether the service runs them"
        )
    py = re.search(r":(3\.\d+)", base)
    used = python or "3.11"
    if py and py.group(1) != used:
        notes.append(
            f"Python {py.group(1)} ({base}) becomes Debian's {used} of the golden images: "
            "check requires-python and the lock"
        )
    return Conversion(
        text="\n".join(out).rstrip() + "\n",
        base=base,
        deps=plan.style,
        probe=probe.describe(),
        command=json.dumps([*TINI, *argv]),
        runtime_packages=tuple(runtime_pkgs),
        unknown_packages=tuple(unknown),
        notes=list(dict.fromkeys(notes)),
        job=shlex.join(cmd.job) if cmd.job else "",
        python=python,
    )
