"""Installed Debian packages: an image's dpkg database read without running it, and its package-lock entries."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..debversion import is_debian_version
from .errors import NoDpkgData, OsUpdatesError

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"


@dataclass(frozen=True, order=True)
class Installed:
    name: str
    version: str
    arch: str
    source: str  # source package name (the binary's own name when dpkg records none)
    source_version: str  # what the changelog's versions are compared with

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "source": self.source}


def source_of(para: Mapping[str, str]) -> tuple[str, str]:
    name, version = para["Package"], para["Version"]
    src = para.get("Source", "").strip()
    if not src:
        return name, version
    # "Source: glibc (2.36-9+deb12u4)": a binNMU or a binary versioned apart from its source.
    m = re.match(r"^(\S+)(?:\s+\((\S+)\))?$", src)
    if not m:
        return src.split()[0], version
    return m.group(1), m.group(2) or version


def parse_status(text: str, *, where: str = STATUS, whole_file_installed: bool = False) -> list[Installed]:
    """Installed packages of a dpkg status file (or one status.d entry).

    ``whole_file_installed``: status.d entries written without a Status field
    still describe installed packages (distroless images write them so).
    """
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    out = []
    for para in deb822.Deb822.iter_paragraphs(text, use_apt_pkg=False):
        if "Package" not in para:
            continue
        status = para.get("Status", "")
        if status:
            if status.split()[-1] != "installed":
                continue
        elif not whole_file_installed:
            continue
        if "Version" not in para:
            raise OsUpdatesError(f"{where}: package {para['Package']} has no Version field")
        source, source_version = source_of(para)
        check_version(where, para["Package"], para["Version"], source_version)
        out.append(Installed(para["Package"], para["Version"], para.get("Architecture", ""), source, source_version))
    return out


def check_version(where: str, package: str, version: str, source_version: str) -> None:
    # Checked where it is read: a version python-debian cannot compare would otherwise fail the check later,
    # naming neither the file nor the package.
    for field_name, value in (("Version", version), ("Source version", source_version)):
        if not is_debian_version(value):
            raise OsUpdatesError(
                f"{where}: package {package}: {field_name} {value!r} is not a Debian version dpkg can read",
                hint="a dpkg database or package index with unreadable versions cannot be checked for updates",
            )


def parse_dpkg_tar(data: bytes, where: str) -> list[Installed]:
    """Installed packages from a tar holding ``status`` or a ``status.d`` directory (engine get_archive)."""
    out: list[Installed] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if not m.isfile() or m.name.endswith(".md5sums"):
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            text = f.read().decode("utf-8", "replace")
            out += parse_status(text, where=f"{where}:{m.name}", whole_file_installed="status.d" in m.name)
    return out


def image_packages(ref: str, cache: Path | None = None) -> list[Installed]:
    """Every installed OS package of an image, read from its dpkg database without running it.

    The dpkg files are copied out of a created (never started) container through
    the engine API. An image ID names the image's whole content, so with a
    ``cache`` the answer is kept per image ID and an unchanged image is not read
    again. Raises when the image has no dpkg data at all: "no packages" would be
    an unproven pass.
    """
    from ..engine import Engine, ImageNotFound

    with Engine.connect() as engine:
        try:
            image_id = engine.image(ref).id
        except ImageNotFound:
            image_id = engine.pull(ref).id  # a locked base that is only in the registry
        kept = cache / "os-updates" / "installed" / f"{image_id.replace(':', '-')}.json" if cache else None
        if kept is not None and kept.is_file():
            try:
                return [Installed(**row) for row in json.loads(kept.read_text())]
            except (OSError, ValueError, TypeError):
                pass  # a damaged entry is read again from the image
        files = engine.read_image_files(ref, [STATUS, STATUS_D])
    if not files:
        raise NoDpkgData(
            f"{ref} has no dpkg database ({STATUS} or {STATUS_D})",
            hint="images must keep dpkg status data so their OS packages can be checked",
        )
    found: list[Installed] = []
    for path, data in sorted(files.items()):
        if path.endswith(".md5sums"):
            continue
        text = data.decode("utf-8", "replace")
        found += parse_status(text, where=f"{ref}:{path}", whole_file_installed="status.d" in path)
    result = sorted(set(found))
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        part = kept.with_suffix(f".part-{os.getpid()}")
        part.write_text(json.dumps([dataclasses.asdict(i) for i in result]))
        part.replace(kept)
    return result


def lock_entries(installed: Iterable[Installed]) -> dict[str, dict[str, str]]:
    """Package-lock entries: by name, or name:arch when one name is installed for two architectures."""
    pkgs = sorted(installed)
    names = [p.name for p in pkgs]
    out = {}
    for p in pkgs:
        key = p.name if names.count(p.name) == 1 else f"{p.name}:{p.arch}"
        out[key] = {"version": p.version, "source": p.source, "arch": p.arch}
    return out


def from_lock(entries: Mapping[str, Mapping[str, str]]) -> list[Installed]:
    return [
        Installed(key.split(":", 1)[0], e["version"], e.get("arch", ""), e.get("source", ""), e["version"])
        for key, e in entries.items()
    ]
