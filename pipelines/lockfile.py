"""The base-image lock: which digest each golden image was built as, from which inputs.

Service builds read base images from here, by digest. An entry is reused while
its inputs hash is unchanged and the digest is still in the registry, so a
rebuild does not debootstrap again; changing a base image's files, settings or
the bases under it makes a new entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigError

VERSION = 1


@dataclass(frozen=True)
class Entry:
    ref: str  # repo@sha256:...
    inputs: str  # sha256 of everything the image was built from
    built_at: str


def load(path: Path) -> dict[str, Entry]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
        return {name: Entry(**e) for name, e in data["images"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            str(path), "", f"is not a valid lock file ({exc})", hint="delete it; the next build recreates it"
        ) from None


def save(path: Path, entries: dict[str, Entry]) -> None:
    data = {"version": VERSION, "images": {n: asdict(e) for n, e in sorted(entries.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: a crash mid-write never leaves half a lock behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lock-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the package lock
#
# Next to the base-image lock: per golden image, every installed OS package
# (name, version, source, arch) of the digest in the lock. A change of any
# package shows as a diff, and it is the list that pending security updates are
# checked against before anything is rebuilt.

PACKAGES_VERSION = 1


@dataclass(frozen=True)
class Packages:
    ref: str  # the image these were read from (the base lock's ref)
    packages: dict[str, dict[str, str]]  # package -> {"version", "source", "arch"}


def packages_path(lock: Path) -> Path:
    """pipeline.lock.json -> pipeline.packages.json, beside it."""
    name = lock.name
    return lock.with_name(name.replace(".lock", ".packages", 1) if ".lock" in name else f"{lock.stem}.packages.json")


def load_packages(path: Path) -> dict[str, Packages]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != PACKAGES_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {PACKAGES_VERSION}")
        out = {}
        for name, e in data["images"].items():
            pkgs = {str(p): {str(k): str(v) for k, v in fields.items()} for p, fields in e["packages"].items()}
            out[name] = Packages(str(e["ref"]), pkgs)
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            str(path), "", f"is not a valid package lock ({exc})", hint="delete it; the next build recreates it"
        ) from None


def save_packages(path: Path, entries: dict[str, Packages]) -> None:
    data = {
        "version": PACKAGES_VERSION,
        "images": {n: {"ref": e.ref, "packages": dict(sorted(e.packages.items()))} for n, e in sorted(entries.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".packages-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def diff_packages(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> list[str]:
    """One line per package added, removed or changed in version, by name."""
    lines = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None and b is not None:
            lines.append(f"+ {name} {b['version']}")
        elif b is None and a is not None:
            lines.append(f"- {name} {a['version']}")
        elif a is not None and b is not None and a["version"] != b["version"]:
            lines.append(f"~ {name} {a['version']} -> {b['version']}")
    return lines
