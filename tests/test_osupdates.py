"""Pending security updates: parsers and version logic on recorded real archive files.

The inputs under tests/data/recorded/os-updates/ were copied from Debian's
archive and from images this project built (see SOURCES.md there).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import osupdates
from pipelines.findings import Severity

DATA = Path(__file__).parent / "data" / "recorded" / "os-updates"
# bookworm-updates' current signed Release, as apt on this host last fetched it: real archive data read in
# place, never copied into the repository (provisioning runs `apt-get update`, so CI has it).
HOST_UPDATES = Path("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm-updates_InRelease")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _data(name: str) -> Path:
    if name != "bookworm-updates.InRelease":
        return DATA / name
    if not HOST_UPDATES.is_file():
        message = f"{HOST_UPDATES} is missing: run `apt-get update` on a Debian 12 host with bookworm-updates"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return HOST_UPDATES


SUITE = osupdates.Suite("http://deb.debian.org/debian-security", "bookworm-security")


def index() -> osupdates.Index:
    text = (DATA / "bookworm-security.Packages.excerpt").read_text()
    when = dt.datetime(2026, 11, 21, 0, 53, 2, tzinfo=dt.UTC)
    return osupdates.Index(SUITE, osupdates.parse_packages(text), when, when, "recorded", "not checked")


def api_status() -> list[osupdates.Installed]:
    out = []
    for name in ("libc6", "libssl3", "libpython3.11-minimal", "tzdata"):
        out += osupdates.parse_status((DATA / f"api.status.d.{name}").read_text(), whole_file_installed=True)
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


def test_full_dpkg_status_of_the_minbase_rootfs() -> None:
    pkgs = osupdates.parse_status((DATA / "debian-minbase.status").read_text())
    assert len(pkgs) == 88
    by_name = {p.name: p for p in pkgs}
    assert by_name["libc6"].version == "2.36-9+deb12u14"
    assert by_name["libc6"].source == "glibc"
    assert by_name["libc6"].arch == "amd64"
    assert by_name["base-files"].source == "base-files"  # no Source field: the binary's own name


def test_removed_packages_are_not_installed() -> None:
    text = (DATA / "debian-minbase.status").read_text()
    removed = text.replace(
        "Package: adduser\nStatus: install ok installed", "Package: adduser\nStatus: deinstall ok config-files"
    )
    assert removed != text
    names = {p.name for p in osupdates.parse_status(removed)}
    assert "adduser" not in names
    assert len(names) == 87


@pytest.mark.parametrize(("field", "value"), [("Version", "3.0.20-"), ("Source", "openssl (1:-1)")])
def test_a_version_dpkg_cannot_read_is_an_error_naming_the_package(field: str, value: str) -> None:
    raw = (DATA / "api.status.d.libssl3").read_text()
    lines = [f"{field}: {value}" if line.startswith(f"{field}:") else line for line in raw.splitlines()]
    assert lines != raw.splitlines()
    with pytest.raises(osupdates.OsUpdatesError, match=r"api:status.d/libssl3: package libssl3: .* is not a Debian"):
        osupdates.parse_status("\n".join(lines) + "\n", where="api:status.d/libssl3", whole_file_installed=True)


def test_an_index_version_dpkg_cannot_read_is_an_error_naming_the_index() -> None:
    text = (DATA / "bookworm-security.Packages.excerpt").read_text()
    version = next(line for line in text.splitlines() if line.startswith("Version: "))
    with pytest.raises(osupdates.OsUpdatesError, match=r"bookworm-security/main: package \S+: Version '1\.0-'"):
        osupdates.parse_packages(text.replace(version, "Version: 1.0-", 1), "bookworm-security/main")


def test_status_d_entry_without_status_counts_only_in_status_d() -> None:
    raw = (DATA / "api.status.d.libssl3").read_text()
    stripped = "\n".join(line for line in raw.splitlines() if not line.startswith("Status:")) + "\n"
    assert osupdates.parse_status(stripped) == []
    [p] = osupdates.parse_status(stripped, whole_file_installed=True)
    assert (p.name, p.version, p.source) == ("libssl3", "3.0.20-1~deb12u2", "openssl")


def test_status_d_tar_from_the_engine_skips_md5sums() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("libssl3", "tzdata"):
            data = (DATA / f"api.status.d.{name}").read_bytes()
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
    suite = osupdates.Suite("http://deb.debian.org/debian-security", "bookworm-security")
    text = (DATA / "bookworm-security.InRelease").read_text()
    want = "8575ec1f224d635ce30646a2a1388bee267a7f37fae3f997687643c9ebb8fb43"
    assert osupdates.index_url(suite, text, want) == (
        f"http://deb.debian.org/debian-security/dists/bookworm-security/main/binary-amd64/by-hash/SHA256/{want}"
    )
    without = "\n".join(line for line in text.splitlines() if not line.startswith("Acquire-By-Hash"))
    assert osupdates.index_url(suite, without, want).endswith("/dists/bookworm-security/main/binary-amd64/Packages.xz")


@pytest.mark.usefixtures("network")
def test_a_fresh_index_comes_by_hash_and_verifies(tmp_path: Path) -> None:
    index = osupdates.fetch_index(
        osupdates.Suite("http://deb.debian.org/debian-security", "bookworm-security"), tmp_path
    )
    assert index.origin == "download" and index.packages
    assert "/by-hash/SHA256/" in (next(tmp_path.rglob("meta.json"))).read_text()


def test_release_date_and_index_hash() -> None:
    date, sums = osupdates.parse_release((DATA / "bookworm-security.InRelease").read_text(), "InRelease")
    assert date == dt.datetime(2026, 11, 21, 0, 53, 2, tzinfo=dt.UTC)
    assert sums["main/binary-amd64/Packages.xz"] == (
        "8575ec1f224d635ce30646a2a1388bee267a7f37fae3f997687643c9ebb8fb43",
        378100,
    )


def test_inrelease_signature(tmp_path: Path) -> None:
    good = tmp_path / "InRelease"
    shutil.copy(DATA / "bookworm-security.InRelease", good)
    statement, signed = osupdates.verify_inrelease(good)
    assert statement.startswith("InRelease signature verified with debian-archive-keyring.gpg")
    assert "(12/bookworm)" in statement  # who signed it, from gpgv's status
    assert signed.startswith("Origin: Debian\n") and "BEGIN PGP" not in signed
    bad = tmp_path / "InRelease.tampered"
    bad.write_text(good.read_text().replace("Codename: bookworm-security", "Codename: bookworm-securitx"))
    with pytest.raises(osupdates.OsUpdatesError, match="does not verify"):
        osupdates.verify_inrelease(bad)


def test_without_gpgv_or_the_keyring_the_index_check_cannot_run(tmp_path: Path) -> None:
    """Fail closed: never an index whose signature was not checked, with a note saying so."""
    good = tmp_path / "InRelease"
    shutil.copy(DATA / "bookworm-security.InRelease", good)
    with pytest.raises(osupdates.OsUpdatesError) as err:
        osupdates.verify_inrelease(good, tmp_path / "no-such-keyring.gpg")
    assert err.value.exit_code == 2
    assert f"the archive keyring {tmp_path / 'no-such-keyring.gpg'} does not exist" in err.value.what
    assert err.value.hint is not None and "apt-get install debian-archive-keyring" in err.value.hint
    with pytest.raises(osupdates.OsUpdatesError) as err:
        osupdates.verify_inrelease(good, gpgv=str(tmp_path / "bin" / "gpgv"))
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


def _window(name: str) -> tuple[dt.datetime, dt.datetime | None]:
    """Date and Valid-Until of a recorded InRelease, read here apart from the code under test."""
    from email.utils import parsedate_to_datetime

    from debian import deb822

    rel = deb822.Release(_data(name).read_text())
    until = rel.get("Valid-Until")
    return parsedate_to_datetime(rel["Date"]), parsedate_to_datetime(until) if until else None


def test_an_expired_release_replayed_over_http_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real, validly signed InRelease served after its Valid-Until: the replay of an old index."""
    date, valid_until = _window("bookworm-security.InRelease")
    assert valid_until == dt.datetime(2026, 11, 28, 0, 53, 2, tzinfo=dt.UTC)
    inrelease = (DATA / "bookworm-security.InRelease").read_bytes()
    mirror, asked, stop = _serve({"/debian-security/dists/bookworm-security/InRelease": inrelease}, monkeypatch)
    suite = osupdates.Suite(mirror, "bookworm-security")
    try:
        with pytest.raises(osupdates.OsUpdatesError, match="expired at 2026-11-28 00:53 UTC") as err:
            osupdates.fetch_index(suite, tmp_path / "late", now=valid_until + dt.timedelta(minutes=1))
        assert err.value.exit_code == 2 and "not used" in err.value.what
        assert asked == ["/debian-security/dists/bookworm-security/InRelease"]  # the index was never fetched
        # Inside its window the same file is believed, and the index it names is what is asked for next.
        with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch .*/by-hash/SHA256/8575ec1f"):
            osupdates.fetch_index(suite, tmp_path / "in-time", now=date + dt.timedelta(days=1))
    finally:
        stop()


