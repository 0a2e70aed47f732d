"""Pending security updates: parsers and version logic on written files and on this host's real Debian data.

The files under tests/data/os-updates/ were written by this project in the shapes of Debian's formats (see
SOURCES.md there). Real archive data (apt's signed InRelease files, dpkg's database, changelogs, .deb files)
is read in place from the Debian host the tests run on, never copied into the repository, and checked
against a reading of it apart from the code under test (gpgv, dpkg-query, dpkg-deb, dpkg --compare-versions).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import lzma
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from pipelines import osupdates
from pipelines.findings import Severity
from tests.harness import ROOT, host_file

WRITTEN = ROOT / "tests" / "data" / "os-updates"
APT_LISTS = Path("/var/lib/apt/lists")
APT_ARCHIVES = Path("/var/cache/apt/archives")
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_UPDATE = "run `apt-get update` on a Debian 12 host whose apt sources name bookworm, -updates and -security"
HOST_SUITES = ("bookworm", "bookworm-updates", "bookworm-security")


def host_inrelease(suite: str) -> Path:
    """The signed Release of ``suite`` as apt on this host last fetched it (provisioning runs `apt-get update`)."""
    archive = "debian-security" if suite.endswith("-security") else "debian"
    return host_file(APT_LISTS / f"deb.debian.org_{archive}_dists_{suite}_InRelease", APT_UPDATE)


def _release(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """(single-line fields, SHA256 list) of a clearsigned Release, read by hand rather than with python-debian."""
    text = path.read_text()
    signed = text.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    fields: dict[str, str] = {}
    sums: dict[str, tuple[str, int]] = {}
    section = ""
    for line in signed.splitlines():
        if line.startswith(" "):
            if section == "SHA256":
                sha, size, name = line.split()
                sums[name] = (sha, int(size))
            continue
        key, _, value = line.partition(":")
        section = key
        fields[key] = value.strip()
    return fields, sums


def _window(path: Path) -> tuple[dt.datetime, dt.datetime | None]:
    """Date and Valid-Until of an InRelease, read here apart from the code under test."""
    fields, _ = _release(path)
    until = fields.get("Valid-Until")
    return parsedate_to_datetime(fields["Date"]), parsedate_to_datetime(until) if until else None


SUITE = osupdates.Suite("http://deb.debian.org/debian-security", "bookworm-security")
# The written index's Release date: a date of this file's own, not of any real Release.
WRITTEN_DATE = dt.datetime(2099, 11, 14, 6, 0, 0, tzinfo=dt.UTC)
RELEASE_DATE = "%a, %d %b %Y %H:%M:%S UTC"  # how the archive writes Date and Valid-Until


def index() -> osupdates.Index:
    text = (WRITTEN / "Packages").read_text()
    return osupdates.Index(SUITE, osupdates.parse_packages(text), WRITTEN_DATE, WRITTEN_DATE, "written", "not checked")


def api_status() -> list[osupdates.Installed]:
    out = []
    for name in ("libc6", "libssl3", "libpython3.11-minimal", "tzdata"):
        out += osupdates.parse_status((WRITTEN / "status.d" / name).read_text(), whole_file_installed=True)
    return out


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        ("3.0.22-1~deb12u2", "3.0.20-1~deb12u2"),
        ("3.0.20-1~deb12u2", "3.0.20-1~deb12u1"),
        ("3.0.20-1", "3.0.20-1~deb12u2"),  # ~ sorts before everything, even the end
        ("3.11.2-6+deb12u9", "3.11.2-6+deb12u8"),
        ("3.11.2-6+deb12u10", "3.11.2-6+deb12u9"),  # numeric, not lexical
        ("1:1.2.13.dfsg-1", "1.3-1"),  # the epoch wins
        ("2.1.28+dfsg-10+deb12u1", "2.1.28+dfsg-10"),
        ("2026f-0+deb12u1", "2026b-0+deb12u1"),
        ("20250419~deb12u2", "20230311+deb12u1"),
    ],
)
def test_debian_version_order(newer: str, older: str) -> None:
    assert osupdates.is_newer(newer, older)
    assert not osupdates.is_newer(older, newer)
    assert not osupdates.is_newer(newer, newer)


def test_dpkg_status_of_a_minimal_rootfs() -> None:
    pkgs = osupdates.parse_status((WRITTEN / "status").read_text())
    by_name = {p.name: p for p in pkgs}
    # oldtool (removed, config files kept) and halfway (half-installed) are in the file but not installed.
    assert sorted(by_name) == ["adduser", "base-files", "libc6", "libgcc-s1", "libssl3", "tzdata", "zlib1g"]
    assert (by_name["libc6"].version, by_name["libc6"].source, by_name["libc6"].arch) == (
        "2.36-9+deb12u97",
        "glibc",
        "amd64",
    )
    assert by_name["libc6"].source_version == by_name["libc6"].version  # Source without a version
    assert (by_name["libgcc-s1"].source, by_name["libgcc-s1"].source_version) == ("gcc-12", "12.2.0-14")
    assert by_name["libgcc-s1"].version == "12.2.0-14+b1"  # a binNMU: not its source's version
    assert by_name["base-files"].source == "base-files"  # no Source field: the binary's own name
    assert by_name["zlib1g"].version == "1:1.2.13.dfsg-1"
    assert by_name["tzdata"].arch == "all"  # held, and installed


def _dpkg_query() -> list[tuple[str, str, str, str, str]]:
    """Installed packages as dpkg itself reads its database: (name, version, arch, source, source version)."""
    fmt = "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"
    r = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    return sorted((n, v, a, s, sv) for status, n, v, a, s, sv in rows if status == "installed")


def test_the_full_dpkg_status_of_this_host_reads_as_dpkg_query_reads_it() -> None:
    """Real data: this Debian host's whole dpkg database, every installed package as dpkg-query names it."""
    status = host_file("/var/lib/dpkg/status", "a Debian host has a dpkg database")
    host_file("/usr/bin/dpkg-query", "part of dpkg")
    pkgs = osupdates.parse_status(status.read_text())
    expected = _dpkg_query()
    assert expected, "dpkg-query lists no installed package"
    assert sorted((p.name, p.version, p.arch, p.source, p.source_version) for p in pkgs) == expected


