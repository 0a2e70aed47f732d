"""Pending Debian security updates: installed OS packages against the security suite's index.

Every image carries a dpkg database: ``/var/lib/dpkg/status`` on a full Debian
image, one file per package under ``/var/lib/dpkg/status.d`` on the distroless
runtime. Each installed binary package is compared with what the configured
security suite (``bookworm-security``) offers now, by Debian's version
ordering (python-debian, never by hand). A newer version there is a pending
security update; the CVE ids come from the newer package's own Debian
changelog (read out of its .deb), entries newer than the installed version.

The index is fetched over HTTP with a timeout and trusted only through the
suite's InRelease: its signature must verify with gpgv against the archive
keyring (no gpgv or no keyring: the check cannot run, exit 2), only the text
gpgv says was signed is read, the Release must be this suite's (Codename or
Suite), must not be expired (Valid-Until) nor dated more than a week ago, and
the index must match the hash it lists.
Plain HTTP is fine on those terms, as it is for apt: a mirror, or anyone on
the path, can withhold the newest index but can neither alter one nor replay
an old one past its validity. It is cached with its fetch time, and a stale
cache is never used: when no fresh index can be had the check fails, like the
vulnerability database does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from pathlib import Path

from debian.debian_support import Version

from . import _proc
from .config import DEBIAN_KEYRING, Image
from .debversion import debian_version_cmp, is_debian_version
from .errors import PipelineError
from .findings import Finding, Severity

TOOL = "os-updates"
RULE = "PL-U001"  # a pending security update; waivable by rule + image + package like any scan finding
MODES = ("fail", "warn", "off")
KEYRING = DEBIAN_KEYRING
# The security archive signs its Release valid for 7 days (Valid-Until = Date + 7 days) and re-signs it
# within that; an older Date is a stalled mirror or a replayed index, and "nothing pending" from it
# would be a false pass. Also the bound for a Release that declares no Valid-Until at all.
MAX_RELEASE_AGE = dt.timedelta(days=7)
CLOCK_SKEW = dt.timedelta(minutes=10)  # a Release dated further ahead means this host's clock is wrong
# What a cached index was checked with: an entry written by an older, weaker check is fetched again.
CHECKED = "gpgv-signed-text+valid-until+max-age/1"
_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"
STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
USER_AGENT = "pipelines-os-updates"
MAX_DEB_BYTES = 200 * 1024 * 1024


class OsUpdatesError(PipelineError):
    """The pending-update check could not produce a trustworthy answer."""

    exit_code = 2


class NoDpkgData(OsUpdatesError):
    """The image has no dpkg database: it has no Debian packages to check (e.g. a static binary on scratch)."""


# --------------------------------------------------------------------------- installed packages


@dataclass(frozen=True, order=True)
class Installed:
    name: str
    version: str
    arch: str
    source: str  # source package name (the binary's own name when dpkg records none)
    source_version: str  # what the changelog's versions are compared with

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "source": self.source}


def _source_of(para: Mapping[str, str]) -> tuple[str, str]:
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
        source, source_version = _source_of(para)
        _check_version(where, para["Package"], para["Version"], source_version)
        out.append(Installed(para["Package"], para["Version"], para.get("Architecture", ""), source, source_version))
    return out


def _check_version(where: str, package: str, version: str, source_version: str) -> None:
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
    from .engine import Engine, ImageNotFound

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


# --------------------------------------------------------------------------- the suite index


@dataclass(frozen=True)
class Suite:
    mirror: str  # e.g. http://deb.debian.org/debian-security
    suite: str  # e.g. bookworm-security
    component: str = "main"
    arch: str = "amd64"
    keyring: Path = KEYRING  # what its InRelease must be signed with

    @property
    def dists(self) -> str:
        return f"{self.mirror.rstrip('/')}/dists/{self.suite}"

    @property
    def index_path(self) -> str:
        return f"{self.component}/binary-{self.arch}/Packages.xz"

    @property
    def label(self) -> str:
        return f"{self.suite} {self.component}/{self.arch} ({self.mirror})"


@dataclass(frozen=True)
class Available:
    name: str
    version: str
    arch: str
    source: str
    source_version: str
    filename: str  # relative to the mirror
    sha256: str
    size: int


@dataclass
class Index:
    suite: Suite
    packages: dict[str, list[Available]]
    release_date: dt.datetime  # the suite's own Date (InRelease)
    fetched_at: dt.datetime
    origin: str  # download | cache
    signature: str  # what was checked about InRelease
    fetch_seconds: float = 0.0

    def newest(self, name: str, arch: str) -> Available | None:
        """The newest version of ``name`` for ``arch`` (or arch all) the suite offers."""
        best: Available | None = None
        for a in self.packages.get(name, []):
            if arch and a.arch not in (arch, "all"):
                continue
            if best is None or debian_version_cmp(a.version, best.version) > 0:
                best = a
        return best

    def statement(self) -> str:
        return (
            f"OS updates index: {self.suite.label}, Release dated {self.release_date:%Y-%m-%d %H:%M} UTC, "
            f"fetched {self.fetched_at:%Y-%m-%d %H:%M:%S} UTC ({self.origin}), "
            f"{sum(len(v) for v in self.packages.values())} packages, {self.signature}"
        )


def _release_time(value: str) -> dt.datetime:
    when = parsedate_to_datetime(value)
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return when.astimezone(dt.UTC)


def release_window(text: str, where: str) -> tuple[dt.datetime, dt.datetime | None]:
    """The Date and the Valid-Until (None when the Release declares none) of a Release."""
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    try:
        date = _release_time(rel["Date"])
    except (KeyError, TypeError, ValueError):
        raise OsUpdatesError(f"{where} has no valid Date field", seen=text[:300]) from None
    if "Valid-Until" not in rel:
        return date, None
    try:
        return date, _release_time(rel["Valid-Until"])
    except (TypeError, ValueError):
        raise OsUpdatesError(f"{where} has an unreadable Valid-Until field", seen=rel["Valid-Until"]) from None


def stale_problem(
    date: dt.datetime,
    valid_until: dt.datetime | None,
    now: dt.datetime,
    max_age: dt.timedelta = MAX_RELEASE_AGE,
) -> str | None:
    """Why a Release with this Date and Valid-Until must not be believed at ``now``; None when it may."""
    if valid_until is not None and now > valid_until:
        return f"expired at {valid_until:%Y-%m-%d %H:%M} UTC (its Valid-Until); now is {now:%Y-%m-%d %H:%M} UTC"
    if now - date > max_age:
        return f"dated {date:%Y-%m-%d %H:%M} UTC, more than {_span(max_age)} before now ({now:%Y-%m-%d %H:%M} UTC)"
    if date - now > CLOCK_SKEW:
        return f"dated {date:%Y-%m-%d %H:%M} UTC, in the future (now is {now:%Y-%m-%d %H:%M} UTC)"
    return None


def _span(d: dt.timedelta) -> str:
    return f"{d.days} days" if d.days and d == dt.timedelta(days=d.days) else f"{d.total_seconds() / 3600:g} hours"


def check_fresh(text: str, where: str, now: dt.datetime, max_age: dt.timedelta = MAX_RELEASE_AGE) -> None:
    """Refuse a signed Release that is expired or too old: it may be an old index replayed."""
    date, valid_until = release_window(text, where)
    problem = stale_problem(date, valid_until, now, max_age)
    if problem is None:
        return
    future = date > now
    raise OsUpdatesError(
        f"{where} is {problem}; an old signed index may be replayed, so it is not used",
        hint="check this host's clock"
        if future
        else "the mirror serves an outdated index (a stalled mirror, a proxy cache, or a replay): use an "
        "up-to-date security_mirror, or try again later",
    )


def check_suite(text: str, where: str, suite: str) -> None:
    """Refuse the signed Release of another suite served at this suite's address.

    Every suite of the archive is signed with the same keys: without this, an attacker on the path
    could answer for bookworm-security with a current bookworm-updates Release, whose index holds none
    of the security fixes, and every image would look up to date.
    """
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    names = sorted({str(rel.get(k, "")).strip() for k in ("Codename", "Suite")} - {""})
    if suite not in names:
        raise OsUpdatesError(
            f"{where} is the Release of {' / '.join(names) or 'an unnamed suite'}, not of {suite}",
            hint="the mirror serves another suite's index at this address (misconfigured, or substituted); "
            "check security_mirror and suites in the config",
        )


def parse_release(text: str, where: str) -> tuple[dt.datetime, dict[str, tuple[str, int]]]:
    """The Date and the SHA256 list of an InRelease/Release file."""
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    rel = deb822.Release(text)
    date, _ = release_window(text, where)
    sums = {str(e["name"]): (str(e["sha256"]), int(e["size"])) for e in rel.get("SHA256", [])}
    if not sums:
        raise OsUpdatesError(f"{where} lists no SHA256 sums", seen=text[:300])
    return date, sums


def parse_packages(text: str, where: str = "Packages index") -> dict[str, list[Available]]:
    from debian import deb822  # here: parsing is for a cold cache; a warm stage reads JSON

    out: dict[str, list[Available]] = {}
    for para in deb822.Packages.iter_paragraphs(text, use_apt_pkg=False):
        if "Package" not in para:
            continue
        if "Version" not in para:
            raise OsUpdatesError(f"{where}: package {para['Package']} has no Version field")
        source, source_version = _source_of(para)
        _check_version(where, para["Package"], para["Version"], source_version)
        size = para.get("Size", "0") or "0"
        if not size.isdigit():
            raise OsUpdatesError(f"{where}: package {para['Package']}: Size {size!r} is not a number of bytes")
        a = Available(
            para["Package"],
            para["Version"],
            para.get("Architecture", ""),
            source,
            source_version,
            para.get("Filename", ""),
            para.get("SHA256", ""),
            int(size),
        )
        out.setdefault(a.name, []).append(a)
    return out


def _get(url: str, timeout: float, limit: int = MAX_DEB_BYTES) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise OsUpdatesError(f"{url} is not an http(s) URL", hint="the mirror in the config must be http(s)://...")
    # Only http(s), checked above: the S310 audit is satisfied.
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            data: bytes = resp.read(limit + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OsUpdatesError(f"cannot fetch {url}", seen=str(exc), hint="check the mirror in the config") from None
    if len(data) > limit:
        raise OsUpdatesError(f"{url} is larger than {limit} bytes")
    return data


def verify_inrelease(path: Path, keyring: Path = KEYRING, *, gpgv: str | None = None) -> tuple[str, str]:
    """(what was checked, the signed text) of an InRelease whose signature gpgv verifies against ``keyring``.

    Fails closed: without gpgv or the keyring nothing about the index can be trusted, so the check
    cannot run. Only the text gpgv reports as signed is returned, and the file must be one clearsigned
    message and nothing else: gpgv ignores text around the message, and a Release paragraph put in
    front of a genuine signed one would otherwise be what is read.
    """
    tool = verifier(keyring, gpgv)
    text = path.read_bytes().decode("utf-8", "replace")
    framing = _framing_problem(text)
    if framing:
        raise OsUpdatesError(
            f"{path.name} is not a single clearsigned message: {framing}",
            hint="the mirror (or something on the way) serves altered data; check the mirror in the config",
        )
    # The signed text on stdout, gpgv's machine-readable status (with its messages) on stderr.
    r = _proc.run(
        [tool, "--status-fd", "2", "--keyring", str(keyring.absolute()), "--output", "-", str(path)],
        timeout=60,
        check=False,
        quiet=True,
    )
    status = [line.split()[1:] for line in r.stderr.splitlines() if line.startswith("[GNUPG:] ")]
    words = [s[0] for s in status if s]
    # GOODSIG is a good signature by an unexpired, unrevoked key of the keyring (gpgv reports those as
    # EXPKEYSIG/REVKEYSIG). One is enough, as for apt: a second signature by a key this keyring does not
    # have yet (a key rotation) must not fail the check; a bad signature always does.
    good = [" ".join(s[2:]) for s in status if s and s[0] == "GOODSIG"]
    if not good or "VALIDSIG" not in words or "BADSIG" in words or not r.stdout.strip():
        raise OsUpdatesError(
            f"the signature of {path.name} does not verify against {keyring}",
            seen=_proc.tail(r.stderr or r.stdout, 8),
            hint="the mirror may be serving altered data; check the mirror in the config",
        )
    return f"InRelease signature verified with {keyring.name} ({'; '.join(good)})", r.stdout


def verifier(keyring: Path = KEYRING, gpgv: str | None = None) -> str:
    """gpgv's path, when it and the keyring are here; else the check cannot run (exit 2), never a note."""
    tool = gpgv if gpgv is not None else shutil.which("gpgv")
    if tool is None or not Path(tool).is_file():
        raise OsUpdatesError(
            f"gpgv is not installed{f' ({tool} does not exist)' if tool else ''}: "
            "the security index's signature cannot be checked",
            hint="apt-get install gpgv debian-archive-keyring (the OS updates check never uses an unsigned index)",
        )
    if not keyring.is_file():
        raise OsUpdatesError(
            f"the archive keyring {keyring} does not exist: the security index's signature cannot be checked",
            hint="apt-get install debian-archive-keyring, or set `keyring` of the rootfs image in the config "
            "to the keyring that signs your mirror",
        )
    return tool


