"""`pipelines init [DIR]`: adopt a repository the pipeline has never seen.

Discovery reads the repository's Dockerfiles and Compose files (no engine, no network); init then writes a
commented ``pipeline.toml``, a ``noxfile.py``, a GitHub workflow and a ``.dockerignore`` per build context
that lacks one. It never overwrites a file unless told to (``force``), and never a ``.dockerignore``: what a
build context ships is the repository's decision. What it cannot decide is written into ``pipeline.toml`` as
a comment beside the section it concerns and listed in the result, each naming the file and line to edit.

The command is ``run(Options(directory=DIR, force=..., dry_run=...))``, rendered like any stage's result; an
unusable input is an :class:`~pipelines.errors.InputError` (exit 2). It needs no config: it writes one.

The package, by what each module holds: :mod:`.model` (what discovery finds), :mod:`.tree` (walking and
reading the repository), :mod:`.dockerfiles`, :mod:`.compose` (Compose files, overlays, services),
:mod:`.project` (the Python project: name, dependency style, Python bases), :mod:`.services` (the images to
build), :mod:`.discover` (the whole repository and what stays open), :mod:`.write` (the files init writes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import inputs, refs
from ..errors import ConfigError, InputError
from ..result import Result, Table
from . import write
from .discover import discover
from .model import Discovery

__all__ = ["Options", "run"]

NEXT_COMMAND = "nox -s lint"


@dataclass(frozen=True)
class Options:
    directory: Path
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class _Planned:
    rel: str
    text: str
    what: str


def run(options: Options) -> Result:
    """Discover, then write what is missing; any unusable input is one InputError (exit 2)."""
    root = options.directory
    if not root.is_dir():
        raise InputError(f"{root}: is not a directory", hint="pass the repository to adopt: pipelines init DIR")
    root = root.resolve()
    try:
        found = discover(root)
    except ConfigError as exc:
        raise InputError(exc.what, hint=exc.hint) from None
    if not found.services:
        raise InputError(
            f"{root}: found no Dockerfile and no Compose service with build:",
            hint="init adopts a repository that builds at least one image",
        )
    planned, kept = _plan(found)
    _refuse_existing(root, planned, force=options.force)
    written: list[Path] = []
    if not options.dry_run:
        for p in planned:
            path = root / p.rel
            try:
                inputs.make_dir(path.parent, p.what)
                inputs.write_text(path, p.text, p.what)
            except ConfigError as exc:
                raise InputError(exc.what, hint=exc.hint) from None
            written.append(path)
    return _result(found, planned, kept, written, dry_run=options.dry_run)


def _plan(d: Discovery) -> tuple[list[_Planned], list[tuple[str, str]]]:
    """What to write, and (file, why) of what is left as it is."""
    planned = [
        _Planned(write.PIPELINE_TOML, write.pipeline_toml(d), "pipeline config"),
        _Planned(write.NOXFILE, write.noxfile(), "Nox sessions"),
        _Planned(write.WORKFLOW, write.workflow(), "GitHub workflow"),
    ]
    kept: list[tuple[str, str]] = []
    copies: dict[str, list[str]] = {}
    dockerfiles = {df.path: df for df in d.dockerfiles}
    for s in d.services:
        df_path = os.path.normpath(f"{s.context}/{s.dockerfile}")
        df = dockerfiles.get(df_path)
        copies.setdefault(s.context, []).extend(df.copies if df else ())
    for context, sources in copies.items():
        rel = ".dockerignore" if context == "." else f"{context}/.dockerignore"
        ctx = d.root / context
        own = [
            s.dockerfile for s in d.services if s.context == context and (ctx / f"{s.dockerfile}.dockerignore").exists()
        ]
        if (d.root / rel).exists() or (d.root / rel).is_symlink():
            kept.append((rel, "exists; what the context ships is left as it is"))
            continue
        if own:
            kept.append((rel, f"{own[0]}.dockerignore decides for that Dockerfile"))
        text, dropped = write.dockerignore(sources, [n for n in write.OWN_ONLY if (ctx / n).exists()])
        what = "build-context ignore file"
        if dropped:
            what += f" (not ignored because a Dockerfile COPYs them: {', '.join(dropped)})"
        planned.append(_Planned(rel, text, what))
    return planned, kept


def _refuse_existing(root: Path, planned: list[_Planned], *, force: bool) -> None:
    for p in planned:
        path = root / p.rel
        # A symlink is refused even with force: writing through it could land outside the repository.
        if path.is_symlink() or refs.inside(root, p.rel) is None:
            raise InputError(f"{path}: is a symbolic link or leads outside {root}; init does not write through it")
        if path.exists() and not force:
            raise InputError(
                f"{path}: exists; init does not overwrite it",
                hint="move it aside, or pass --force to replace the files init writes",
            )


def _result(
    d: Discovery, planned: list[_Planned], kept: list[tuple[str, str]], written: list[Path], *, dry_run: bool
) -> Result:
    compose_names = list(dict.fromkeys(cs.name for cs in d.compose_services))
    built_compose = {cs.name for cs in d.compose_services if cs.role == "built"}
    from_compose = {s.name for s in d.services if ":" in s.source}
    dockerfile_only = [s for s in d.services if s.name not in from_compose]
    total = len(compose_names) + len(dockerfile_only)
    built = len(built_compose) + len(dockerfile_only)
    n_compose = len(d.compose)
    verb = "would write" if dry_run else "wrote"
    headline = (
        f"found {total} service{'s' * (total != 1)} ({built} built), "
        f"{n_compose} Compose file{'s' * (n_compose != 1)}; {verb} {len(planned)} file{'s' * (len(planned) != 1)}"
    )
    found_rows: list[tuple[str, ...]] = []
    for s in d.services:
        found_rows.append(
            (
                s.name,
                "built" + (f" (also {', '.join(s.also)})" if s.also else ""),
                s.source,
                s.context,
                s.dockerfile,
                s.target or "",
                ", ".join(s.ports),
                s.deps,
                s.base,
            )
        )
    for cs in d.compose_services:
        if cs.role != "built" and cs.name not in {r[0] for r in found_rows}:
            found_rows.append(
                (
                    cs.name,
                    cs.datastore or "image",
                    f"{cs.file}:{cs.line}",
                    "",
                    "",
                    "",
                    ", ".join(cs.ports),
                    "",
                    cs.image,
                )
            )
    tables = [
        Table(
            headers=("service", "kind", "found in", "context", "dockerfile", "target", "ports", "python deps", "image"),
            rows=tuple(found_rows),
            title="found",
        ),
        Table(
            headers=("file", "what"),
            rows=tuple((p.rel, p.what) for p in planned) + tuple((f, f"not written: {why}") for f, why in kept),
            title="would write" if dry_run else "written",
        ),
        Table(
            headers=("edit", "what init could not decide", "pipeline.toml section"),
            rows=tuple((u.where, u.what, u.section or "(top)") for u in d.undecided),
            title="not decided",
        ),
        Table(headers=("next",), rows=((NEXT_COMMAND,),), title="next"),
    ]
    notices = tuple(f"not decided: {u.where}: {u.what}" for u in d.undecided)
    data: dict[str, Any] = {
        "project": d.project,
        "services": [
            {
                "name": s.name,
                "context": s.context,
                "dockerfile": s.dockerfile,
                "target": s.target,
                "source": s.source,
                "python_dependencies": s.deps,
                "python_base": s.python,
                "base": s.base,
                "ports": list(s.ports),
                "also": list(s.also),
            }
            for s in d.services
        ],
        "compose": [
            {
                "file": c.path,
                "environment": c.env,
                "overlay": c.overlay,
                "services": [
                    {
                        "name": cs.name,
                        "line": cs.line,
                        "role": cs.role,
                        "datastore": cs.datastore,
                        "image": cs.image,
                        "context": cs.context,
                        "dockerfile": cs.dockerfile,
                        "target": cs.target,
                        "args": dict(cs.args),
                        "ports": list(cs.ports),
                        "healthcheck": cs.healthcheck,
                        "profiles": list(cs.profiles),
                        "env_files": list(cs.env_files),
                        "depends_on": list(cs.depends_on),
                    }
                    for cs in c.services
                ],
            }
            for c in d.compose
        ],
        "environments": {k: list(v) for k, v in d.environments.items()},
        "undecided": [{"file": u.file, "line": u.line, "what": u.what, "section": u.section} for u in d.undecided],
        "written": [p.rel for p in planned] if not dry_run else [],
        "planned": [p.rel for p in planned],
        "kept": [f for f, _ in kept],
        "next": NEXT_COMMAND,
        "dry_run": dry_run,
    }
    return Result(
        stage="init",
        headline=headline,
        notices=notices,
        tables=tuple(tables),
        artifacts=tuple(written),
        data=data,
        files=tuple([*(df.path for df in d.dockerfiles), *(c.path for c in d.compose)]),
    )
