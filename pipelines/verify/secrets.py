"""Secrets in an image: literal ones in its config (ENV, labels, history), and Trivy's secret scan of its layers.

A report never carries a secret's characters: each one found is named by its
kind, length and a fingerprint keyed per run (see :func:`_redact`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import _proc
from ..config import Config
from ..engine import ImageInfo
from ..errors import ScanError
from ..trivyresult import check_image_id, read_result, reported_image_id
from .targets import Target

# Secrets in configuration: a credential-like name with a literal value, or a value shaped like a known token.
_SECRET_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)")
_NOT_A_VALUE = re.compile(r"(?i)(_FILE|_PATH|_DIR)$")
# Token shapes, each named: the name is what a report says instead of any part of the value.
_TOKEN_KINDS = {
    "aws_access_key_id": r"AKIA[0-9A-Z]{16}",
    "aws_temporary_access_key_id": r"ASIA[0-9A-Z]{16}",
    "github_token": r"gh[pousr]_[A-Za-z0-9]{36,}",
    "github_pat": r"github_pat_[A-Za-z0-9_]{40,}",
    "gitlab_pat": r"glpat-[A-Za-z0-9_-]{20}",
    "slack_token": r"xox[abprs]-[A-Za-z0-9-]{10,}",
    "stripe_live_key": r"sk_live_[A-Za-z0-9]{20,}",
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "google_api_key": r"AIza[0-9A-Za-z_-]{35}",
}
_SECRET_VALUE = re.compile("|".join(f"(?P<{kind}>{rx})" for kind, rx in _TOKEN_KINDS.items()))
_ASSIGN = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s;&|]+)")
FINGERPRINT_HEX = 8


# This process's key for secret fingerprints: random, made once at import (before any thread could race to make
# two), never written anywhere.
_FINGERPRINT_KEY = os.urandom(32)


def _redact(value: str, kind: str = "value") -> str:
    """What a report may say of a secret: its kind, its length and a fingerprint, no character of it.

    The fingerprint is an HMAC-SHA256 of the value under a random key of this
    run (``_FINGERPRINT_KEY``): within one report two findings of the same
    value share it, so a reader can tell one leaked credential from two. It
    confirms nothing offline: a plain hash (even a short prefix) with the
    exact length would let anyone holding the report (CI uploads it) test a
    dictionary of weak passwords against it, and the key that could do that
    dies with the run. The length is kept: without a checkable digest it
    confirms no guess, and it helps the owner tell which credential it is.
    """
    mac = hmac.new(_FINGERPRINT_KEY, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return f"<{kind.replace('_', '-')}, {len(value)} chars, run-hmac:{mac.hexdigest()[:FINGERPRINT_HEX]}>"


def secrets_in_config(info: ImageInfo, history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the image's ENV, labels or build history carry a literal secret (values redacted)."""
    hits: list[str] = []

    def judge(where: str, name: str, value: str) -> None:
        value = value.strip("\"'")
        token = _SECRET_VALUE.search(value)
        if token:
            hits.append(f"{where} {name}={_redact(value, token.lastgroup or 'token')} (token-shaped value)")
        elif (
            _SECRET_NAME.search(name)
            and not _NOT_A_VALUE.search(name)
            and value
            and not value.startswith(("/", "$"))
            and value.lower() not in ("true", "false", "none", "null")
        ):
            hits.append(f"{where} {name}={_redact(value)} (credential-like name with a value)")

    for e in info.env:
        k, _, v = e.partition("=")
        judge("ENV", k, v)
    for k, v in info.labels.items():
        judge("LABEL", k, v)
    for i, h in enumerate(history):
        created_by = str(h.get("CreatedBy") or "")
        for m in _ASSIGN.finditer(created_by):
            # ENV lines are in the config already; everything else (ARG values, RUN exports) is history only.
            judge(f"history[{i}]", m.group(1), m.group(2))
        if _SECRET_VALUE.search(created_by) and not any(f"history[{i}]" in x for x in hits):
            hits.append(f"history[{i}] carries a token-shaped value")
    return sorted(set(hits))


def trivy_secrets(data: Any) -> list[str]:
    """Secrets Trivy's secret scanner found: file, line and rule of each (matches redacted)."""
    out = []
    artifact = str((data or {}).get("ArtifactName", ""))
    for res in (data or {}).get("Results") or []:
        if not isinstance(res, dict) or res.get("Class") != "secret":
            continue
        target = str(res.get("Target", "?"))
        # A result on the artifact itself is the image's config (ENV, history), not a file in a layer.
        where = "image config" if target == artifact else "/" + target.lstrip("/")
        for s in res.get("Secrets") or []:
            out.append(f"{where}:{s.get('StartLine', 0)} {s.get('RuleID', '?')}")
    return out


# --------------------------------------------------------------------------- secrets in layers


