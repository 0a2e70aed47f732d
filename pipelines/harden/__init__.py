"""`pipelines harden [SERVICE ...]`: rewrite each service built FROM an upstream Python image onto the golden bases.

For every chosen service whose Dockerfile starts from python:3.x (slim, bookworm, alpine, ...), the Dockerfile
becomes a builder stage on ``${BUILDER_IMAGE}`` installing the dependencies the way the repository declares them
into /opt/venv, and a runtime stage on ``${RUNTIME_IMAGE}`` with only the venv and the application, owned by
root, run as 65532 behind tini, with a health check that needs no shell. The original is kept as
``Dockerfile.orig`` unless git holds it unchanged; pipeline.toml gets the service's ``bases`` and the golden
``[images.*]`` tables. A second run changes nothing.

Every service is converted before anything is written: one that cannot be is an
:class:`~pipelines.errors.InputError` (exit 2) naming the Dockerfile, the line and the manual step.

The package, by what each module holds: :mod:`.parse` (Dockerfile instructions and stages), :mod:`.deps` (the
dependency install), :mod:`.syslibs` (system packages, build and runtime), :mod:`.command` (ENTRYPOINT/CMD in
exec form), :mod:`.health` (the probe), :mod:`.composeports` (ports Compose publishes), :mod:`.convert` (one
Dockerfile), :mod:`.configedit` (pipeline.toml), :mod:`.files` (what is written, the original kept, the diff),
:mod:`.overlay` (the Compose hardening overlay, never a rewrite of the user's files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import golden, inputs, render
from ..config import Image
from ..config.tomltext import GOLDEN_BASES
from ..errors import ConfigError, InputError
from ..result import Check, Context, Outcome, Result, Table
from . import composeports, configedit, files
from .command import Unconvertible
from .convert import harden, root_image

__all__ = ["Options", "run"]


@dataclass(frozen=True)
class Options:
    services: tuple[str, ...] = ()
    dry_run: bool = False


def _chosen(ctx: Context, names: tuple[str, ...]) -> list[Image]:
    services = [img for img in ctx.cfg.images.values() if not img.is_base and img.dockerfile is not None]
    if not names:
        return services
    known = {img.name: img for img in services}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"{ctx.cfg.file}: no service {', '.join(unknown)}",
            hint="services: " + (", ".join(sorted(known)) or "(none)"),
        )
    return [known[n] for n in dict.fromkeys(names)]


def _display(ctx: Context, path: Path) -> str:
    try:
        return path.relative_to(ctx.root).as_posix()
    except ValueError:
        return str(path)


def run(ctx: Context, options: Options) -> Result:
    """Convert every chosen service, then write everything (or, with dry_run, only show the diff)."""
    images = _chosen(ctx, options.services)
    checks: list[Check] = []
    plan = files.Plan(ctx.root)
    hardened: dict[str, dict[str, str]] = {}  # service -> build arg -> the golden image it takes
    converted: dict[Path, tuple[str | None, str, dict[str, str]]] = {}  # Dockerfile -> (target, service, bases)
    rows: list[tuple[str, ...]] = []
    for img in images:
        if img.dockerfile is None or img.context is None:
            continue
        path = img.dockerfile
        shown = _display(ctx, path)
        try:
            text = inputs.read_text(path, shown)
        except ConfigError as exc:
            raise InputError(exc.what, hint=exc.hint) from None
        try:
            published = composeports.ports(ctx.cfg.compose.files, img.context, path)
            conv = harden(text, shown, context=img.context, root=ctx.root, target=img.target, compose_ports=published)
        except Unconvertible as exc:
            seen = files.script_summary(img.context, ctx.root, exc.script) if exc.script else None
            raise InputError(f"{shown}:{exc.line}: {exc.what}", seen=seen, hint=f"manual step: {exc.step}") from None
        if conv is None:
            image = root_image(text, shown, img.target) or "(nothing)"
            stage = f"target {img.target} " if img.target else ""
            why = (
                "already on the golden bases"
                if "${BUILDER_IMAGE}" in text or "${RUNTIME_IMAGE}" in text
                else f"{stage}starts FROM {image}, not an upstream Python image: left as it is"
            )
            checks.append(Check(img.name, Outcome.NA, f"{shown}: {why}", group="harden"))
            continue
        if path in converted:
            target, first, goldens = converted[path]
            if target != img.target:
                raise InputError(
                    f"{shown}: services {first} (target {target or 'the last stage'}) and {img.name} "
                    f"(target {img.target or 'the last stage'}) both build a Python stage of it",
                    hint="give each service its own Dockerfile, or harden one and convert the other by hand",
                )
            hardened[img.name] = goldens
            checks.append(
                Check(img.name, Outcome.PASS, f"same Dockerfile and target as {first}: {shown}", group="harden")
            )
            continue
        goldens = _goldens(conv.python)
        converted[path] = (img.target, img.name, goldens)
        plan.dockerfile(path, shown, text, conv.text)
        hardened[img.name] = goldens
        detail = [
            f"{shown}: FROM {conv.base} -> builder ${{BUILDER_IMAGE}} + runtime ${{RUNTIME_IMAGE}}, USER 65532:65532",
            f"dependencies: {conv.deps}",
            f"command: {conv.command}",
            f"health: {conv.probe}",
            *conv.notes,
        ]
        checks.append(Check(img.name, Outcome.PASS, "\n".join(detail), group="harden", evidence=shown))
        rows.append((img.name, shown, conv.deps, conv.probe, ", ".join(conv.runtime_packages) or "-", conv.job or "-"))
    if hardened:
        try:
            text = inputs.read_text(ctx.cfg.file, str(ctx.cfg.file))
        except ConfigError as exc:
            raise InputError(exc.what, hint=exc.hint) from None
        shown_cfg = _display(ctx, ctx.cfg.file)
        new_cfg, changed = configedit.edit(text, shown_cfg, hardened, ctx.cfg.images)
        if changed:
            plan.replace(ctx.cfg.file, shown_cfg, text, new_cfg)
            checks.append(Check("pipeline.toml", Outcome.PASS, "\n".join(changed), group="harden", evidence=shown_cfg))
    written = [] if options.dry_run else plan.write()
    return _result(checks, rows, plan, written, options)


def _goldens(python: str) -> dict[str, str]:
    """Build arg -> golden image: the default ones, or those of the family member carrying ``python``."""
    if not python:
        return dict(GOLDEN_BASES)
    out = {}
    for arg, name in GOLDEN_BASES.items():
        member = golden.select(name, python)
        if member is None:  # choose() took the version from this same catalog
            raise RuntimeError(f"no golden {name} carries Python {python}")
        out[arg] = member.name
    return out


def _result(
    checks: list[Check], rows: list[tuple[str, ...]], plan: files.Plan, written: list[Path], options: Options
) -> Result:
    n = len(rows)
    verb = "would write" if options.dry_run else "wrote"
    changes = plan.changes()
    headline = (
        f"hardened {n} service{'s' * (n != 1)}; {verb} {len(changes)} file{'s' * (len(changes) != 1)}"
        if changes
        else f"nothing to change: {len(checks)} service{'s' * (len(checks) != 1)} checked"
    )
    diff = plan.diff()
    notices = (diff.rstrip("\n"),) if options.dry_run and diff else ()
    data: dict[str, Any] = {
        "dry_run": options.dry_run,
        "services": [{"name": c.name, "outcome": c.outcome.value, "detail": c.detail} for c in checks],
        "changes": [{"path": p, "what": w} for p, w in changes],
        "written": [str(p) for p in written],
        "diff": diff,
    }
    tables = (
        render.checks_table(checks, title="services"),
        Table(
            ("service", "dockerfile", "dependencies", "health check", "runtime libraries", "one-shot job"),
            tuple(rows),
            title="hardened",
        ),
        Table(("file", "what"), tuple(changes), title=verb),
    )
    return Result(
        stage="harden",
        headline=headline,
        checks=tuple(checks),
        notices=notices,
        tables=tables,
        artifacts=tuple(written),
        data=data,
    )
