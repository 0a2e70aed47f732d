"""The CVE ids a pending update fixes, from the Debian changelog inside the fixed version's .deb."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import re
import tarfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from debian.debian_support import Version

from .download import http_get
from .errors import OsUpdatesError
from .index import cache_dir
from .suite import Index
from .updates import Pending

CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b")


def cves_since(text: str, installed_source_version: str) -> list[str]:
    """CVE ids named by changelog entries newer than the installed (source) version, in order."""
    from debian import changelog as deb_changelog  # here: only pending updates need a changelog

    log = deb_changelog.Changelog(text, strict=False)
    floor = Version(installed_source_version)
    seen: dict[str, None] = {}
    for block in log:
        if block.version is None or block.version <= floor:
            continue
        for line in block.changes():
            for cve in CVE.findall(line):
                seen.setdefault(cve, None)
    return list(seen)


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an ar archive (the .deb container format)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        out[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def deb_changelog_text(deb: bytes, package: str) -> tuple[str | None, str | None]:
    """(changelog text, None) from a .deb, or (None, other package) when its doc dir links elsewhere."""
    members = _ar_members(deb)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise ValueError("no data.tar member")
    raw = members[data_name]
    if data_name.endswith(".xz"):
        raw = lzma.decompress(raw)
    elif data_name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif data_name != "data.tar":
        raise ValueError(f"unsupported compression: {data_name}")
    doc = f"usr/share/doc/{package}"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        by_name = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        link = by_name.get(doc)
        if link is not None and link.issym():
            return None, Path(link.linkname).name
        for candidate in ("changelog.Debian.gz", "changelog.gz"):
            m = by_name.get(f"{doc}/{candidate}")
            if m is not None and m.isfile():
                f = tar.extractfile(m)
                if f is not None:
                    return gzip.decompress(f.read()).decode("utf-8", "replace"), None
    return None, None


def changelog_for(index: Index, p: Pending, cache: Path, timeout: float) -> tuple[str, str]:
    """(changelog text, .deb URL) of the fixed version, downloaded once and cached by source version."""
    d = cache_dir(cache, index.suite) / "changelogs"
    cached = d / f"{p.source}_{p.source_fixed}.txt"
    url_file = cached.with_suffix(".url")
    if cached.is_file() and url_file.is_file():
        return cached.read_text(), url_file.read_text()
    name = p.package
    for _ in range(3):  # doc dirs link at most one step in practice; bound it anyway
        a = index.newest(name, p.arch)
        if a is None or not a.filename:
            break
        url = f"{index.suite.mirror.rstrip('/')}/{a.filename}"
        deb = http_get(url, timeout)
        if a.sha256 and hashlib.sha256(deb).hexdigest() != a.sha256:
            raise OsUpdatesError(f"{url} does not match the index's SHA256")
        try:
            text, other = deb_changelog_text(deb, a.name)
        except (ValueError, tarfile.TarError, lzma.LZMAError, OSError) as exc:
            raise OsUpdatesError(f"cannot read {url} ({exc})") from None
        if text is not None:
            d.mkdir(parents=True, exist_ok=True)
            cached.write_text(text)
            url_file.write_text(url)
            return text, url
        if other is None:
            break
        name = other
    raise OsUpdatesError(
        f"no Debian changelog found for {p.package} {p.fixed}",
        hint="the CVE ids of this update cannot be named; the finding stands without them",
    )


def with_cves(items: Sequence[Pending], index: Index, cache: Path, timeout: float) -> list[Pending]:
    out = []
    for p in items:
        try:
            text, url = changelog_for(index, p, cache, timeout)
            out.append(replace(p, cves=tuple(cves_since(text, p.source_installed)), changelog=url))
        except OsUpdatesError as exc:
            out.append(replace(p, changelog=f"unavailable: {exc.what}"))
    return out
