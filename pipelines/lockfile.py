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
