"""The files init writes from a :class:`~pipelines.adopt.discover.Discovery`: text only, no disk access here."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from ..config.tomltext import GOLDEN_BASES, golden_table, inline, key, q
from .model import Discovery, Service, Undecided

__all__ = ["dockerignore", "key", "noxfile", "pipeline_toml", "q", "workflow"]

PIPELINE_TOML = "pipeline.toml"
NOXFILE = "noxfile.py"
WORKFLOW = ".github/workflows/pipelines.yml"

# Actions by full commit SHA (a tag can be moved to other code); the comment names the release it is.
CHECKOUT = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262"  # v4.4.0
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"  # v5.6.0

# What a build context rarely needs and often should not ship: (pattern, why).
IGNORE = (
    (".git", "history and credentials of the checkout"),
    (".github", "CI configuration"),
    (".venv", "a local virtual environment"),
    ("venv", "a local virtual environment"),
    ("**/__pycache__", "bytecode the image compiles itself"),
    ("**/*.pyc", "bytecode the image compiles itself"),
    (".env", "local secrets"),
    ("**/.env.*", "local secrets"),
    ("**/node_modules", "installed in the image when needed, never copied"),
    (".mypy_cache", "tool caches"),
    (".pytest_cache", "tool caches"),
    (".ruff_cache", "tool caches"),
    (".nox", "tool caches"),
    (".tox", "tool caches"),
    (".coverage", "tool caches"),
    ("htmlcov", "tool caches"),
    ("**/*.egg-info", "build metadata"),
    ("artifacts", "the pipeline's reports"),
)

# Ignored only where the context does not hold it yet: the pipeline creates it there later.
OWN_ONLY = ("artifacts",)

# Commented out: the discovered Dockerfiles name their own FROM; one that takes its bases as build args
# (ARG BUILDER_IMAGE, FROM ${BUILDER_IMAGE}) can build on the package's golden images instead.
GOLDEN_EXAMPLE = (
    "# ---- golden base images: Debian-based Python images the pipelines package ships ---------",
    "# Taken by name; their Debian base (golden debian-bookworm) comes along by itself. A Dockerfile",
    "# that starts FROM ${BUILDER_IMAGE} and ${RUNTIME_IMAGE} builds on them when its service says",
    f"# bases = {inline(GOLDEN_BASES)}.",
    *(f"# {line}" for name in GOLDEN_BASES.values() for line in golden_table(name)),
)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _todo(items: Iterable[Undecided]) -> list[str]:
    return [f"# TODO {u.where}: {_comment(u.what)}" for u in items]


def pipeline_toml(d: Discovery) -> str:
    by_section: dict[str, list[Undecided]] = {}
    for u in d.undecided:
        by_section.setdefault(u.section, []).append(u)
    sections = {f"services.{s.name}" for s in d.services} | {"environments"}
    if d.base_compose:
        sections.add("compose")
    top = [u for s, items in by_section.items() if s not in sections for u in items]

    namespace = re.sub(r"[^a-z0-9]+", "-", d.project.lower()).strip("-") or "app"
    out = [
        "# The pipeline config of this repository, written by `pipelines init` from what the repository holds.",
        "# Check it with `pipelines config`; then run `nox -s lint`. Every key is described in the",
        '# pipelines README, "Config reference". Lines "# TODO FILE:LINE" are what init could not decide.',
        *_todo(top),
        "",
        'default_env = "dev"',
        "",
        "[project]",
        f"name = {q(d.project)}",
        "# Reports of every stage, relative to this file (keep it out of git).",
        'artifacts = "artifacts"',
        "",
        "[registry]",
        "# Where built images are pushed and pulled from: a local registry until you name your own",
        '# (e.g. "ghcr.io" with namespace "OWNER/REPO").',
        'address = "127.0.0.1:5000"',
        f"namespace = {q(namespace)}",
        "",
        *GOLDEN_EXAMPLE,
        "",
        "# ---- services: one table per image this repository builds ---------------------",
        "# context is relative to this file, dockerfile to the context, target a build stage.",
        '# bases = { BUILD_ARG = "IMAGE" } would pin a FROM ${BUILD_ARG} to a golden base of [images.*];',
        "# none are declared yet, so each Dockerfile's own FROM is built as written.",
    ]
    for s in d.services:
        out.append("")
        out.append(f"[services.{key(s.name)}]")
        out.extend(_service_comments(s))
        out.append(f"context = {q(s.context)}")
        if s.dockerfile != "Dockerfile":
            out.append(f"dockerfile = {q(s.dockerfile)}")
        if s.target:
            out.append(f"target = {q(s.target)}")
        out.extend(_todo(by_section.get(f"services.{s.name}", ())))

    if d.base_compose:
        out += [
            "",
            "# ---- compose: the stack smoke and deploy run; each environment adds its overlays ----",
            "# pipelines runs the images it built: a service with build: should also name",
            "# image: ${REGISTRY}/${NAMESPACE}/NAME:${IMAGE_TAG} to run them.",
            "[compose]",
            f"files = [{', '.join(q(f) for f in d.base_compose)}]",
            *_todo(by_section.get("compose", ())),
        ]

    out += [
        "",
        "# ---- environments: dev builds locally; the others push to the registry -------------",
        *_todo(by_section.get("environments", ())),
    ]
    for env, overlays in d.environments.items():
        out += ["", f"[environments.{key(env)}]"]
        out.append(f"push = {'false' if env == 'dev' else 'true'}")
        out.append(f"tags = [{q(env)}]")
        if overlays:
            out.append(f"compose = [{', '.join(q(o) for o in overlays)}]")
        if env == "dev":
            out.append('profile = "dev"    # dev may relax runtime hardening (bind mounts, reload); others may not')

    out += [
        "",
        "# ---- lint: Hadolint and the hardening policy on every Dockerfile and Compose file -------",
        "[lint]",
        '# Fail on errors while adopting; "warning" once the first findings are fixed or waived.',
        'threshold = "error"',
        "",
    ]
    return "\n".join(out)


def _service_comments(s: Service) -> list[str]:
    lines = [f"# from {s.source}; Python dependencies: {s.deps}"]
    if s.base:
        lines.append(f"# final stage FROM {_comment(s.base)}" + (f"; ports {', '.join(s.ports)}" if s.ports else ""))
    if s.also:
        lines.append(f"# also run by Compose service(s) {', '.join(s.also)} (the same image)")
    return lines


def noxfile() -> str:
    return '''# /// script
# dependencies = ["nox", "hardened-pipelines[tools]"]
# ///
"""Nox sessions of the container pipeline (pipeline.toml): `nox -l` lists them.

