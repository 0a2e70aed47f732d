"""The rendered files: manifests and secrets as YAML, provenance as JSON, and what each object leaves untraced."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from .model import DEFAULTS, MANIFESTS, PROVENANCE, SECRETS, Obj


def field_paths(value: Any, prefix: str = "") -> list[str]:
    """Every leaf path of an object (lists of named things by name, others by index)."""
    if isinstance(value, dict):
        if not value:
            return [prefix]
        out: list[str] = []
        for k, v in value.items():
            out += field_paths(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(x, dict) and "name" in x for x in value):
        out = []
        for x in value:
            out += field_paths({k: v for k, v in x.items() if k != "name"}, f"{prefix}[{x['name']}]")
            out.append(f"{prefix}[{x['name']}].name")
        return out
    return [prefix]


def untraced(obj: Obj) -> list[str]:
    """Leaf paths of ``obj`` that no provenance entry covers (should be none)."""
    prefixes = sorted(obj.sources)

    def covered(path: str) -> bool:
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in prefixes)

    return [p for p in field_paths(obj.body) if not covered(p)]


# --------------------------------------------------------------------------- output


def dump(objects: Iterable[Obj], file: str) -> str:
    docs = [o.body for o in objects if o.file == file]
    return "".join(
        "---\n" + yaml.safe_dump(d, sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096)
        for d in docs
    )


def provenance(objects: Iterable[Obj]) -> str:
    data = {
        "defaults": {k: {"value": d.value, "why": d.why} for k, d in sorted(DEFAULTS.items())},
        "objects": {o.key: dict(sorted(o.sources.items())) for o in objects},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be written ({exc.strerror})", hint="name a writable directory") from None


def write(objects: Sequence[Obj], target: Path) -> list[Path]:
    """Write the manifests, the secrets and the provenance into ``target``; the paths written, in that order."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"--out {target}: cannot be created ({exc.strerror})", hint="name a writable directory"
        ) from None
    files = []
    for name, text in (
        (MANIFESTS, dump(objects, MANIFESTS)),
        (SECRETS, dump(objects, SECRETS)),
        (PROVENANCE, provenance(objects)),
    ):
        _write(target / name, text)
        files.append(target / name)
    return files