def test_removed_packages_are_not_installed() -> None:
    """In the host's real status file, one installed package marked removed (config files kept) drops out."""
    whole = host_file("/var/lib/dpkg/status", "a Debian host has a dpkg database").read_text()
    text = "\n\n".join(whole.split("\n\n")[:60])  # its first paragraphs suffice here
    before = osupdates.parse_status(text)
    counts: dict[str, int] = {}
    for p in before:
        counts[p.name] = counts.get(p.name, 0) + 1
    name = next(
        m.group(1)
        for m in re.finditer(r"^Package: (\S+)\nStatus: install ok installed$", text, re.MULTILINE)
        if counts.get(m.group(1)) == 1
    )
    installed = f"Package: {name}\nStatus: install ok installed\n"
    removed = text.replace(installed, f"Package: {name}\nStatus: deinstall ok config-files\n")
    assert removed.count(f"Package: {name}\nStatus: deinstall ok config-files\n") == 1
    after = osupdates.parse_status(removed)
    assert name not in {p.name for p in after}
    assert len(after) == len(before) - 1


@pytest.mark.parametrize(("field", "value"), [("Version", "3.0.20-"), ("Source", "openssl (1:-1)")])
def test_a_version_dpkg_cannot_read_is_an_error_naming_the_package(field: str, value: str) -> None:
    raw = (WRITTEN / "status.d" / "libssl3").read_text()
    lines = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in raw.splitlines()]
    assert lines != raw.splitlines()
    with pytest.raises(osupdates.OsUpdatesError, match=r"api:status.d/libssl3: package libssl3: .* is not a Debian"):
        osupdates.parse_status("\n".join(lines) + "\n", where="api:status.d/libssl3", whole_file_installed=True)


def test_an_index_version_dpkg_cannot_read_is_an_error_naming_the_index() -> None:
    text = (WRITTEN / "Packages").read_text()
    version = next(line for line in text.splitlines() if line.startswith("Version: "))
    with pytest.raises(osupdates.OsUpdatesError, match=r"bookworm-security/main: package \S+: Version '1\.0-'"):
        osupdates.parse_packages(text.replace(version, "Version: 1.0-", 1), "bookworm-security/main")


def test_status_d_entry_without_status_counts_only_in_status_d() -> None:
    raw = (WRITTEN / "status.d" / "libssl3").read_text()
    stripped = "\n".join(line for line in raw.splitlines() if not line.startswith("Status:")) + "\n"
    assert stripped != raw
    assert osupdates.parse_status(stripped) == []
    [p] = osupdates.parse_status(stripped, whole_file_installed=True)
    assert (p.name, p.version, p.source) == ("libssl3", "3.0.11-1~deb12u2", "openssl")