def _framing_problem(text: str) -> str | None:
    """What is wrong with the armor of a clearsigned file, or None for exactly one message."""
    if not text.startswith(_SIGNED_BEGIN + "\n") and not text.startswith(_SIGNED_BEGIN + "\r\n"):
        return f"it does not start with {_SIGNED_BEGIN}"
    for marker in (_SIGNED_BEGIN, _SIGNATURE_BEGIN, _SIGNATURE_END):
        if text.count(marker) != 1:
            return f"{marker} occurs {text.count(marker)} times"
    if text.index(_SIGNATURE_BEGIN) > text.index(_SIGNATURE_END) or text.split(_SIGNATURE_END, 1)[1].strip():
        return f"there is text after {_SIGNATURE_END}"
    return None


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


def _cache_dir(cache: Path, suite: Suite) -> Path:
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
    d = _cache_dir(cache, suite)
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
    inrelease = _get(where, timeout, limit=16 * 1024 * 1024)
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
    raw = _get(url, timeout)
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


# --------------------------------------------------------------------------- comparison and changelogs


def is_newer(candidate: str, installed: str) -> bool:
    """Debian version ordering (epochs, ~, revisions) by python-debian."""
    return debian_version_cmp(candidate, installed) > 0


@dataclass(frozen=True)
class Pending:
    image: str
    package: str
    arch: str
    installed: str
    fixed: str
    source: str
    source_installed: str
    source_fixed: str
    cves: tuple[str, ...] = ()
    changelog: str = ""  # where the CVE ids were read