def scan_stage_secrets(artifacts: Path, image_id: str) -> tuple[list[str], str] | None:
    """The latest `pipelines scan` of exactly this image ID, when it found secrets.

    Only a finding is taken from there: a scan result without secrets does not
    say whether the secret scanner ran (scan.scanners may leave it out), so
    that is never read as a pass.
    """
    latest = artifacts / "scan" / "latest"
    files = sorted(latest.glob("*.trivy.json")) if latest.is_dir() else []
    stamps = []
    for raw in files:
        try:
            st = raw.stat()
        except OSError:
            continue
        stamps.append((str(raw), st.st_size, st.st_mtime_ns, st.st_ino))
    return _scan_stage_findings(tuple(stamps)).get(image_id)


@functools.lru_cache(maxsize=4)
def _scan_stage_findings(stamps: tuple[tuple[str, int, int, int], ...]) -> dict[str, tuple[list[str], str]]:
    """Image ID -> (secrets, evidence) of the scan results named (with size, mtime, inode) in ``stamps``.

    Read once per verify run, not once per image (each result is hundreds of kB
    of JSON); a result file that changed has other stamps, so it is read again.
    """
    out: dict[str, tuple[list[str], str]] = {}
    for name, *_ in stamps:
        raw = Path(name)
        try:
            data = json.loads(raw.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        # Keyed on the image ID Trivy reports having read, never on the file's name: a result of another image
        # (or of none) says nothing about this one.
        image_id = reported_image_id(data)
        found = trivy_secrets(data) if image_id else []
        if found and image_id not in out:
            out[image_id] = (found, f"pipelines scan: {raw} (trivy --scanners vuln,secret of this image ID)")
    return out


def cached_layer_secrets(cache: Path, image_id: str) -> list[str] | None:
    """The secrets a cached secret scan of ``image_id`` found; None (and the entry removed) when it is not one.

    The cache lives under the artifacts directory, which anyone with the
    workspace can write and CI uploads: an entry counts only when it is a
    Trivy result that names this very image ID (a forged ``{}``, another
    image's result or a torn write is discarded, and the image scanned again).
    """
    try:
        data = json.loads(cache.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if reported_image_id(data) != image_id or not _secret_result_shape(data):
        cache.unlink(missing_ok=True)
        return None
    return trivy_secrets(data)


def _secret_result_shape(data: Any) -> bool:
    """Whether ``data`` has the shape of a Trivy result (Results, and each one's Secrets: lists of objects)."""
    results = data.get("Results") if isinstance(data, dict) else None
    if results is None:
        return isinstance(data, dict)
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        return False
    for r in results:
        found = r.get("Secrets")
        if found is not None and not (isinstance(found, list) and all(isinstance(x, dict) for x in found)):
            return False
    return True


def read_layer_secrets(out: Path, r: _proc.Result, name: str, image_id: str) -> Any:
    """Trivy's secret-scan result of ``image_id`` from the run ``r``; ScanError (exit 2) unless it is exactly that.

    A non-zero exit is a scan that did not finish, whatever file it left: it
    can say neither "no secret" nor "secret", so the stage cannot run.
    """
    data = read_result(out, f"trivy secret scan of {name}", r)
    check_image_id(data, name, image_id)
    if not _secret_result_shape(data):
        raise ScanError(
            f"trivy secret scan of {name} wrote JSON that is not a Trivy result (Results or Secrets not lists)",
            hint="check the pinned Trivy version; a result that cannot be read is a failure, never a pass",
        )
    return data


def layer_secrets(cfg: Config, t: Target, info: ImageInfo) -> tuple[list[str] | None, str]:
    """Trivy's secret scanner on exactly this image ID: (secrets, evidence); ScanError when it could not run."""
    from ..tools import TRIVY_QUIET, trivy_binary

    image_id = info.id.removeprefix("sha256:")
    found = scan_stage_secrets(cfg.project.artifacts, info.id)
    if found is not None:
        return found
    cache = cfg.project.artifacts / "verify" / "secrets" / f"{image_id}.json"
    cached = cached_layer_secrets(cache, info.id)
    if cached is not None:
        return cached, f"trivy image --scanners secret ({cache.name}, cached)"
    trivy, version = trivy_binary()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipelines-verify-") as tmp:
        tar = Path(tmp) / "image.tar"
        out = Path(tmp) / "secrets.json"
        _proc.run(
            ["docker", "save", "--output", str(tar), info.id], timeout=600, what=f"docker save {t.ref}", quiet=True
        )
        argv = [
            trivy,
            "image",
            "--input",
            str(tar),
            "--cache-dir",
            str(Path(tmp) / "cache"),
            "--cache-backend",
            "memory",
            "--skip-db-update",
            "--skip-java-db-update",
            "--offline-scan",
            *TRIVY_QUIET,
            "--scanners",
            "secret",
            "--format",
            "json",
            "--output",
            str(out),
        ]
        r = _proc.run(argv, timeout=600, check=False, quiet=True, what=f"trivy secret scan of {t.name}")
        data = read_layer_secrets(out, r, t.name, info.id)
        tmp_cache = cache.with_suffix(".tmp")
        tmp_cache.write_text(json.dumps(data))
        tmp_cache.replace(cache)
    return trivy_secrets(data), f"trivy {version} image --scanners secret (docker save {info.id[:19]})"
