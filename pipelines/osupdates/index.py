"""The suite's index fetched and verified, or a fresh cached copy of one; a stale cache is never used."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import lzma
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from .download import http_get
from .errors import OsUpdatesError
from .release import MAX_RELEASE_AGE, check_fresh, check_suite, parse_release, release_window, stale_problem
from .signature import verifier, verify_inrelease
from .suite import Available, Index, Suite, parse_packages

# What a cached index was checked with: an entry written by an older, weaker check is fetched again.
CHECKED = "gpgv-signed-text+valid-until+max-age/1"


def _cached_packages(d: Path) -> dict[str, list[Available]]:
    parsed = d / "packages.json"
    if parsed.is_file() and parsed.stat().st_mtime_ns >= (d / "Packages.xz").stat().st_mtime_ns:
        data = json.loads(parsed.read_text())
        return {n: [Available(**a) for a in avail] for n, avail in data.items()}
    packages = parse_packages(lzma.decompress((d / "Packages.xz").read_bytes()).decode(), str(d / "Packages.xz"))
    _save_parsed(d, packages)
    return packages


def _save_parsed(d: Path, packages: Mapping[str, list[Available]]) -> None:
    """The parsed index beside the verified file (newer than it), so a warm check need not parse again."""
    part = d / f"packages.json.part-{os.getpid()}"
    part.write_text(json.dumps({n: [dataclasses.asdict(a) for a in avail] for n, avail in packages.items()}))
    part.replace(d / "packages.json")


def cache_dir(cache: Path, suite: Suite) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{suite.mirror}_{suite.suite}_{suite.component}_{suite.arch}")
    return cache / "os-updates" / safe


def index_url(suite: Suite, inrelease: str, sha256: str) -> str:
    """Where to fetch the index the InRelease names: by its hash when the archive offers that (apt does too).

    A plain Packages.xz can be replaced between our InRelease and our download while the mirror
    updates; the by-hash copy of exactly the file this InRelease lists stays until the next updates.
    """
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    if str(deb822.Release(inrelease).get("Acquire-By-Hash", "")).strip().lower() == "yes":
        return f"{suite.dists}/{suite.component}/binary-{suite.arch}/by-hash/SHA256/{sha256}"
    return f"{suite.dists}/{suite.index_path}"


def fetch_index(
    suite: Suite,
    cache: Path,
    *,
    timeout: float = 60,
    max_age: dt.timedelta = dt.timedelta(hours=6),
    now: dt.datetime | None = None,
    max_release_age: dt.timedelta = MAX_RELEASE_AGE,
    gpgv: str | None = None,
) -> Index:
    """The suite's Packages index: a fresh cached copy, else downloaded and verified now.

    ``max_age`` bounds how long a downloaded index is reused; ``max_release_age`` how old the
    suite's signed Release may be dated (and it must not be past its Valid-Until), cached or not.
    ``now`` and ``gpgv`` (the path of the tool, else found on PATH) are for tests.
    """
    now = now or dt.datetime.now(dt.UTC)
    d = cache_dir(cache, suite)
    meta_path = d / "meta.json"
    start = time.monotonic()
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            fetched = dt.datetime.fromisoformat(meta["fetched_at"])
            release_date = dt.datetime.fromisoformat(meta["release_date"])
            valid_until = dt.datetime.fromisoformat(meta["valid_until"]) if meta["valid_until"] else None
            if (
                meta["checked"] == CHECKED
                and meta["keyring"] == str(suite.keyring)
                and now - fetched <= max_age
                and stale_problem(release_date, valid_until, now, max_release_age) is None
            ):
                packages = _cached_packages(d)
                return Index(
                    suite,
                    packages,
                    release_date,
                    fetched,
                    "cache",
                    str(meta["signature"]),
                    round(time.monotonic() - start, 2),
                )
        except (OSError, ValueError, KeyError, TypeError, lzma.LZMAError):
            pass  # a broken cache is fetched again, never trusted
    where = f"{suite.dists}/InRelease"
    verifier(suite.keyring, gpgv)  # before the download: without it nothing downloaded could be believed
    inrelease = http_get(where, timeout, limit=16 * 1024 * 1024)
    d.mkdir(parents=True, exist_ok=True)
    (d / "InRelease").write_bytes(inrelease)
    signature, signed = verify_inrelease(d / "InRelease", suite.keyring, gpgv=gpgv)
    # Everything below reads the signed text only.
    check_fresh(signed, where, now, max_release_age)
    check_suite(signed, where, suite.suite)
    release_date, sums = parse_release(signed, where)
    _, valid_until = release_window(signed, where)
    if suite.index_path not in sums:
        raise OsUpdatesError(
            f"{where} does not list {suite.index_path}",
            hint=f"check suite {suite.suite!r}, component and architecture",
        )
    want, size = sums[suite.index_path]
    url = index_url(suite, signed, want)
    raw = http_get(url, timeout)
    got = hashlib.sha256(raw).hexdigest()
    if got != want or len(raw) != size:
        raise OsUpdatesError(
            f"{suite.dists}/{suite.index_path} does not match its InRelease hash",
            seen=f"sha256 {got} ({len(raw)} bytes), InRelease says {want} ({size} bytes)",
            hint="the mirror may be mid-update; try again in a few minutes",
        )
    try:
        packages = parse_packages(lzma.decompress(raw).decode(), f"{suite.dists}/{suite.index_path}")
    except (lzma.LZMAError, UnicodeDecodeError) as exc:
        raise OsUpdatesError(f"{suite.dists}/{suite.index_path} is not a readable index ({exc})") from None

    if not packages:
        raise OsUpdatesError(f"{suite.dists}/{suite.index_path} lists no packages")
    if valid_until is not None:
        signature += f", valid until {valid_until:%Y-%m-%d %H:%M} UTC"
    (d / "Packages.xz").write_bytes(raw)
    _save_parsed(d, packages)
    meta_path.write_text(
        json.dumps(
            {
                "url": url,
                "fetched_at": now.isoformat(),
                "release_date": release_date.isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else None,
                "signature": signature,
                "checked": CHECKED,
                "keyring": str(suite.keyring),
            }
        )
    )
    return Index(suite, packages, release_date, now, "download", signature, round(time.monotonic() - start, 2))