def pending(image: str, installed: Iterable[Installed], index: Index) -> list[Pending]:
    out = []
    for p in installed:
        a = index.newest(p.name, p.arch)
        if a is not None and is_newer(a.version, p.version):
            out.append(
                Pending(image, p.name, p.arch, p.version, a.version, a.source, p.source_version, a.source_version)
            )
    return out


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
    d = _cache_dir(cache, index.suite) / "changelogs"
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
        deb = _get(url, timeout)
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


# --------------------------------------------------------------------------- findings


def as_finding(p: Pending, mode: str, suite: str) -> Finding:
    cves = ", ".join(p.cves) if p.cves else "no CVE id named in the changelog"
    return Finding(
        TOOL,
        RULE,
        Severity.ERROR if mode == "fail" else Severity.WARNING,
        f"{p.image}: {p.package} {p.installed} has a security update {p.fixed} in {suite} ({cves})",
        p.image,
        hint="rebuild the golden bases (`pipelines build --refresh-bases`) and the images on them",
        extra=(
            ("image", p.image),
            ("package", p.package),
            ("installed", p.installed),
            ("fixed", p.fixed),
            ("kind", "os-update"),
            ("source", p.source),
            ("cves", ",".join(p.cves)),
            ("suite", suite),
            ("changelog", p.changelog),
        ),
    )