def test_status_d_tar_from_the_engine_skips_md5sums() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("libssl3", "tzdata"):
            data = (WRITTEN / "status.d" / name).read_bytes()
            info = tarfile.TarInfo(f"status.d/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        junk = b"0123456789abcdef  usr/lib/x86_64-linux-gnu/libssl.so.3\n"
        info = tarfile.TarInfo("status.d/libssl3.md5sums")
        info.size = len(junk)
        tar.addfile(info, io.BytesIO(junk))
    pkgs = osupdates.parse_dpkg_tar(buf.getvalue(), "api:/var/lib/dpkg/status.d")
    assert sorted(p.name for p in pkgs) == ["libssl3", "tzdata"]


def test_the_index_is_fetched_by_hash_when_the_archive_offers_it() -> None:
    """A mirror mid-update replaces Packages.xz before its InRelease; the by-hash copy is the file it names."""
    path = host_inrelease("bookworm-security")
    fields, sums = _release(path)
    assert fields.get("Acquire-By-Hash") == "yes", f"{path} does not offer by-hash downloads"
    want, _ = sums["main/binary-amd64/Packages.xz"]
    text = path.read_text()
    assert osupdates.index_url(SUITE, text, want) == (
        f"http://deb.debian.org/debian-security/dists/bookworm-security/main/binary-amd64/by-hash/SHA256/{want}"
    )
    without = "\n".join(line for line in text.splitlines() if not line.startswith("Acquire-By-Hash"))
    assert without != text
    assert osupdates.index_url(SUITE, without, want).endswith("/dists/bookworm-security/main/binary-amd64/Packages.xz")


@pytest.mark.usefixtures("network")
def test_a_fresh_index_comes_by_hash_and_verifies(tmp_path: Path) -> None:
    index = osupdates.fetch_index(
        osupdates.Suite("http://deb.debian.org/debian-security", "bookworm-security"), tmp_path
    )
    assert index.origin == "download" and index.packages
    assert "/by-hash/SHA256/" in (next(tmp_path.rglob("meta.json"))).read_text()


@pytest.mark.parametrize("suite", HOST_SUITES)
def test_release_date_and_index_hashes(suite: str) -> None:
    path = host_inrelease(suite)
    fields, sums = _release(path)
    date, got = osupdates.parse_release(path.read_text(), "InRelease")
    assert date == parsedate_to_datetime(fields["Date"])
    assert "main/binary-amd64/Packages.xz" in sums
    assert got == sums


def _gpgv_good_signers(path: Path, keyring: Path) -> list[str]:
    """The user ids gpgv reports a good signature of, run here directly on the file."""
    r = subprocess.run(
        ["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return [line.split(" ", 3)[3] for line in r.stdout.splitlines() if line.startswith("[GNUPG:] GOODSIG ")]


@pytest.mark.parametrize("suite", HOST_SUITES)
def test_inrelease_signature(tmp_path: Path, suite: str) -> None:
    """Real signed Releases against the real archive keyring; one changed byte and the signature fails."""
    good = tmp_path / "InRelease"
    shutil.copy(host_inrelease(suite), good)
    keyring = host_file(DEBIAN_KEYRING, "apt-get install debian-archive-keyring")
    signers = _gpgv_good_signers(good, keyring)
    assert signers, f"gpgv finds no good signature on {host_inrelease(suite)}"
    statement, signed = osupdates.verify_inrelease(good)
    assert statement.startswith("InRelease signature verified with debian-archive-keyring.gpg")
    for signer in signers:
        assert signer in statement  # who signed it, from gpgv's status
    by_hand = good.read_text().split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    assert signed.rstrip("\n") == by_hand.rstrip("\n") and "BEGIN PGP" not in signed
    codename = _release(good)[0]["Codename"]
    bad = tmp_path / "InRelease.tampered"
    bad.write_text(good.read_text().replace(f"Codename: {codename}\n", f"Codename: {codename}x\n", 1))
    assert bad.read_text() != good.read_text()
    assert _gpgv_good_signers(bad, keyring) == []
    with pytest.raises(osupdates.OsUpdatesError, match="does not verify"):
        osupdates.verify_inrelease(bad)


def test_without_gpgv_or_the_keyring_the_index_check_cannot_run(tmp_path: Path) -> None:
    """Fail closed: never an index whose signature was not checked, with a note saying so."""
    good = tmp_path / "InRelease"
    good.write_text("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\n")
    with pytest.raises(osupdates.OsUpdatesError) as err:
        osupdates.verify_inrelease(good, tmp_path / "no-such-keyring.gpg")
    assert err.value.exit_code == 2
    assert f"the archive keyring {tmp_path / 'no-such-keyring.gpg'} does not exist" in err.value.what
    assert err.value.hint is not None and "apt-get install debian-archive-keyring" in err.value.hint
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(b"")
    with pytest.raises(osupdates.OsUpdatesError) as err:
        osupdates.verify_inrelease(good, keyring, gpgv=str(tmp_path / "bin" / "gpgv"))
    assert err.value.exit_code == 2
    assert err.value.what.startswith("gpgv is not installed")
    assert err.value.hint is not None and "apt-get install gpgv" in err.value.hint


def _serve(files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str], Callable[[], None]]:
    """A plain-HTTP mirror on 127.0.0.1 serving ``files`` (path -> body); 404 for anything else."""
    import http.server
    import threading

    asked: list[str] = []

    class Mirror(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = files.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/debian-security", asked, stop


def test_an_expired_release_replayed_over_http_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real, validly signed InRelease served after its Valid-Until: the replay of an old index."""
    path = host_inrelease("bookworm-security")
    date, valid_until = _window(path)
    assert valid_until is not None, f"{path} declares no Valid-Until"
    _, sums = _release(path)
    want, _ = sums["main/binary-amd64/Packages.xz"]
    mirror, asked, stop = _serve({"/debian-security/dists/bookworm-security/InRelease": path.read_bytes()}, monkeypatch)
    suite = osupdates.Suite(mirror, "bookworm-security")
    try:
        with pytest.raises(osupdates.OsUpdatesError, match=f"expired at {valid_until:%Y-%m-%d %H:%M} UTC") as err:
            osupdates.fetch_index(suite, tmp_path / "late", now=valid_until + dt.timedelta(minutes=1))
        assert err.value.exit_code == 2 and "not used" in err.value.what
        assert asked == ["/debian-security/dists/bookworm-security/InRelease"]  # the index was never fetched
        # Inside its window the same file is believed, and the index it names is what is asked for next.
        with pytest.raises(osupdates.OsUpdatesError, match=rf"cannot fetch .*/by-hash/SHA256/{want}"):
            osupdates.fetch_index(suite, tmp_path / "in-time", now=date + dt.timedelta(days=1))
    finally:
        stop()


def test_a_release_dated_before_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Release without Valid-Until (bookworm-updates), dated more than a week ago, replayed over HTTP."""
    path = host_inrelease("bookworm-updates")
    date, valid_until = _window(path)
    assert valid_until is None
    mirror, _, stop = _serve({"/debian-security/dists/bookworm-updates/InRelease": path.read_bytes()}, monkeypatch)
    try:
        old = date + dt.timedelta(days=7, hours=1)
        with pytest.raises(osupdates.OsUpdatesError, match="more than 7 days before now"):
            osupdates.fetch_index(osupdates.Suite(mirror, "bookworm-updates"), tmp_path, now=old)
    finally:
        stop()


def test_another_suites_signed_release_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bookworm-updates' real, current Release served as bookworm-security's: signed by the same archive."""
    updates = host_inrelease("bookworm-updates")
    date, _ = _window(updates)
    fields, _ = _release(updates)
    names = " / ".join(sorted({fields["Codename"], fields["Suite"]}))
    mirror, asked, stop = _serve(
        {"/debian-security/dists/bookworm-security/InRelease": updates.read_bytes()}, monkeypatch
    )
    try:
        with pytest.raises(
            osupdates.OsUpdatesError, match=re.escape(f"is the Release of {names}, not of bookworm-security")
        ):
            osupdates.fetch_index(
                osupdates.Suite(mirror, "bookworm-security"), tmp_path, now=date + dt.timedelta(hours=1)
            )
    finally:
        stop()
    assert asked == ["/debian-security/dists/bookworm-security/InRelease"]
    # The security Release answers to its codename and to its suite name alike, and to no other suite.
    security = host_inrelease("bookworm-security")
    fields, _ = _release(security)
    text = security.read_text()
    osupdates.check_suite(text, "InRelease", fields["Codename"])
    osupdates.check_suite(text, "InRelease", fields["Suite"])
    with pytest.raises(osupdates.OsUpdatesError, match="not of bookworm-updates"):
        osupdates.check_suite(text, "InRelease", "bookworm-updates")


def test_the_date_bound_holds_inside_valid_until_and_a_future_date_is_refused() -> None:
    path = host_inrelease("bookworm-security")
    text = path.read_text()
    date, valid_until = _window(path)
    assert valid_until is not None, f"{path} declares no Valid-Until"
    three_days = date + dt.timedelta(days=3)
    assert three_days < valid_until
    osupdates.check_fresh(text, "InRelease", three_days)  # the default bound: a week
    with pytest.raises(osupdates.OsUpdatesError, match="more than 2 days before now"):
        osupdates.check_fresh(text, "InRelease", three_days, dt.timedelta(days=2))
    with pytest.raises(osupdates.OsUpdatesError, match="in the future") as err:
        osupdates.check_fresh(text, "InRelease", date - dt.timedelta(hours=1))
    assert err.value.hint == "check this host's clock"


def test_unsigned_text_around_the_signed_release_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gpgv verifies the clearsigned message and ignores text before it; that text must not be the Release.

    The forged paragraph in front of a real signed InRelease names a fresh Date and the hash of a
    forged index in which the vulnerable libssl3 is the newest version (nothing pending).
    """
    path = host_inrelease("bookworm-security")
    real = path.read_text()
    date, _ = _window(path)
    forged_index = lzma.compress(b"Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n\n")
    sha = hashlib.sha256(forged_index).hexdigest()
    fresh = (date + dt.timedelta(days=30)).strftime(RELEASE_DATE)
    forged = f"Origin: Debian\nDate: {fresh}\nSHA256:\n {sha} {len(forged_index)} main/binary-amd64/Packages.xz\n\n"
    mirror, _, stop = _serve(
        {
            "/debian-security/dists/bookworm-security/InRelease": (forged + real).encode(),
            "/debian-security/dists/bookworm-security/main/binary-amd64/Packages.xz": forged_index,
        },
        monkeypatch,
    )
    try:
        with pytest.raises(osupdates.OsUpdatesError, match="is not a single clearsigned message"):
            osupdates.fetch_index(
                osupdates.Suite(mirror, "bookworm-security"), tmp_path, now=date + dt.timedelta(days=30)
            )
    finally:
        stop()
    appended = tmp_path / "appended"
    appended.write_text(real + f"\nDate: {fresh}\n")
    with pytest.raises(osupdates.OsUpdatesError, match="text after -----END PGP SIGNATURE-----"):
        osupdates.verify_inrelease(appended)
    twice = tmp_path / "twice"
    twice.write_text(real + real)
    with pytest.raises(osupdates.OsUpdatesError, match="occurs 2 times"):
        osupdates.verify_inrelease(twice)


def test_a_cached_index_past_its_valid_until_is_fetched_again(tmp_path: Path) -> None:
    """A cache entry is reused only while its Release is valid and it was checked by this version."""
    suite = osupdates.Suite("http://127.0.0.1:9/debian-security", "bookworm-security")
    d = osupdates.cache_dir(tmp_path, suite)
    d.mkdir(parents=True)
    (d / "Packages.xz").write_bytes(lzma.compress((WRITTEN / "Packages").read_bytes()))
    date, valid_until = WRITTEN_DATE, WRITTEN_DATE + dt.timedelta(days=7)
    meta = {
        "fetched_at": (valid_until - dt.timedelta(hours=1)).isoformat(),
        "release_date": date.isoformat(),
        "valid_until": valid_until.isoformat(),
        "signature": "InRelease signature verified",
        "checked": osupdates.CHECKED,
        "keyring": str(suite.keyring),
    }
    (d / "meta.json").write_text(json.dumps(meta))
    cached = osupdates.fetch_index(suite, tmp_path, now=valid_until - dt.timedelta(minutes=30))
    assert cached.origin == "cache" and cached.packages == osupdates.parse_packages((WRITTEN / "Packages").read_text())
    with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch http://127\.0\.0\.1:9/"):
        osupdates.fetch_index(suite, tmp_path, now=valid_until + dt.timedelta(minutes=1), max_age=dt.timedelta(1))
    # An entry from the check that let an unsigned index through is not reused either.
    (d / "meta.json").write_text(json.dumps({**meta, "checked": None, "signature": "NOT verified"}))
    with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch http://127\.0\.0\.1:9/"):
        osupdates.fetch_index(suite, tmp_path, now=valid_until - dt.timedelta(minutes=30))


class ThrowawayArchive:
    """A signing key of this test run's own (in a temporary GnuPG home) and the keyring holding its public half."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.keyring = home / "archive-keyring.gpg"
        self.uid = "Pipelines Test Archive Signing Key <archive@example.invalid>"
        self._gpg("--quick-generate-key", self.uid, "ed25519", "sign", "never")
        self._gpg("--output", str(self.keyring), "--export", self.uid)

    def _gpg(self, *args: str) -> None:
        base = ["gpg", "--batch", "--homedir", str(self.home), "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run([*base, *args], capture_output=True, timeout=120, check=True)

    def clearsign(self, text: str) -> bytes:
        (self.home / "Release").write_text(text)
        out = self.home / "InRelease"
        out.unlink(missing_ok=True)
        self._gpg("--digest-algo", "SHA512", "--output", str(out), "--clearsign", str(self.home / "Release"))
        return out.read_bytes()


@pytest.fixture(scope="module")
def throwaway_archive() -> Iterator[ThrowawayArchive]:
    import tempfile

    host_file(shutil.which("gpg") or "/usr/bin/gpg", "apt-get install gnupg")
    # A short path: gpg-agent's socket lives in the home, and socket paths are limited to about 100 bytes.
    home = Path(tempfile.mkdtemp(prefix="gpg-"))
    home.chmod(0o700)
    try:
        yield ThrowawayArchive(home)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def _release_text(suite: str, date: dt.datetime, valid_until: dt.datetime, index: bytes) -> str:
    sha = hashlib.sha256(index).hexdigest()
    return (
        f"Origin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\nCodename: {suite}\n"
        f"Date: {date.strftime(RELEASE_DATE)}\nValid-Until: {valid_until.strftime(RELEASE_DATE)}\n"
        "Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nDescription: written for the tests\n"
        f"SHA256:\n {sha} {len(index)} main/binary-amd64/Packages.xz\n"
    )


def test_a_release_signed_by_the_configured_keyring_brings_its_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_archive: ThrowawayArchive
) -> None:
    """The whole download: a Release signed with a key of this run, its index by hash, parsed; then its replay.

    The keyring is the one the suite names (the `keyring` of a rootfs image); Debian's keyring does not
    vouch for this key, so the same suite without it is refused.
    """
    packages = (WRITTEN / "Packages").read_bytes()
    xz = lzma.compress(packages)
    until = WRITTEN_DATE + dt.timedelta(days=7)
    inrelease = throwaway_archive.clearsign(_release_text("bookworm-security", WRITTEN_DATE, until, xz))
    by_hash = (
        f"/debian-security/dists/bookworm-security/main/binary-amd64/by-hash/SHA256/{hashlib.sha256(xz).hexdigest()}"
    )
    files = {"/debian-security/dists/bookworm-security/InRelease": inrelease, by_hash: xz}
    mirror, asked, stop = _serve(files, monkeypatch)
    suite = osupdates.Suite(mirror, "bookworm-security", keyring=throwaway_archive.keyring)
    try:
        got = osupdates.fetch_index(suite, tmp_path / "a", now=WRITTEN_DATE + dt.timedelta(days=1))
        assert got.origin == "download" and asked[-1] == by_hash
        assert got.packages == osupdates.parse_packages(packages.decode())
        assert throwaway_archive.uid.split(" <")[0] in got.signature
        assert f"valid until {until:%Y-%m-%d %H:%M} UTC" in got.signature
        with pytest.raises(osupdates.OsUpdatesError, match=f"expired at {until:%Y-%m-%d %H:%M} UTC"):
            osupdates.fetch_index(suite, tmp_path / "b", now=until + dt.timedelta(minutes=1))
        files[by_hash] = lzma.compress(packages + b"\n")
        with pytest.raises(osupdates.OsUpdatesError, match="does not match its InRelease hash"):
            osupdates.fetch_index(suite, tmp_path / "c", now=WRITTEN_DATE + dt.timedelta(days=1))
        debian = host_file(DEBIAN_KEYRING, "apt-get install debian-archive-keyring")
        with pytest.raises(osupdates.OsUpdatesError, match="does not verify"):
            osupdates.fetch_index(
                osupdates.Suite(mirror, "bookworm-security", keyring=debian),
                tmp_path / "d",
                now=WRITTEN_DATE + dt.timedelta(days=1),
            )
    finally:
        stop()


def test_index_newest_and_source_versions() -> None:
    idx = index()
    assert idx.newest("libssl3", "amd64").version == "3.0.13-1~deb12u1"  # type: ignore[union-attr]
    # Four linux-source versions are in the suite at once; the newest counts, by Debian's order, not the text's.
    assert len(idx.packages["linux-source"]) == 4
    assert idx.newest("linux-source", "amd64").version == "6.1.192-2"  # type: ignore[union-attr]
    headers = idx.packages["linux-headers-6.12-amd64"][0]
    assert (headers.source, headers.source_version) == ("linux-signed-6.12-amd64", "6.12.99+1~deb12u1")
    assert headers.version == "6.12.99-1~deb12u1"
    assert idx.newest("libssl3", "arm64") is None
    assert idx.newest("tzdata", "amd64").arch == "all"  # type: ignore[union-attr]


def test_pending_updates_of_the_api_image() -> None:
    found = {p.package: p for p in osupdates.pending("api", api_status(), index())}
    assert set(found) == {"libssl3", "libpython3.11-minimal", "tzdata"}  # libc6 is not in the suite
    assert (found["libssl3"].installed, found["libssl3"].fixed) == ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1")
    assert found["libpython3.11-minimal"].fixed == "3.11.2-6+deb12u10"  # u10 after u8: numeric, not lexical
    assert found["libpython3.11-minimal"].source == "python3.11"


def test_nothing_pending_when_installed_is_current() -> None:
    current = [
        osupdates.Installed("libssl3", "3.0.13-1~deb12u1", "amd64", "openssl", "3.0.13-1~deb12u1"),
        osupdates.Installed("libssl3-newer-local", "9", "amd64", "x", "9"),
    ]
    assert osupdates.pending("x", current, index()) == []


def _changelog_gz(name: str) -> bytes:
    """A written changelog, gzip'd as a package ships it in /usr/share/doc/PKG/changelog.Debian.gz."""
    return gzip.compress((WRITTEN / name).read_bytes())


def test_cves_since_the_installed_openssl() -> None:
    text = gzip.decompress(_changelog_gz("openssl.changelog")).decode()
    # Newest entry first; an id named again in an older entry counts once; the installed entry's own are fixed.
    assert osupdates.cves_since(text, "3.0.11-1~deb12u2") == [
        "CVE-2099-0131",
        "CVE-2099-0132",
        "CVE-2099-0133",
        "CVE-2099-0121",
        "CVE-2099-0122",
    ]
    assert osupdates.cves_since(text, "3.0.11-1~deb12u3") == [
        "CVE-2099-0131",
        "CVE-2099-0132",
        "CVE-2099-0133",
        "CVE-2099-0121",
    ]
    assert "CVE-2099-0091" not in osupdates.cves_since(text, "3.0.9-1")
    assert "CVE-2099-0111" in osupdates.cves_since(text, "3.0.9-1")
    assert osupdates.cves_since(text, "3.0.13-1~deb12u1") == []


def test_cves_since_the_installed_python() -> None:
    text = gzip.decompress(_changelog_gz("python3.11.changelog")).decode()
    assert osupdates.cves_since(text, "3.11.2-6+deb12u9") == ["CVE-2099-1101", "CVE-2099-1102"]
    assert osupdates.cves_since(text, "3.11.2-6+deb12u8") == ["CVE-2099-1101", "CVE-2099-1102", "CVE-2099-1091"]
    older = osupdates.cves_since(text, "3.11.2-6+deb12u7")
    assert set(osupdates.cves_since(text, "3.11.2-6+deb12u8")) < set(older)


def _dpkg_newer(a: str, b: str) -> bool:
    r = subprocess.run(["dpkg", "--compare-versions", a, "gt", b], capture_output=True, timeout=30, check=False)
    return r.returncode == 0


HEADER = r"^\S+ \(([^)]+)\) "  # an entry's first line: "source (version) distributions; urgency=..."


def _entries(text: str) -> list[tuple[str, list[str]]]:
    """(version, CVE ids in order) of each changelog entry, split by hand at its `source (version) ...` line."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        head = re.match(HEADER, line)
        if head:
            out.append((head.group(1), []))
        elif out:
            out[-1][1].extend(re.findall(r"\bCVE-\d{4}-\d{4,}\b", line))
    return out


def _cves_by_dpkg(entries: list[tuple[str, list[str]]], floor: str) -> list[str]:
    seen: dict[str, None] = {}
    for version, cves in entries:
        if _dpkg_newer(version, floor):
            seen.update(dict.fromkeys(c for c in cves if c not in seen))
    return list(seen)


def test_cves_since_a_version_in_this_hosts_real_libc6_changelog() -> None:
    """Real data: glibc's changelog as the host's libc6 ships it, ordered by dpkg's own version comparison."""
    whole = gzip.decompress(host_file("/usr/share/doc/libc6/changelog.Debian.gz").read_bytes()).decode()
    host_file("/usr/bin/dpkg", "part of dpkg")
    first = next(i for i, (_, cves) in enumerate(_entries(whole)) if cves)
    # The newest entries down to a dozen below the newest CVE: dpkg compares each, one process a comparison.
    heads = [m.start() for m in re.finditer(HEADER, whole, re.MULTILINE)]
    text = whole[: heads[first + 12]] if first + 12 < len(heads) else whole
    entries = _entries(text)
    # The floor: the first entry below at least one entry naming a CVE, so that something is pending.
    assert first + 1 < len(entries), "the changelog has no entry below its newest CVE"
    floor = entries[first + 1][0]
    expected = _cves_by_dpkg(entries, floor)
    assert expected
    assert osupdates.cves_since(text, floor) == expected
    assert osupdates.cves_since(text, entries[0][0]) == _cves_by_dpkg(entries, entries[0][0])


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    """An ar archive, the .deb container: a global header, then a 60-byte header per member, padded to even."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _tar(entries: list[tuple[str, bytes | str]]) -> bytes:
    """A tar of (path, file content or symlink target str)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, body in entries:
            info = tarfile.TarInfo(path)
            if isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _deb(data: list[tuple[str, bytes | str]], compression: str = "xz") -> bytes:
    control = gzip.compress(_tar([("./control", b"Package: x\nVersion: 1\nArchitecture: all\n")]))
    raw = _tar(data)
    pack: dict[str, Callable[[bytes], bytes]] = {"xz": lzma.compress, "gz": gzip.compress, "": bytes}
    packed = pack[compression](raw)
    name = f"data.tar.{compression}" if compression else "data.tar"
    return _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", control), (name, packed)])


@pytest.mark.parametrize("compression", ["xz", "gz", ""])
def test_changelog_from_a_deb(compression: str) -> None:
    changelog = _changelog_gz("openssl.changelog")
    deb = _deb(
        [("./usr/share/doc/libssl3/changelog.Debian.gz", changelog), ("./usr/lib/libssl.so.3", b"\x7fELF")], compression
    )
    text, other = osupdates.deb_changelog_text(deb, "libssl3")
    assert other is None and text == (WRITTEN / "openssl.changelog").read_text()
    assert osupdates.deb_changelog_text(deb, "openssl") == (None, None)  # another package's doc dir


def test_doc_dir_symlink_points_at_the_package_with_the_changelog() -> None:
    deb = _deb([("./usr/share/doc/python3.11-full", "python3.11"), ("./usr/bin/x", b"")])
    assert osupdates.deb_changelog_text(deb, "python3.11-full") == (None, "python3.11")


def _cached_debs() -> Iterator[Path]:
    """The host's cached .deb files, smallest first (apt keeps what it installed unless cleaned)."""
    yield from sorted(APT_ARCHIVES.glob("*.deb"), key=lambda p: p.stat().st_size)


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def _doc_layout(deb: Path) -> tuple[str, str | None, bool]:
    """(package, doc dir symlink target, has its own changelog.Debian.gz) as dpkg-deb lists the .deb."""
    package = _out("dpkg-deb", "--field", str(deb), "Package").strip()
    listing = _out("dpkg-deb", "--contents", str(deb))
    link, own = None, False
    for line in listing.splitlines():
        path = line.split(None, 5)[-1]
        if path.startswith(f"./usr/share/doc/{package} -> "):
            link = path.split(" -> ", 1)[1]
        own = own or path == f"./usr/share/doc/{package}/changelog.Debian.gz"
    return package, link, own


OwnChangelog = tuple[Path, str]  # the .deb, its package
LinkedDocs = tuple[Path, str, str]  # the .deb, its package, where its doc dir links


def _pick_real_debs(debs: Iterator[Path]) -> tuple[OwnChangelog | None, LinkedDocs | None]:
    """A .deb with its own changelog and one whose doc dir is a symlink, as dpkg-deb lists them."""
    host_file("/usr/bin/dpkg-deb", "part of dpkg")
    own: OwnChangelog | None = None
    link: LinkedDocs | None = None
    for deb in debs:
        package, target, has_changelog = _doc_layout(deb)
        if has_changelog and own is None:
            own = (deb, package)
        if target and link is None:
            link = (deb, package, target)
        if own and link:
            break
    return own, link


def _check_real_debs(tmp_path: Path, own: OwnChangelog, link: LinkedDocs) -> None:
    """The changelog read out of the .deb is the one dpkg-deb extracts; the symlink names the other package."""
    deb, package = own
    out = tmp_path / "x"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(out)], capture_output=True, timeout=120, check=True)
    expected = gzip.decompress((out / "usr/share/doc" / package / "changelog.Debian.gz").read_bytes()).decode()
    assert osupdates.deb_changelog_text(deb.read_bytes(), package) == (expected, None)
    deb, package, target = link
    assert osupdates.deb_changelog_text(deb.read_bytes(), package) == (None, Path(target).name)


def test_changelogs_from_real_debs_in_the_apt_cache(tmp_path: Path) -> None:
    """Real data: .deb files apt cached on this host.

    What a cache holds depends on the host's history (and a cleaned one holds nothing), so without a fitting
    .deb this skips; the network test below, which CI runs, downloads its own.
    """
    own, link = _pick_real_debs(itertools.islice(_cached_debs(), 300))
    if own is None or link is None:
        pytest.skip(f"{APT_ARCHIVES} holds no .deb with its own changelog and one whose doc dir is a symlink")
    _check_real_debs(tmp_path, own, link)


@pytest.mark.usefixtures("network")
def test_changelogs_from_real_debs_downloaded_by_apt(tmp_path: Path) -> None:
    """Real data: .debs as the archive serves them today, fetched by apt (own changelog; doc dir a symlink)."""
    host_file("/usr/bin/apt-get", "part of apt")
    # libsasl2-modules-db ships its own changelog; libpython3.11-stdlib's doc dir links to libpython3.11-minimal's.
    for package in ("libsasl2-modules-db", "libpython3.11-stdlib"):
        subprocess.run(["apt-get", "download", package], cwd=tmp_path, capture_output=True, timeout=300, check=True)
    own, link = _pick_real_debs(iter(sorted(tmp_path.glob("*.deb"))))
    assert own is not None, "libsasl2-modules-db's .deb has no changelog.Debian.gz of its own"
    assert link is not None, "libpython3.11-stdlib's doc dir is not a symlink"
    _check_real_debs(tmp_path, own, link)


def test_not_a_deb_is_refused() -> None:
    with pytest.raises(ValueError, match="not an ar archive"):
        osupdates.deb_changelog_text(b"PK\x03\x04 a zip file", "x")


@pytest.mark.parametrize(("mode", "severity"), [("fail", Severity.ERROR), ("warn", Severity.WARNING)])
def test_finding_names_package_versions_and_cves(mode: str, severity: Severity) -> None:
    p = osupdates.Pending(
        "api", "libssl3", "amd64", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "openssl", "3.0.20-1~deb12u2",
        "3.0.22-1~deb12u2", ("CVE-2026-84782", "CVE-2026-35189"),
    )  # fmt: skip
    f = osupdates.as_finding(p, mode, SUITE.label)
    assert f.severity == severity
    assert (f.tool, f.rule) == (osupdates.TOOL, osupdates.RULE)
    extra = dict(f.extra)
    assert extra["package"] == "libssl3" and extra["image"] == "api"
    assert extra["fixed"] == "3.0.22-1~deb12u2"
    assert extra["cves"] == "CVE-2026-84782,CVE-2026-35189"
    assert "CVE-2026-84782" in f.message and "bookworm-security" in f.message


def test_unreachable_mirror_fails_closed_even_with_a_stale_cache(tmp_path: Path) -> None:
    suite = osupdates.Suite("http://127.0.0.1:9/debian-security", "bookworm-security")
    d = osupdates.cache_dir(tmp_path, suite)
    d.mkdir(parents=True)
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    (d / "meta.json").write_text(
        json.dumps({"fetched_at": old.isoformat(), "release_date": old.isoformat(), "signature": "x"})
    )
    (d / "Packages.xz").write_bytes(b"")
    with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch http://127\.0\.0\.1:9/"):
        osupdates.fetch_index(suite, tmp_path, timeout=5)


def test_scan_gate_takes_fail_mode_findings_only(tmp_path: Path) -> None:
    from pipelines import scan

    p = osupdates.Pending(
        "api", "libssl3", "amd64", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "openssl", "3.0.20-1~deb12u2",
        "3.0.22-1~deb12u2", ("CVE-2026-84782",),
    )  # fmt: skip

    def outcome(*findings: object) -> scan.Outcome:
        return scan.Outcome("dev", "db", "HIGH", False, [], [], list(findings), ["db"], tmp_path)  # type: ignore[arg-type]

    failing = osupdates.as_finding(p, "fail", "bookworm-security")
    warning = osupdates.as_finding(p, "warn", "bookworm-security")
    assert outcome(failing).gated() == [failing]
    assert outcome(warning).gated() == []
    assert outcome(failing.waive("security/waivers.yaml:3", "reason")).gated() == []


def test_security_suite_from_the_config_or_the_rootfs_default(tmp_path: Path) -> None:
    from pipelines import config
    from tests.config.test_config import project

    minimal = '[project]\nname = "x"\n[registry]\naddress = "r:5000"\n[services.web]\ncontext = "services/web"\n'
    cfg = config.load(project(tmp_path / "a", minimal + "[environments.dev]\n"))
    [default] = osupdates.security_suites(cfg.images.values())
    assert (default.mirror, default.suite) == ("http://deb.debian.org/debian-security", "bookworm-security")
    only_release = minimal + '[images.debian]\nkind = "rootfs"\nsuites = ["bookworm"]\n[environments.dev]\n'
    cfg = config.load(project(tmp_path / "b", only_release))
    assert osupdates.security_suites(cfg.images.values()) == []
    assert osupdates.for_scan(cfg.images.values(), "off", tmp_path, 5, [("web", "x")])[0] == []
    with pytest.raises(osupdates.OsUpdatesError, match="list no security suite"):
        osupdates.for_scan(cfg.images.values(), "fail", tmp_path, 5, [("web", "x")])


@pytest.mark.parametrize(
    ("case", "image_key", "expected"),
    [
        (
            "index-unreachable",
            "security_mirror = 'http://127.0.0.1:9/debian-security'",
            ["error: cannot fetch http://127.0.0.1:9/debian-security/dists/bookworm-security/InRelease"],
        ),
        (
            "no-keyring",
            "keyring = '{tmp}/gone.gpg'",
            [
                "error: the archive keyring {tmp}/gone.gpg does not exist",
                "hint: apt-get install debian-archive-keyring",
            ],
        ),
    ],
)
def test_scan_stops_with_exit_2_when_the_index_cannot_be_had_or_checked(
    tmp_path: Path, tools: object, case: str, image_key: str, expected: list[str]
) -> None:
    import os

    from tests.harness import docker, run_cli, shared_advisories

    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /x\n")
    image = f"pipelines-tests/os-index-{case}:{os.getpid()}"
    docker("buildx", "build", "--load", "--tag", image, str(tmp_path / "svc"), timeout=300)
    (tmp_path / "pipeline.toml").write_text(
        "[project]\nname = 'x'\n[registry]\naddress = '127.0.0.1:5000'\n"
        f"[images.debian]\nkind = 'rootfs'\n{image_key.format(tmp=tmp_path)}\n"
        "[services.svc]\ncontext = 'svc'\n[environments.dev]\n[scan]\ndb_sources = ['bundle']\n"
        f"offline_advisories = '{shared_advisories()}'\n"
    )
    try:
        r = run_cli("--config", str(tmp_path / "pipeline.toml"), "scan", image)
    finally:
        docker("image", "rm", "-f", image, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    for line in expected:
        assert line.format(tmp=tmp_path) in r.stderr, r.stderr[-2000:]
    assert "NOT verified" not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("paragraph", "message"),
    [
        ("Package: libssl3\nArchitecture: amd64\n", "package libssl3 has no Version field"),
        ("Package: libssl3\nVersion: 3.0.1-1\nSize: lots\n", "package libssl3: Size 'lots' is not a number"),
    ],
)
def test_an_index_paragraph_it_cannot_read_is_an_error_naming_the_package(paragraph: str, message: str) -> None:
    with pytest.raises(osupdates.OsUpdatesError, match=message) as err:
        osupdates.parse_packages(paragraph, "the index")
    assert err.value.exit_code == 2 and "the index" in err.value.what
