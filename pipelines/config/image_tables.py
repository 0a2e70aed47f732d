"""The [images.*] and [services.*] tables: what to build, from which context or Debian suite, or which golden image."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from .. import golden, refs
from ..errors import ConfigError
from . import paths
from .images import DEBIAN_KEYRING, IMAGE_KINDS, ROLES, Image
from .table import Table, build_args, matching

_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SUITE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def read(top: Table, root: Path) -> dict[str, Image]:
    """Base images, then services: one namespace, and at least one service."""
    images: dict[str, Image] = {}
    for name, it, entry, bases in _base_tables(top):
        images[name] = _image(it, name, root, is_base=True, entry=entry, bases=bases)
    for name, it in top.tables("services"):
        if name in images:
            raise it.error("", f"service {name!r} has the same name as a base image")
        images[name] = _image(it, name, root, is_base=False)
    if not any(not i.is_base for i in images.values()):
        raise ConfigError(top.file, "services", "at least one service is required")
    return _with_debian(images)


def _with_debian(images: Mapping[str, Image]) -> dict[str, Image]:
    """Each image with the Debian suite it is or is built on, and that suite's status.

    A rootfs image is its suite; any other image has its bases', an unsupported one (testing) first, so an
    image that stands on testing anywhere says so. Bases that name no image are reported later, by
    check_bases; cycles too (a cycle's images get no suite here).
    """
    out: dict[str, Image] = {}

    def visit(name: str, path: frozenset[str]) -> tuple[str, str]:
        if name in out:
            return out[name].debian_suite, out[name].debian_status
        img = images.get(name)
        if img is None or name in path:
            return "", ""
        if img.kind == "rootfs":
            found = (img.suite, golden.suite_status(img.suite))
        else:
            known = [visit(b, path | {name}) for b in img.bases.values()]
            known = [k for k in known if k[0]]
            found = next((k for k in known if k[1] in golden.UNSUPPORTED), known[0] if known else ("", ""))
        out[name] = replace(img, debian_suite=found[0], debian_status=found[1])
        return found

    for name in images:
        visit(name, frozenset())
    return {name: out[name] for name in images}


def _base_tables(top: Table) -> list[tuple[str, Table, golden.Golden | None, dict[str, str] | None]]:
    """Each [images.*] table with its golden entry, and the bases a golden entry resolves to.

    A golden entry's bases name golden images: each becomes the config's image of that golden name, or,
    when the config has none, that golden image itself, added under its golden name.
    """
    tables = [(name, it, _golden_entry(it)) for name, it in top.tables("images")]
    holders: dict[str, list[str]] = {}
    for name, _, entry in tables:
        if entry is not None:
            holders.setdefault(entry.name, []).append(name)
    taken = {name for name, _, _ in tables}
    out: list[tuple[str, Table, golden.Golden | None, dict[str, str] | None]] = []
    i = 0
    while i < len(tables):
        name, it, entry = tables[i]
        i += 1
        if entry is None or "bases" in it.data:
            out.append((name, it, entry, None))
            continue
        bases: dict[str, str] = {}
        for arg, wanted in entry.bases.items():
            have = holders.get(wanted, [])
            if len(have) > 1:
                raise it.error(
                    "golden",
                    f"{entry.name!r} is built on the golden image {wanted!r} ({arg}), and several images here are "
                    f"that one: {', '.join(have)}",
                    hint=f'say which: bases = {{ {arg} = "{have[0]}" }}',
                )
            if not have:
                if wanted in taken:
                    raise it.error(
                        "golden",
                        f"{entry.name!r} is built on the golden image {wanted!r} ({arg}), which would be added as "
                        f"[images.{wanted}], but that image is not golden = {wanted!r}",
                        hint=f'set golden = "{wanted}" there, or name the base here: bases = {{ {arg} = "IMAGE" }}',
                    )
                # Not written in the file: its settings are all the catalog's.
                implicit = Table(top.file, f"images.{wanted}", {"golden": wanted})
                tables.append((wanted, implicit, _golden_entry(implicit)))
                holders[wanted] = have = [wanted]
                taken.add(wanted)
            bases[arg] = have[0]
        out.append((name, it, entry, bases))
    return out


def _golden_entry(t: Table) -> golden.Golden | None:
    name = t.opt_string("golden")
    if name is None:
        return None
    known = golden.catalog()
    if name not in known:
        raise t.error(
            "golden",
            f"names no golden image of this package: {name!r}",
            hint="golden images: " + "; ".join(f"{g.name} ({g.description})" for g in known.values()),
        )
    for key in golden.DEFINITION_KEYS:
        if key in t.data:
            raise t.error(
                key,
                f"cannot be set beside golden = {name!r}: the golden image's definition is the package's",
                hint="remove it to build the golden image, or remove golden to define the image here",
            )
    if "python" not in t.data:
        return known[name]
    return _python_member(t, known[name])


def _python_member(t: Table, entry: golden.Golden) -> golden.Golden:
    """The member of ``entry``'s family that `python` asks for: the oldest Python not older than it."""
    wanted = t.data["python"]
    members = golden.family(entry.name)
    if not members:
        pythons = ", ".join(g.name for g in golden.catalog().values() if g.python)
        raise t.error(
            "python",
            f"only a golden Python image takes a Python version, and {entry.name!r} is none",
            hint=f"golden Python images: {pythons}",
        )
    available = ", ".join(f"{g.python} ({g.name})" for g in members)
    if not isinstance(wanted, str) or not golden.PYTHON_VERSION.match(wanted):
        raise t.error(
            "python",
            f'expected a Python version as a quoted string such as "3.13", got {wanted!r}',
            hint=f"available: {available}",
        )
    chosen = golden.select(entry.name, wanted)
    if chosen is None:
        raise t.error(
            "python",
            f"Python {wanted} is newer than every golden {entry.name!r} image",
            hint=f"available: {available}",
        )
    return chosen


def _image(
    t: Table,
    name: str,
    root: Path,
    *,
    is_base: bool,
    entry: golden.Golden | None = None,
    bases: dict[str, str] | None = None,
) -> Image:
    """One image from its table; with a golden ``entry``, from that entry's settings overridden by the table's."""
    if refs.component_problem(name):
        raise t.error(
            "",
            "image names must be lowercase letters and digits, separated by single '.', '_' or '__', or by '-' "
            "(they become repository names)",
        )
    requested = ""
    if entry is not None:
        # `python` chose the entry (see _python_member); it is no setting of the image.
        requested = t.data.get("python", "")
        mine = {k: v for k, v in t.data.items() if k not in ("golden", "python")}
        t = Table(t.file, t.path, {**entry.settings, **mine})
    kind = t.choice("kind", IMAGE_KINDS, "dockerfile") if is_base else "dockerfile"
    image = t.string("image", name)
    if problem := refs.repository_problem(image):
        raise t.error("image", problem, hint="a repository name such as 'api' or 'team/api', without tag")
    if kind == "rootfs":
        suites = t.strings("suites")
        for i, listed in enumerate(suites):
            # Each becomes a field of a sources.list line and part of the index URLs.
            if not _SUITE.match(listed):
                raise t.error(f"suites[{i}]", f"{listed!r} is not a Debian suite name such as bookworm-security")
        suite = matching(
            t, "suite", suites[0] if suites else "bookworm", _SUITE, "a Debian suite name such as bookworm"
        )
        if not suites:
            suites = (suite, f"{suite}-updates", f"{suite}-security")
        elif suites[0] != suite:
            raise t.error("suites", f"must start with the debootstrap suite {suite!r}; got {list(suites)}")
        img = Image(
            name=name,
            kind=kind,
            is_base=is_base,
            image=image,
            context=None,
            dockerfile=None,
            target=None,
            args={},
            bases={},
            golden=entry.name if entry is not None else "",
            suite=suite,
            variant=matching(t, "variant", "minbase", _SUITE, "a debootstrap variant such as minbase"),
            mirror=_mirror(t, "mirror", "http://deb.debian.org/debian"),
            include=t.strings("include"),
            suites=suites,
            security_mirror=_mirror(t, "security_mirror", "http://deb.debian.org/debian-security"),
            keyring=_keyring(t, root),
        )
        t.done()
        return img
    if entry is not None and entry.context is not None and entry.dockerfile is not None:
        # A directory of the package, checked when the catalog is read; never inside the project.
        context, dockerfile = entry.context, entry.dockerfile
    else:
        context = paths.inside(t, "context", t.string("context", required=True), root)
        if not context.is_dir():
            raise t.error("context", paths.not_a(context, "directory"))
        dockerfile = paths.inside(t, "dockerfile", str(context / t.string("dockerfile", "Dockerfile")), root)
        if not dockerfile.is_file():
            raise t.error("dockerfile", paths.not_a(dockerfile, "file"))
    target = t.opt_string("target")
    if target is not None and not _STAGE.match(target):
        raise t.error("target", f"{target!r} is not a build stage name (letters, digits, '_', '.', '-')")
    img = Image(
        name=name,
        kind=kind,
        is_base=is_base,
        role=t.choice("role", ROLES, "runtime") if is_base else "service",
        image=image,
        context=context,
        dockerfile=dockerfile,
        target=target,
        args=build_args(t, "args"),
        bases=bases if bases is not None else build_args(t, "bases"),
        golden=entry.name if entry is not None else "",
        python=entry.python if entry is not None else "",
        python_requested=requested,
    )
    t.done()
    return img


# A mirror URL goes verbatim into debootstrap's argv and the image's sources.list: it must be a bare
# http(s) URL, so that no apt option ("[trusted=yes] http://..."), second field, comment ('#') or
# credentials ('@') can ride along. IPv6 literals need brackets and are refused with them.
_URL = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+/-]*)?$")


def _mirror(t: Table, name: str, default: str) -> str:
    value = t.string(name, default)
    if not _URL.fullmatch(value):
        raise t.error(
            name,
            f"{value!r} is not a plain http:// or https:// mirror URL",
            hint="give only the URL, e.g. http://deb.debian.org/debian: no apt options such as [trusted=yes], "
            "spaces, brackets, '#', '?' or user@; the archive's signature is always checked",
        )
    return value


def _keyring(t: Table, root: Path) -> Path:
    value = t.string("keyring", str(DEBIAN_KEYRING))
    if not value.strip():
        raise t.error("keyring", "must not be empty", hint=f"the default is {DEBIAN_KEYRING}")
    # A host file (not a project input), so it may live outside the project; relative means the project's.
    return root / value if not Path(value).is_absolute() else Path(value)