@dataclass
class CheckResult:
    index: Index
    pending: list[Pending] = field(default_factory=list)
    packages: dict[str, int] = field(default_factory=dict)  # image -> packages checked
    seconds: dict[str, float] = field(default_factory=dict)  # image -> check time
    no_dpkg: list[str] = field(default_factory=list)  # images without a dpkg database

    def statement(self) -> str:
        n = sum(self.packages.values())
        out = (
            f"{self.index.statement()}; {n} OS packages in {len(self.packages)} images checked, "
            f"{len(self.pending)} pending security updates"
        )
        if self.no_dpkg:
            out += f"; NOT checked (no dpkg database): {', '.join(self.no_dpkg)}"
        return out


def check_images(
    images: Mapping[str, str],
    suite: Suite,
    cache: Path,
    *,
    timeout: float = 60,
    max_age: dt.timedelta = dt.timedelta(hours=6),
    index: Index | None = None,
) -> CheckResult:
    """Pending security updates of every image (name -> reference), with the CVE ids they fix."""
    index = index or fetch_index(suite, cache, timeout=timeout, max_age=max_age)
    res = CheckResult(index)
    for name, ref in images.items():
        start = time.monotonic()
        try:
            pkgs = image_packages(ref, cache)
        except NoDpkgData:
            res.no_dpkg.append(name)
            continue
        found = pending(name, pkgs, index)
        res.pending += with_cves(found, index, cache, timeout)
        res.packages[name] = len(pkgs)
        res.seconds[name] = round(time.monotonic() - start, 2)
    if images and not res.packages:
        # Not one image had Debian packages: "nothing pending" would be a pass on nothing.
        raise NoDpkgData(
            f"none of the images has a dpkg database: {', '.join(images)}",
            hint='set scan.os_updates = "off" for images without Debian packages',
        )
    return res


