"""How the builder installs the service's Python dependencies into /opt/venv: the way the repository declares them.

Requirement files (with --require-hashes when they carry hashes) are installed as they are; a lock file of uv,
Poetry or PDM is exported to a hashed requirements file by that tool (pinned here, in a throwaway venv of the
builder) and installed the same way; a project with only a pyproject.toml or setup.py is installed with pip.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

VENV = "/opt/venv"
# The lock tools, pinned: an export is only as reproducible as the tool that writes it.
UV = "uv==0.5.11"
POETRY = "poetry==2.0.1 poetry-plugin-export==1.9.0"
PDM = "pdm==2.22.1"

_REQ_FLAG = re.compile(r"(?:^|\s)(?:-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)")
_PIP = re.compile(r"\bpip3?(?:\.\d+)?\s+install\b|\bpython[0-9.]*\s+-m\s+pip\s+install\b")
_SELF = re.compile(r"(?:^|\s)(?:-e\s+|--editable\s+|--editable=)?\.(?:\[[\w,-]+\])?(?:\s|$|&)")


@dataclass(frozen=True)
class Install:
    style: str  # what the report says: "requirements.txt (hashes)", "uv.lock", ...
    files: tuple[str, ...]  # copied from the context before installing (relative to the context)
    run: str  # the RUN's shell command, after the mounts
    project: bool  # the project itself is installed once the application is copied


def pip_command(args: str) -> str:
    return f"python3 -m pip --python {VENV}/bin/python install --no-compile {args}"


def _includes(context: Path, rel: str, seen: set[str]) -> None:
    """``rel`` and every requirement file it includes with -r/-c, relative to the context."""
    if rel in seen or len(seen) > 50:
        return
    path = context / rel
    if not path.is_file():
        return
    seen.add(rel)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        m = _REQ_FLAG.search(line.split("#")[0])
        if m and "://" not in m.group(1):
            _includes(context, (PurePosixPath(rel).parent / m.group(1)).as_posix().removeprefix("./"), seen)


def _named_requirements(runs: Sequence[str], context: Path, workdirs: Sequence[str]) -> list[str]:
    """The requirement files the original's pip installs name, as paths of the context."""
    out: list[str] = []
    for run in runs:
        if not _PIP.search(run):
            continue
        for m in re.finditer(r"(?:^|\s)(?:-r|--requirement)(?:\s+|=)(\S+)", run):
            name = m.group(1).strip("'\"")
            for wd in ("", *workdirs):
                rel = name.removeprefix(wd.rstrip("/") + "/") if wd and name.startswith(wd) else name
                rel = rel.lstrip("/").removeprefix("./")
                if rel and (context / rel).is_file():
                    out.append(rel)
                    break
    return list(dict.fromkeys(out))


def _has_hashes(context: Path, files: Sequence[str]) -> bool:
    for rel in files:
        try:
            if "--hash=" in (context / rel).read_text(encoding="utf-8", errors="replace"):
                return True
        except OSError:
            continue
    return False


def _buildable(context: Path) -> bool:
    """Whether the context is an installable project (a build system, or setup.py)."""
    if (context / "setup.py").is_file():
        return True
    try:
        data = tomllib.loads((context / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data.get("build-system"), dict) or isinstance(data.get("tool", {}).get("poetry"), dict)


def _installs_self(runs: Sequence[str]) -> bool:
    for run in runs:
        for part in re.split(r"&&|;|\|\|", run):
            if _PIP.search(part) and _SELF.search(part[_PIP.search(part).end() :]):  # type: ignore[union-attr]
                return True
            if re.search(r"\buv\s+sync\b", part) and "--no-install-project" not in part:
                return True
            if re.search(r"\bpoetry\s+install\b", part) and "--no-root" not in part:
                return True
            if re.search(r"\bpdm\s+(?:install|sync)\b", part) and "--no-self" not in part:
                return True
    return False


def _exported(tool: str, export: str, files: tuple[str, ...], style: str, project: bool) -> Install:
    run = (
        f"python3 -m venv /opt/tools && /opt/tools/bin/pip install --no-compile {tool} \\\n"
        f" && {export} \\\n"
        f" && python3 -m venv --without-pip {VENV} \\\n"
        f" && {pip_command('--require-hashes --no-deps -r /tmp/requirements.txt')}"
    )
    return Install(style, files, run, project)


def plan(context: Path, runs: Sequence[str], workdirs: Sequence[str]) -> Install:
    """The dependency install for a build context, from its files and the original's RUN commands."""
    named = _named_requirements(runs, context, workdirs)
    self_install = _installs_self(runs) and _buildable(context)
    venv = f"python3 -m venv --without-pip {VENV}"
    if named:
        files: set[str] = set()
        for rel in named:
            _includes(context, rel, files)
        hashes = _has_hashes(context, sorted(files))
        flags = "--require-hashes --no-deps " if hashes else ""
        reqs = " ".join(f"-r {shlex.quote(r)}" for r in named)
        style = ", ".join(named) + (" (hashes)" if hashes else "")
        return Install(style, tuple(sorted(files)), f"{venv} \\\n && {pip_command(flags + reqs)}", self_install)
    if (context / "uv.lock").is_file() and (context / "pyproject.toml").is_file():
        # A workspace's member: export that package's dependencies, as the original's `uv sync --package` did.
        package = next((m.group(1) for r in runs if (m := re.search(r"\buv\s+sync\b.*--package[= ](\S+)", r))), "")
        export = (
            "/opt/tools/bin/uv export --frozen --no-dev --no-emit-project --no-emit-workspace "
            + (f"--package {shlex.quote(package)} " if package else "")
            + "--format requirements-txt -o /tmp/requirements.txt"
        )
        return _exported(UV, export, ("pyproject.toml", "uv.lock"), "uv.lock (uv export, hashes)", self_install)
    if (context / "poetry.lock").is_file() and (context / "pyproject.toml").is_file():
        export = "/opt/tools/bin/poetry export --only main -f requirements.txt -o /tmp/requirements.txt"
        return _exported(
            POETRY,
            export,
            ("pyproject.toml", "poetry.lock"),
            "poetry.lock (poetry export, hashes)",
            self_install,
        )
    if (context / "pdm.lock").is_file() and (context / "pyproject.toml").is_file():
        export = "/opt/tools/bin/pdm export --prod -f requirements -o /tmp/requirements.txt"
        return _exported(PDM, export, ("pyproject.toml", "pdm.lock"), "pdm.lock (pdm export, hashes)", self_install)
    found = [
        n
        for n in ("requirements.txt", "requirements/production.txt", "requirements/prod.txt", "requirements/base.txt")
        if (context / n).is_file()
    ]
    if found:
        return plan(context, [f"pip install -r {found[0]}", *runs], workdirs)
    if _buildable(context):
        return Install("pyproject.toml/setup.py (pip install ., not pinned)", (), venv, True)
    return Install("none found: no dependencies installed", (), venv, False)


# Marks a builder RUN that installs into the venv: it gets the pip cache and the CA bundle mounts.
PIP_MARK = f"--python {VENV}/bin/python install"


def pip_line(args: str) -> str:
    """A RUN installing ``args`` into the venv."""
    return f"RUN {pip_command(args)}"


def mounted(run: str) -> list[str]:
    """A RUN (or a bare command) with the pip cache and the CA bundle secret mounted, as Dockerfile lines."""
    command = run.removeprefix("RUN ").strip()
    body = command
    return [
        "RUN --mount=type=cache,target=/root/.cache/pip \\",
        "    --mount=type=secret,id=ca-bundle \\",
        "    if [ -f /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \\",
        f" && {body}",
    ]
