"""pipeline.toml, edited as text (comments and order stay): a hardened service's bases and the golden images."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping

from ..config import Image
from ..config.tomltext import golden_table, inline, key
from ..errors import InputError


def _header(name: str) -> re.Pattern[str]:
    quoted = re.escape(key(name)) if key(name) != name else f'(?:{re.escape(name)}|"{re.escape(name)}")'
    return re.compile(rf"^\s*\[\s*services\s*\.\s*{quoted}\s*\]\s*(?:#.*)?$")


def golden_names(images: Mapping[str, Image], file: str, wanted: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(build arg -> the config's image of each golden base in ``wanted``, golden names with no [images.*] table)."""
    bases: dict[str, str] = {}
    missing: list[str] = []
    for arg, golden in wanted.items():
        have = [img.name for img in images.values() if img.golden == golden]
        if have:
            bases[arg] = have[0]
            continue
        if golden in images:
            raise InputError(
                f"{file}: [images.{golden}] exists and is not the golden image {golden!r}",
                hint=f'set golden = "{golden}" in it, or rename it, then run harden again',
            )
        bases[arg] = golden
        missing.append(golden)
    return bases, missing


def edit(
    text: str, file: str, services: Mapping[str, Mapping[str, str]], images: Mapping[str, Image]
) -> tuple[str, list[str]]:
    """The config with ``bases`` on each service (service -> build arg -> golden image) and the golden [images.*]
    tables; and what changed, in words."""
    lines = text.splitlines()
    changed: list[str] = []
    missing: list[str] = []
    data = tomllib.loads(text)
    for name, goldens in services.items():
        bases, lacking = golden_names(images, file, goldens)
        missing += [g for g in lacking if g not in missing]
        wanted = inline(bases)
        table = data.get("services", {}).get(name, {})
        have = table.get("bases") if isinstance(table, dict) else None
        if have == bases:
            continue
        if have:
            raise InputError(
                f"{file}: services.{name}.bases is {have!r}",
                hint=f"the hardened Dockerfile takes bases = {wanted}; set it by hand, then run harden again",
            )
        pattern = _header(name)
        at = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
        if at is None:
            raise InputError(
                f"{file}: no [services.{key(name)}] table header to add bases to",
                hint=f"write the service as a [services.{key(name)}] table, or add bases = {wanted} to it by hand",
            )
        at += 1
        while at < len(lines) and lines[at].lstrip().startswith("#"):
            at += 1
        lines.insert(at, f"bases = {wanted}")
        changed.append(f"services.{name}.bases = {wanted}")
    if changed:
        for golden in missing:
            table = golden_table(golden)
            commented = [f"# {line}" for line in table]
            at = next((i for i in range(len(lines) - 1) if lines[i : i + 2] == commented), None)
            if at is not None:
                lines[at : at + 2] = table
            else:
                lines += ["", *table]
            changed.append(f"[images.{golden}] golden = {golden!r}")
    out = "\n".join(lines) + ("\n" if text.endswith("\n") or not text else "")
    try:
        tomllib.loads(out)
    except tomllib.TOMLDecodeError as exc:  # a table header inside a multi-line string, say
        raise InputError(
            f"{file}: adding bases would leave it invalid TOML ({exc})",
            hint="add the bases to the services by hand: " + "; ".join(changed),
        ) from None
    return out, changed
