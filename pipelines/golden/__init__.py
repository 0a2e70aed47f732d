"""The golden base images this package ships: their definitions beside this file, named in ``catalog.toml``.

A ``pipeline.toml`` takes one with ``[images.NAME] golden = "..."``, so a repository that adopts the package
needs none of these files itself. The config reader applies the same rules to a catalog entry as to an image
written out in full; this module only finds the entries and checks what is the catalog's own: names, contexts
inside the package, bases that name other entries.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import refs

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "catalog.toml"
# A file of a golden definition is named by its place in the package (in findings, reports and waiver
# scopes), never by where the package happens to be installed.
DISPLAY_PREFIX = "golden:"
# What an image is built from: the catalog's alone, never replaced by a key of pipeline.toml.
DEFINITION_KEYS = ("kind", "context", "dockerfile")
# The catalog's own keys; every other key of an entry is an [images.*] setting pipeline.toml may override.
_OWN_KEYS = frozenset({"description", "context", "dockerfile", "bases", "python", "status"})
KINDS = ("rootfs", "dockerfile")
# A Debian suite's place in its life cycle. Testing (and unstable) has no support from Debian's security
# team: every report about an image on it says so.
STATUSES = ("oldstable", "stable", "testing")
UNSUPPORTED = ("testing", "unstable")
# What a suite name alone says about its status, for rootfs images the catalog does not define.
_SUITE_ALIASES = {
    "oldstable": "oldstable",
    "stable": "stable",
    "testing": "testing",
    "sid": "unstable",
    "unstable": "unstable",
}
PYTHON_VERSION = re.compile(r"^3\.(0|[1-9][0-9]?)$")


class CatalogError(RuntimeError):
    """The package's catalog is broken: a bug of the package, never of the user's config."""


@dataclass(frozen=True)
class Golden:
    """One golden base image of the catalog."""

    name: str
    description: str
    kind: str  # rootfs | dockerfile
    # dockerfile images: their build context, a directory of the package, and the Dockerfile in it
    context: Path | None
    dockerfile: Path | None
    # build arg -> the golden image (of this catalog) it is built on
    bases: Mapping[str, str]
    # the other [images.*] keys (role, suite, mirror, ...) as pipeline.toml would write them
    settings: Mapping[str, Any]
    # Python images: the "3.X" they carry; "" for others
    python: str = ""
    # rootfs images: the Debian suite's status (one of STATUSES)
    status: str = ""


def python_key(version: str) -> tuple[int, int]:
    """``"3.13"`` as (3, 13), so versions compare as numbers."""
    major, minor = version.split(".")
    return int(major), int(minor)


def family(name: str) -> list[Golden]:
    """The Python images built from the same definition as ``name`` (itself included), oldest Python first."""
    cat = catalog()
    g = cat[name]
    if not g.python:
        return []
    return sorted(
        (o for o in cat.values() if o.python and o.context == g.context and o.dockerfile == g.dockerfile),
        key=lambda o: python_key(o.python),
    )


def select(name: str, python: str) -> Golden | None:
    """The member of ``name``'s family with the oldest Python not older than ``python``; None when none is."""
    wanted = python_key(python)
    return next((g for g in family(name) if python_key(g.python) >= wanted), None)


def suite_status(suite: str) -> str:
    """The status of a Debian suite by name: the catalog's for its suites, "" when not known."""
    for g in catalog().values():
        if g.kind == "rootfs" and g.settings.get("suite") == suite:
            return g.status
    return _SUITE_ALIASES.get(suite, "")


def catalog() -> Mapping[str, Golden]:
    """Every golden image of the package, by name, in the catalog's order."""
    return _load(CATALOG)


def names() -> list[str]:
    return list(catalog())


def display(path: Path) -> str | None:
    """``golden:DIR/FILE`` for a file of a golden definition; None for any other path."""
    try:
        rel = path.resolve().relative_to(HERE)
    except ValueError:
        return None
    return DISPLAY_PREFIX + rel.as_posix()


def installed_elsewhere(path: Path, root: Path) -> bool:
    """Whether ``path`` is a golden definition's file installed with the package, outside the project at ``root``.

    Lint and scan leave such files out, and say so: they are the package's to fix, not the project's, and
    the package's own checks examine them. In the package's own checkout they are project files.
    """
    return display(path) is not None and not path.resolve().is_relative_to(root.resolve())


@functools.cache
def _load(path: Path) -> Mapping[str, Golden]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read: {exc}") from None
    entries = {name: _entry(path, name, table) for name, table in data.items()}
    for g in entries.values():
        for arg, base in g.bases.items():
            if base not in entries:
                raise CatalogError(f"{path}: {g.name}.bases.{arg}: names no golden image of the catalog: {base!r}")
    return MappingProxyType(entries)


def _entry(path: Path, name: str, table: object) -> Golden:
    where = f"{path}: {name}"
    if not isinstance(table, dict):
        raise CatalogError(f"{where}: expected a table")
    if problem := refs.component_problem(name):
        raise CatalogError(f"{where}: {problem}")
    description = table.get("description", "")
    kind = table.get("kind", "dockerfile")
    bases = table.get("bases", {})
    if not isinstance(description, str) or not description.strip():
        raise CatalogError(f"{where}.description: a non-empty string is required")
    if kind not in KINDS:
        raise CatalogError(f"{where}.kind: must be one of {', '.join(KINDS)}")
    if not isinstance(bases, dict) or not all(isinstance(v, str) for v in bases.values()):
        raise CatalogError(f"{where}.bases: expected a table of golden image names")
    python = table.get("python", "")
    status = table.get("status", "")
    if python and (kind != "dockerfile" or not isinstance(python, str) or not PYTHON_VERSION.match(python)):
        raise CatalogError(f'{where}.python: a Python image\'s version such as "3.13", got {python!r}')
    if kind == "rootfs" and status not in STATUSES:
        raise CatalogError(f"{where}.status: a rootfs image's Debian status, one of {', '.join(STATUSES)}")
    if kind != "rootfs" and status:
        raise CatalogError(f"{where}.status: only a rootfs image has one (the others have their base's)")
    context = dockerfile = None
    if kind == "dockerfile":
        rel = table.get("context")
        context = refs.inside(path.parent, rel) if isinstance(rel, str) and rel.strip() else None
        if context is None or not context.is_dir():
            raise CatalogError(f"{where}.context: expected a directory beside {path.name}, got {rel!r}")
        name_of = table.get("dockerfile", "Dockerfile")
        dockerfile = refs.inside(context, name_of) if isinstance(name_of, str) else None
        if dockerfile is None or not dockerfile.is_file():
            raise CatalogError(f"{where}.dockerfile: no file {name_of!r} in {context}")
    elif "context" in table or "dockerfile" in table or bases:
        raise CatalogError(f"{where}: a rootfs image has no context, dockerfile or bases")
    settings = {k: v for k, v in table.items() if k not in _OWN_KEYS}
    return Golden(
        name,
        description,
        kind,
        context,
        dockerfile,
        MappingProxyType(dict(bases)),
        MappingProxyType(settings),
        python=python,
        status=status,
    )
