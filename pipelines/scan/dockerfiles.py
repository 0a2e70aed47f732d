"""``trivy config`` on the images' Dockerfiles, its answer kept while the files and Trivy stay the same."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import _proc, report
from ..config import ScanSettings
from ..tools import TRIVY_QUIET
from ..trivyresult import read_result as _read_result
from .issues import Issue, parse_trivy


def scan_config(
    trivy: str, files: Sequence[Path], out: Path, work: Path, settings: ScanSettings, root: Path
) -> list[Issue]:
    if not files:
        return []
    staging = work / "config"
    staging.mkdir()
    names: dict[str, str] = {}
    for i, f in enumerate(files):
        # Trivy detects Dockerfiles by name; keep the name, make it unique.
        d = staging / str(i)
        d.mkdir()
        shutil.copy(f, d / f.name)
        names[f"{i}/{f.name}"] = report.display_path(f, root)
    raw = out / "config.trivy.json"
    # The same Dockerfiles under the same Trivy give the same answer: reuse it.
    h = hashlib.sha256(str(Path(trivy).resolve().stat().st_mtime_ns).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    cached = settings.cache_dir / "results" / f"config-{h.hexdigest()[:32]}.json"
    if cached.is_file():
        shutil.copyfile(cached, raw)
        data = _read_result(raw, "trivy config (reused)", _proc.Result((), 0, "", "", 0.0))
        return _config_issues(data, names)
    cache = work / "config.cache"
    argv = [
        trivy,
        "config",
        "--cache-dir",
        str(cache),
        "--skip-check-update",
        *TRIVY_QUIET,
        "--format",
        "json",
        "--output",
        str(raw),
        str(staging),
    ]
    r = _proc.run(argv, timeout=settings.timeout, check=False, what="trivy config", quiet=True)
    data = _read_result(raw, "trivy config", r)
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_suffix(f".part-{os.getpid()}")
    shutil.copyfile(raw, part)
    part.replace(cached)
    return _config_issues(data, names)


def _config_issues(data: Any, names: Mapping[str, str]) -> list[Issue]:
    issues, _ = parse_trivy(data, "config")
    return [
        Issue(
            names.get(i.target, i.target),
            i.kind,
            i.id,
            i.severity,
            i.title,
            target=names.get(i.target, i.target),
            line=i.line,
        )
        for i in issues
    ]