# --------------------------------------------------------------------------- config


def host_arch() -> str:
    """Debian's name for this machine's architecture (the images are built for it)."""
    import platform

    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


DEFAULT_SUITE = Suite("http://deb.debian.org/debian-security", "bookworm-security")


def security_suites(images: Iterable[Image]) -> list[Suite]:
    """The security suites the rootfs images' apt sources name, once each.

    A config without a rootfs image gets the one a rootfs image gets by
    default (bookworm-security); the report names it like any other.
    """
    images = list(images)
    out: dict[tuple[str, str], Suite] = {}
    for img in images:
        if img.kind != "rootfs":
            continue
        for s in img.suites:
            if s.endswith("-security"):
                out.setdefault(
                    (img.security_mirror, s), Suite(img.security_mirror, s, arch=host_arch(), keyring=img.keyring)
                )
    if not out and not any(img.kind == "rootfs" for img in images):
        return [Suite(DEFAULT_SUITE.mirror, DEFAULT_SUITE.suite, arch=host_arch())]
    return list(out.values())


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


def for_scan(
    images: Iterable[Image], mode: str, cache: Path, timeout: float, targets: Sequence[tuple[str, str]]
) -> tuple[list[Finding], list[str]]:
    """The scan stage's findings and report lines: every target image against every security suite."""
    if mode == "off":
        return [], ['OS updates: NOT checked (scan.os_updates = "off")']
    suites = security_suites(images)
    if not suites:
        raise OsUpdatesError(
            "scan.os_updates is on, but the rootfs image's `suites` list no security suite",
            hint='add e.g. suites = ["bookworm", "bookworm-updates", "bookworm-security"], or set scan.os_updates',
        )
    findings: list[Finding] = []
    notes: list[str] = []
    for suite in suites:
        res = check_images(dict(targets), suite, cache, timeout=timeout)
        findings += [as_finding(p, mode, suite.suite) for p in res.pending]
        notes.append(res.statement() + ("" if mode == "fail" else " (warn only)"))
        per_image = ", ".join(f"{n} {s:.1f}s" for n, s in res.seconds.items())
        notes.append(f"OS updates timing: index {res.index.fetch_seconds:.1f}s ({res.index.origin}), {per_image}")
    return findings, notes