`pipelines.nox.sessions()` registers one session per pipeline stage: lint, build, scan, verify, smoke,
sign, deploy, render, load, bench, doctor, and `ci` (lint to smoke, in order), each a call to
`pipelines STAGE` that reads pipeline.toml, so the command run on a laptop is the one CI runs. With nox
installed on its own (`pipx install nox`), the script block above makes nox install the package first.
Sessions of your own go below; `pipelines.nox.sessions(exclude=["lint"])` leaves a name free for one.
"""

from __future__ import annotations

import pipelines.nox

pipelines.nox.sessions()
'''


def workflow() -> str:
    # Untrusted input (branch names, PR titles) is never expanded into a run step: the steps use none.
    return f"""# The container pipeline on every push to main and every pull request: `nox -s lint` first.
# Once it passes, add the other stages as steps of their own (nox -s build, scan, verify, smoke):
# they need the Docker engine and the registry named in pipeline.toml.
name: pipelines

on:
  push:
    branches: [main]
  pull_request:

permissions:
  contents: read

jobs:
  lint:
    name: lint (nox -s lint)
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    steps:
      - uses: {CHECKOUT} # v4.4.0
        with:
          persist-credentials: false

      - uses: {SETUP_PYTHON} # v5.6.0
        with:
          python-version: "3.12"

      # Pin these with hashes (pip install --require-hashes -r FILE) once the pipeline runs green.
      - name: install nox and hardened-pipelines
        run: python -m pip install nox 'hardened-pipelines[tools]'

      - name: lint
        run: nox -s lint
"""


def _conflicts(pattern: str, sources: Iterable[str]) -> bool:
    """Whether ``pattern`` would leave out something a Dockerfile COPYs from the context."""
    bare = pattern.removeprefix("**/")
    for src in sources:
        s = src.removeprefix("./").lstrip("/")
        if s in ("", "."):
            continue
        parts = PurePosixPath(s).parts
        if any(fnmatch.fnmatch(p, bare) for p in parts) or fnmatch.fnmatch(s, pattern):
            return True
        # A glob source such as *.env or .env* could be what the pattern drops.
        if any(ch in s for ch in "*?[") and fnmatch.fnmatch(bare, PurePosixPath(s).name):
            return True
    return False


def dockerignore(copies: Iterable[str], existing: Iterable[str] = ()) -> tuple[str, list[str]]:
    """The text of a .dockerignore, and the patterns left out because a Dockerfile COPYs what they match.

    ``existing`` names what the context already holds of :data:`OWN_ONLY`: such a directory is the
    repository's own (a model, fixtures), not the pipeline's reports, and is left in the context.
    """
    sources = list(copies)
    held = set(existing)
    kept: list[str] = [
        "# What the build context leaves out: smaller, faster builds, and no local secrets in an image layer.",
        "# Nothing a Dockerfile COPYs from this context is listed (checked when it was written).",
    ]
    dropped: list[str] = []
    why_seen: set[str] = set()
    for pattern, why in IGNORE:
        if _conflicts(pattern, sources) or pattern in held:
            dropped.append(pattern)
            continue
        if why not in why_seen:
            kept.append(f"# {why}")
            why_seen.add(why)
        kept.append(pattern)
    return "\n".join(kept) + "\n", dropped
