"""Trivy on one image, by its ID: the run, the answer kept for an unchanged image, and the check it is whole."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _proc
from ..config import ScanSettings
from ..engine import Engine
from ..errors import ScanError
from ..tools import TRIVY_QUIET, Toolchain
from ..trivyresult import check_image_id
from ..trivyresult import read_result as _read_result
from .coverage import DbChoice, image_ecosystems
from .issues import Issue, parse_trivy


@dataclass
class ImageResult:
    name: str
    ref: str
    packages: int = 0
    issues: list[Issue] = field(default_factory=list)
    seconds: float = 0.0
    raw: str = ""
    sbom: str = ""
    snyk: str = ""
    ecosystems: tuple[str, ...] = ()  # what the vulnerability data must cover for this image
    image_id: str = ""
    reused: bool = False  # Trivy's result for this very image, DB and scanners was reused


def scan_image(
    trivy: str, tools: Toolchain, name: str, ref: str, db: DbChoice, settings: ScanSettings, out: Path, work: Path
) -> ImageResult:
    start = time.monotonic()
    res = ImageResult(name, ref)
    scanners = [s for s in settings.scanners if s in ("vuln", "secret") and (s != "vuln" or db.info is not None)]
    raw = out / f"{name}.trivy.json"
    sbom = out / f"{name}.cdx.json"
    # ``ref`` is an image ID (analysis._targets): what is saved, scanned and kept is that image, whatever tags do.
    # An image ID names its whole content: with the same DB, Trivy and scanners, Trivy's answer
    # is the same, so a warm scan of an unchanged image reuses it instead of saving and reading
    # every layer again.
    with Engine.connect() as engine:
        asked = engine.image(ref).id
    key = _result_key(asked, db, trivy, scanners)
    cached = settings.cache_dir / "results" / key
    if (cached / "trivy.json").is_file() and (cached / "cdx.json").is_file():
        shutil.copyfile(cached / "trivy.json", raw)
        shutil.copyfile(cached / "cdx.json", sbom)
        data = _read_result(raw, f"trivy image {name} (reused)", _proc.Result((), 0, "", "", 0.0))
        try:
            res.image_id = check_image_result(data, name, asked, _dpkg_packages(asked, settings.cache_dir))
        except ScanError:
            shutil.rmtree(cached, ignore_errors=True)  # not this image's whole answer: scanned again below
        else:
            res.issues, res.packages = parse_trivy(data, name)
            res.ecosystems = image_ecosystems(data)
            res.raw, res.sbom, res.reused = str(raw), str(sbom), True
            res.seconds = round(time.monotonic() - start, 2)
            return res
    tar = work / f"{name}.tar"
    _proc.run(
        [tools.docker, "save", "--output", str(tar), asked],
        timeout=600,
        what=f"docker save {name} ({asked})",
        hint=f"build it first (`pipelines build`) or check the reference {ref}",
    )
    # Trivy's cache is single-process: every scan gets its own, with the one
    # DB linked in read-only.
    cache = work / f"{name}.cache"
    cache.mkdir()
    if db.cache_dir is not None:
        (cache / "db").symlink_to((db.cache_dir / "db").resolve())
    argv = [
        trivy,
        "image",
        "--input",
        str(tar),
        "--cache-dir",
        str(cache),
        "--cache-backend",
        "memory",
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        *TRIVY_QUIET,
        "--scanners",
        ",".join(scanners) or "secret",
        "--list-all-pkgs",
        "--format",
        "json",
        "--output",
        str(raw),
        "--timeout",
        f"{settings.timeout}s",
    ]
    r = _proc.run(argv, timeout=settings.timeout + 60, check=False, what=f"trivy image {name}", quiet=True)
    data = _read_result(raw, f"trivy image {name}", r)
    res.image_id = check_image_result(data, name, asked, _dpkg_packages(asked, settings.cache_dir))
    res.issues, res.packages = parse_trivy(data, name)
    res.ecosystems = image_ecosystems(data)
    res.raw = str(raw)
    sbom = out / f"{name}.cdx.json"
    # The SBOM is converted from the same result: no second scan that could differ.
    _proc.run(
        [trivy, "convert", "--format", "cyclonedx", "--output", str(sbom), "--quiet", str(raw)],
        timeout=120,
        what=f"SBOM for {name}",
        quiet=True,
    )
    res.sbom = str(sbom)
    tar.unlink()
    # Kept for the next run of the same image; written whole or not at all.
    part = cached.with_name(cached.name + f".part-{os.getpid()}-{name}")
    part.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, part / "trivy.json")
    shutil.copyfile(sbom, part / "cdx.json")
    shutil.rmtree(cached, ignore_errors=True)
    part.rename(cached)
    res.seconds = round(time.monotonic() - start, 2)
    return res


def _dpkg_packages(image_id: str, cache: Path) -> int:
    """How many packages the image's dpkg database lists (0 without one), read apart from Trivy, kept per image ID."""
    from .. import osupdates

    try:
        return len(osupdates.image_packages(image_id, cache))
    except osupdates.NoDpkgData:
        return 0


def _result_key(image_id: str, db: DbChoice, trivy: str, scanners: list[str]) -> str:
    """What Trivy's answer depends on: the image, the DB's exact files, Trivy itself, the scanners."""
    h = hashlib.sha256()
    h.update(image_id.encode())
    h.update(",".join(scanners).encode())
    h.update(str(Path(trivy).resolve().stat().st_mtime_ns).encode() + trivy.encode())
    if db.cache_dir is not None:
        for f in ("db/trivy.db", "db/metadata.json"):
            st = (db.cache_dir / f).stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def check_image_result(data: Any, name: str, image_id: str, dpkg_packages: int = 0) -> str:
    """The image ID Trivy reports having read, when it is ``image_id`` and the report is a whole scan; else ScanError.

    A report about another image would make the verdict speak for something
    never examined. An image in which Trivy found an operating system, or
    whose dpkg database lists ``dpkg_packages`` packages (read apart from
    Trivy), but for which Trivy listed no OS packages was not read (it lists
    them all: --list-all-pkgs), and would pass as clean.
    """
    reported = check_image_id(data, name, image_id)
    meta = data["Metadata"]
    os_found = meta.get("OS")
    results = data.get("Results") if isinstance(data, dict) else None
    os_listed = any(isinstance(r, dict) and r.get("Class") == "os-pkgs" and r.get("Packages") for r in results or [])
    hint = "run the scan again; if it persists, check the image with `trivy image --list-all-pkgs`"
    # Language packages listed beside an OS whose packages were not are no proof the OS was read.
    if os_found and not os_listed:
        family = " ".join(str(os_found.get(k, "")) for k in ("Family", "Name")) if isinstance(os_found, dict) else ""
        raise ScanError(
            f"Trivy found an operating system in {name} ({family.strip() or 'unnamed'}) but listed no packages: "
            "that is a failed read, not a clean scan",
            hint=hint,
        )
    if dpkg_packages and not os_listed:
        raise ScanError(
            f"the dpkg database of {name} lists {dpkg_packages} packages, and Trivy listed no OS packages: "
            "that is a failed read, not a clean scan",
            hint=hint,
        )
    return reported