def test_a_release_dated_before_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Release without Valid-Until (bookworm-updates), dated more than a week ago, replayed over HTTP."""
    date, valid_until = _window("bookworm-updates.InRelease")
    assert valid_until is None
    inrelease = _data("bookworm-updates.InRelease").read_bytes()
    mirror, _, stop = _serve({"/debian-security/dists/bookworm-updates/InRelease": inrelease}, monkeypatch)
    try:
        old = date + dt.timedelta(days=7, hours=1)
        with pytest.raises(osupdates.OsUpdatesError, match="more than 7 days before now"):
            osupdates.fetch_index(osupdates.Suite(mirror, "bookworm-updates"), tmp_path, now=old)
    finally:
        stop()


def test_another_suites_signed_release_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bookworm-updates' real, current Release served as bookworm-security's: signed by the same archive."""
    date, _ = _window("bookworm-updates.InRelease")
    inrelease = _data("bookworm-updates.InRelease").read_bytes()
    mirror, asked, stop = _serve({"/debian-security/dists/bookworm-security/InRelease": inrelease}, monkeypatch)
    try:
        with pytest.raises(
            osupdates.OsUpdatesError, match="is the Release of bookworm-updates / oldstable-updates, not of bookworm-s"
        ):
            osupdates.fetch_index(
                osupdates.Suite(mirror, "bookworm-security"), tmp_path, now=date + dt.timedelta(hours=1)
            )
    finally:
        stop()
    assert asked == ["/debian-security/dists/bookworm-security/InRelease"]
    # The security Release answers to its codename and to its suite name alike.
    text = (DATA / "bookworm-security.InRelease").read_text()
    osupdates.check_suite(text, "InRelease", "bookworm-security")
    osupdates.check_suite(text, "InRelease", "oldstable-security")


