"""Publish a vulnerability database as the OCI artifact Trivy downloads.

Trivy fetches its database from a registry (``--db-repository``): an OCI
image manifest whose config has the media type
``application/vnd.aquasec.trivy.config.v1+json`` and whose one layer,
``application/vnd.aquasec.trivy.db.layer.v1.tar+gzip``, is ``db.tar.gz``
(``trivy.db`` and ``metadata.json``), named by the layer's
``org.opencontainers.image.title`` annotation. Trivy refuses an artifact with
more than one layer or without that annotation.

:func:`push` writes exactly that through the registry's HTTP API (the OCI
distribution spec: blob upload, then the manifest), so an air-gapped site can
mirror one database into its own registry and every scan can pull it with
``scan.db_repositories``. Anonymous push only: registries that need
credentials are pushed to with the site's own tooling (oras, skopeo).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ...errors import EXIT_UNUSABLE, PipelineError
from ...registry import _scheme
from .dbinfo import read_info
from .layout import SCHEMA_VERSION

CONFIG_MEDIA_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TITLE = "db.tar.gz"
_TIMEOUT = 120.0


class PushError(PipelineError):
    """The registry did not accept the database."""

    exit_code = EXIT_UNUSABLE


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # path/name
    tag: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def base(self) -> str:
        return f"{_scheme(self.registry)}://{self.registry}/v2/{self.repository}"


def parse_reference(text: str) -> Reference:
    """REGISTRY/REPO[:TAG] (TAG defaults to Trivy's schema version, "2")."""
    registry, sep, rest = text.partition("/")
    if not sep or not rest or ("." not in registry and ":" not in registry and registry != "localhost"):
        raise PushError(
            f"{text!r} does not name a registry and repository",
            hint="give REGISTRY/REPOSITORY[:TAG], e.g. 127.0.0.1:5000/trivy-db:2",
        )
    repository, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    tag = tag or str(SCHEMA_VERSION)
    if not repository or repository != repository.lower() or "@" in rest:
        raise PushError(f"{text!r}: the repository must be lowercase and the reference a tag, not a digest")
    return Reference(registry, repository, tag)


def db_archive(cache_dir: Path) -> bytes:
    """db.tar.gz as Trivy unpacks it: trivy.db and metadata.json at the top, reproducible bytes."""
    read_info(cache_dir)  # a damaged database is never published
    buf = io.BytesIO()
    # mtime 0 and fixed owners: the same database always gives the same digest.
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name in ("trivy.db", "metadata.json"):
            data = (cache_dir / "db" / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def manifest(layer: bytes, config: bytes) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": _digest(config), "size": len(config)},
        "layers": [
            {
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": _digest(layer),
                "size": len(layer),
                "annotations": {"org.opencontainers.image.title": LAYER_TITLE},
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def push(cache_dir: Path, target: str) -> tuple[Reference, str]:
    """Publish the database under ``cache_dir`` as ``target``; the reference and the manifest digest."""
    ref = parse_reference(target)
    layer = db_archive(cache_dir)
    config = b"{}"
    for blob in (config, layer):
        _upload_blob(ref, blob)
    body = manifest(layer, config)
    _request(
        ref,
        "PUT",
        f"{ref.base}/manifests/{urllib.parse.quote(ref.tag)}",
        body,
        {"Content-Type": MANIFEST_MEDIA_TYPE},
        (201,),
    )
    return ref, _digest(body)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _upload_blob(ref: Reference, blob: bytes) -> None:
    digest = _digest(blob)
    if _request(ref, "HEAD", f"{ref.base}/blobs/{digest}", None, {}, (200, 404)).status == 200:
        return  # already there: registries share blobs by digest
    started = _request(ref, "POST", f"{ref.base}/blobs/uploads/", b"", {}, (202,))
    location = started.headers.get("Location", "")
    if not location:
        raise PushError(f"{ref.registry} started an upload without a Location header")
    url = urllib.parse.urljoin(f"{_scheme(ref.registry)}://{ref.registry}/", location)
    sep = "&" if "?" in url else "?"
    _request(
        ref,
        "PUT",
        f"{url}{sep}digest={urllib.parse.quote(digest)}",
        blob,
        {"Content-Type": "application/octet-stream"},
        (201,),
    )


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, str]


def _request(
    ref: Reference, method: str, url: str, body: bytes | None, headers: dict[str, str], ok: tuple[int, ...]
) -> _Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - the given registry
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:  # noqa: S310
            status, hdrs = resp.status, dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        status, hdrs = exc.code, dict(exc.headers.items())
        if status not in ok:
            detail = exc.read(2000).decode(errors="replace").strip()
            hint = (
                "the registry wants credentials: push with oras or skopeo after logging in"
                if status in (401, 403)
                else None
            )
            raise PushError(
                f"{ref.registry} refused {method} {urllib.parse.urlsplit(url).path}",
                seen=f"HTTP {status}: {detail}",
                hint=hint,
            ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise PushError(
            f"cannot reach the registry {ref.registry}",
            seen=f"{method} {url}: {getattr(exc, 'reason', exc)}",
            hint="check the address; plain HTTP is used for loopback registries only",
        ) from None
    if status not in ok:
        raise PushError(f"{ref.registry} answered {method} {urllib.parse.urlsplit(url).path} with HTTP {status}")
    return _Response(status, hdrs)