def test_the_date_bound_holds_inside_valid_until_and_a_future_date_is_refused() -> None:
    text = (DATA / "bookworm-security.InRelease").read_text()
    date, valid_until = _window("bookworm-security.InRelease")
    assert valid_until is not None
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
    real = (DATA / "bookworm-security.InRelease").read_text()
    date, _ = _window("bookworm-security.InRelease")
    forged_index = lzma.compress(b"Package: libssl3\nVersion: 3.0.20-1~deb12u2\nArchitecture: amd64\n\n")
    sha = hashlib.sha256(forged_index).hexdigest()
    fresh = (date + dt.timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S UTC")
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
    d = osupdates._cache_dir(tmp_path, suite)
    d.mkdir(parents=True)
    (d / "Packages.xz").write_bytes(lzma.compress((DATA / "bookworm-security.Packages.excerpt").read_bytes()))
    date, valid_until = _window("bookworm-security.InRelease")
    assert valid_until is not None
    meta = {
        "fetched_at": (valid_until - dt.timedelta(hours=1)).isoformat(),
        "release_date": date.isoformat(),
        "valid_until": valid_until.isoformat(),
        "signature": "InRelease signature verified",
        "checked": osupdates.CHECKED,
        "keyring": str(suite.keyring),
    }
    (d / "meta.json").write_text(json.dumps(meta))
    assert osupdates.fetch_index(suite, tmp_path, now=valid_until - dt.timedelta(minutes=30)).origin == "cache"
    with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch http://127\.0\.0\.1:9/"):
        osupdates.fetch_index(suite, tmp_path, now=valid_until + dt.timedelta(minutes=1), max_age=dt.timedelta(1))
    # An entry from the check that let an unsigned index through is not reused either.
    (d / "meta.json").write_text(json.dumps({**meta, "checked": None, "signature": "NOT verified"}))
    with pytest.raises(osupdates.OsUpdatesError, match=r"cannot fetch http://127\.0\.0\.1:9/"):
        osupdates.fetch_index(suite, tmp_path, now=valid_until - dt.timedelta(minutes=30))


def test_index_newest_and_source_versions() -> None:
    idx = index()
    assert idx.newest("libssl3", "amd64").version == "3.0.22-1~deb12u2"  # type: ignore[union-attr]
    # Four linux-source versions are in the suite at once; the newest counts.
    assert len(idx.packages["linux-source"]) == 4
    assert idx.newest("linux-source", "amd64").version == "6.1.192-2"  # type: ignore[union-attr]
    headers = idx.packages["linux-headers-6.12-amd64"][0]
    assert (headers.source, headers.source_version) == ("linux-signed-6.12-amd64", "6.12.117+1~deb12u1")
    assert idx.newest("libssl3", "arm64") is None
    assert idx.newest("tzdata", "amd64").arch == "all"  # type: ignore[union-attr]


def test_pending_updates_of_the_api_image() -> None:
    found = {p.package: p for p in osupdates.pending("api", api_status(), index())}
    assert set(found) == {"libssl3", "libpython3.11-minimal", "tzdata"}  # libc6 is not in the suite excerpt
    assert (found["libssl3"].installed, found["libssl3"].fixed) == ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2")
    assert found["libpython3.11-minimal"].fixed == "3.11.2-6+deb12u9"
    assert found["libpython3.11-minimal"].source == "python3.11"


def test_nothing_pending_when_installed_is_current() -> None:
    current = [
        osupdates.Installed("libssl3", "3.0.22-1~deb12u2", "amd64", "openssl", "3.0.22-1~deb12u2"),
        osupdates.Installed("libssl3-newer-local", "9", "amd64", "x", "9"),
    ]
    assert osupdates.pending("x", current, index()) == []


def _changelog(name: str) -> str:
    return gzip.decompress((DATA / name).read_bytes()).decode()


def test_cves_since_the_installed_openssl() -> None:
    text = _changelog("openssl_3.0.22-1~deb12u2.changelog.Debian.gz")
    cves = osupdates.cves_since(text, "3.0.20-1~deb12u2")
    assert len(cves) == 12
    assert cves[0] == "CVE-2026-84782"  # newest entry first
    assert "CVE-2026-75803" in cves  # from 3.0.22-1~deb12u1
    assert "CVE-2026-7383" not in cves  # fixed in the installed 3.0.20-1~deb12u2 itself
    assert osupdates.cves_since(text, "3.0.22-1~deb12u1") == [
        "CVE-2026-84782",
        "CVE-2026-35189",
        "CVE-2026-54872",
        "CVE-2026-75805",
        "CVE-2026-75806",
        "CVE-2026-77696",
    ]
    assert osupdates.cves_since(text, "3.0.22-1~deb12u2") == []


def test_cves_since_the_installed_python() -> None:
    text = _changelog("python3.11_3.11.2-6+deb12u9.changelog.Debian.gz")
    cves = osupdates.cves_since(text, "3.11.2-6+deb12u8")
    assert cves[:4] == ["CVE-2025-69534", "CVE-2026-1502", "CVE-2026-3276", "CVE-2026-6019"]
    assert len(cves) == len(set(cves))
    older = osupdates.cves_since(text, "3.11.2-6+deb12u7")
    assert set(cves) < set(older)


def test_changelog_from_a_real_deb() -> None:
    deb = (DATA / "libsasl2-modules-db_2.1.28+dfsg-10+deb12u1_amd64.deb").read_bytes()
    text, other = osupdates.deb_changelog_text(deb, "libsasl2-modules-db")
    assert other is None and text is not None
    assert text.startswith("cyrus-sasl2 (2.1.28+dfsg-10+deb12u1)")
    assert osupdates.cves_since(text, "2.1.28+dfsg-10") == ["CVE-2026-107161"]


def test_doc_dir_symlink_points_at_the_package_with_the_changelog() -> None:
    deb = (DATA / "python3.11-full_3.11.2-6+deb12u9_amd64.deb").read_bytes()
    assert osupdates.deb_changelog_text(deb, "python3.11-full") == (None, "python3.11")


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
    d = osupdates._cache_dir(tmp_path, suite)
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

    from .test_config import project

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

    from .conftest import docker, run_cli, shared_advisories

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
