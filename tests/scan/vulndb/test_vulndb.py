"""The offline vulnerability database: OSV parsing, CVSS scoring, the Trivy DB layout, and real Trivy scans.

The scans run the pinned Trivy binary against a database built here and a
small root filesystem written here; nothing is mocked and nothing is
downloaded (Trivy is told not to phone home either).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines import _proc, tools
from pipelines.errors import ConfigError
from pipelines.scan import vulndb
from pipelines.scan.vulndb import Advisory, VulnDbError
from tests.harness import run_cli_outcome
from tests.scan.vulndb.test_bolt import read_tree

TRIVY_TIMEOUT = 300.0
UPDATED = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)

# Published vectors with their published base scores.
CRITICAL_9_8 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


# --------------------------------------------------------------------------
# helpers


def osv(osv_id: str, ecosystem: str, name: str, *ranges: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    """An OSV record for one package with ECOSYSTEM ranges (one list of events per range)."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if ranges:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events} for events in ranges]
    return {
        "schema_version": "1.6.0",
        "id": osv_id,
        "modified": "2026-10-01T00:00:00Z",
        "affected": [affected],
        **extra,
    }


def write_osv(directory: Path, record: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record['id']}.json"
    path.write_text(json.dumps(record, indent=2))
    return path


def make_rootfs(
    root: Path, *, debs: Sequence[tuple[str, str, str]] = (), pips: Sequence[tuple[str, str, str]] = ()
) -> Path:
    """A Debian 12 root filesystem with dpkg entries (binary, source, version) and Python
    packages (site directory, name, version)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
        'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    )
    # Trivy recognises Debian by this file; os-release alone gives OS family "none" and no OS scan.
    (root / "etc" / "debian_version").write_text("12.4\n")
    stanzas = [
        f"Package: {binary}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\n"
        f"Version: {version}\nDescription: {binary}\n"
        for binary, source, version in debs
    ]
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text("\n".join(stanzas))
    for site, name, version in pips:
        info = root / site / f"{vulndb.normalise_pip(name).replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


@pytest.fixture(scope="module")
def trivy() -> str:
    # The wheel puts trivy beside the interpreter, which need not be on PATH.
    return tools.pinned("trivy", hint="pip install --require-hashes -r requirements/dev.txt")


def run_trivy(trivy: str, cache: Path, root: Path) -> _proc.Result:
    argv = [
        trivy,
        "rootfs",
        "--cache-dir",
        str(cache),
        "--skip-db-update",
        "--offline-scan",
        # Both would otherwise try to reach check.trivy.dev on every run.
        "--skip-version-check",
        "--disable-telemetry",
        "--scanners",
        "vuln",
        "--format",
        "json",
        "--quiet",
        str(root),
    ]
    # cwd: Trivy reads trivy.yaml and .trivyignore from the working directory.
    return _proc.run(argv, timeout=TRIVY_TIMEOUT, check=False, quiet=True, cwd=root.parent, what="trivy rootfs")


def findings(trivy: str, cache: Path, root: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(vulnerability ID, package, installed version) -> Trivy's record of it."""
    r = run_trivy(trivy, cache, root)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for result in report.get("Results") or []:
        for v in result.get("Vulnerabilities") or []:
            out[(v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"])] = v
    return out


# --------------------------------------------------------------------------
# real Trivy


def test_trivy_reports_debian_and_pip_advisories_from_osv(tmp_path: Path, trivy: str) -> None:
    advisories = tmp_path / "osv"
    write_osv(
        advisories,
        osv(
            "DEBIAN-CVE-2023-5678",
            "Debian:12",
            "openssl",
            [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}],
            summary="openssl: excessive time spent in DH check",
            severity=[{"type": "CVSS_V3", "score": CRITICAL_9_8}],
            references=[{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2023-5678"}],
        ),
    )
    write_osv(
        advisories / "nested",
        osv(
            "DEBIAN-CVE-2023-45853",
            "Debian:12",
            "zlib",
            [{"introduced": "0"}],  # no fix yet, no severity
            summary="zlib: integer overflow in minizip",
        ),
    )
    write_osv(
        advisories,
        osv(
            "DEBIAN-CVE-2024-2398",
            "Debian:12",
            "curl",
            [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u6"}],
            severity=[{"type": "CVSS_V3", "score": CRITICAL_9_8}],
        ),
    )
    write_osv(
        advisories,
        osv(
            "GHSA-9wx4-h78v-vm56",
            "PyPI",
            "Demo_Pkg",
            # Vulnerable twice: 1.0 up to 1.2.3, and again 2.0 up to 2.1.
            [{"introduced": "1.0"}, {"fixed": "1.2.3"}, {"introduced": "2.0"}, {"fixed": "2.1"}],
            aliases=["CVE-2024-35195"],
            summary="demo-pkg leaks credentials on redirect",
            database_specific={"severity": "MODERATE"},
        ),
    )
    write_osv(advisories, osv("GHSA-npm0-0000-0000", "npm", "left-pad", [{"introduced": "0"}, {"fixed": "2.0"}]))
    notes: list[str] = []
    loaded = vulndb.load_osv(advisories, notes=notes)
    assert len(loaded) == 4
    assert any("'npm' is not supported" in n for n in notes)
    info = vulndb.build_db(loaded, tmp_path / "cache", source=str(advisories), updated_at=UPDATED)
    assert info.advisories == 4 and info.cache_dir == tmp_path / "cache"

    root = make_rootfs(
        tmp_path / "root",
        debs=[
            ("libssl3", "openssl", "3.0.11-1~deb12u2"),  # below the fix
            ("zlib1g", "zlib", "1:1.2.13.dfsg-1"),  # unfixed advisory: any version
            ("libcurl4", "curl", "7.88.1-10+deb12u6"),  # exactly at the fix: clean
        ],
        pips=[
            ("usr/lib/python3/dist-packages", "Demo_Pkg", "1.2.0"),  # first range
            ("opt/venv/lib/python3.11/site-packages", "Demo_Pkg", "2.0.5"),  # second range
            ("opt/old/lib/python3.11/site-packages", "Demo_Pkg", "1.5"),  # between the ranges: clean
            ("usr/local/lib/python3.11/dist-packages", "Demo_Pkg", "2.1"),  # at the last fix: clean
        ],
    )
    found = findings(trivy, info.cache_dir, root)

    assert set(found) == {
        ("CVE-2023-5678", "libssl3", "3.0.11-1~deb12u2"),
        ("CVE-2023-45853", "zlib1g", "1:1.2.13.dfsg-1"),
        ("GHSA-9wx4-h78v-vm56", "Demo_Pkg", "1.2.0"),
        ("GHSA-9wx4-h78v-vm56", "Demo_Pkg", "2.0.5"),
    }
    ssl = found[("CVE-2023-5678", "libssl3", "3.0.11-1~deb12u2")]
    assert (ssl["Severity"], ssl["FixedVersion"], ssl["Status"]) == ("CRITICAL", "3.0.13-1~deb12u1", "fixed")
    assert ssl["Title"] == "openssl: excessive time spent in DH check"
    assert ssl["DataSource"]["ID"] == "debian"
    zlib = found[("CVE-2023-45853", "zlib1g", "1:1.2.13.dfsg-1")]
    # No rating in the record: the built-in default (HIGH), so it reaches a HIGH gate.
    assert (zlib["Severity"], zlib.get("FixedVersion", "")) == ("HIGH", "")
    pip = found[("GHSA-9wx4-h78v-vm56", "Demo_Pkg", "2.0.5")]
    assert (pip["Severity"], pip["FixedVersion"]) == ("MEDIUM", "1.2.3, 2.1")


def test_trivy_reads_a_large_database(tmp_path: Path, trivy: str) -> None:
    """4200 advisories: leaves spill over several pages and buckets need branch pages."""
    advisories: list[Advisory] = []
    for p in range(150):
        for k in range(10):
            n = p * 10 + k
            deb = Advisory(f"CVE-2030-{n:05d}", (), f"deb {n}", "HIGH", "debian 12", f"src{p:03d}")
            # One record far bigger than a page, to need a long overflow run.
            description = "x" * 40_000 if n == 777 else ""
            advisories.append(replace(deb, fixed_version=f"1.{k}-1", description=description))
            pip = Advisory(f"PYSEC-2030-{n:05d}", (), f"pip {n}", "LOW", "pip", f"pkg-{p:03d}")
            advisories.append(replace(pip, vulnerable_versions=(f"<1.{k}",), patched_versions=(f"1.{k}",)))
    # One source package with so many advisories that its own bucket needs pages
    # and a branch level; all fixed below the installed 2.0-1 but one.
    bulk = Advisory("", (), "", "MEDIUM", "debian 12", "bulk")
    advisories += [replace(bulk, id=f"CVE-2031-{i:05d}", fixed_version=f"1.{i}-1") for i in range(1199)]
    advisories.append(replace(bulk, id="CVE-2031-99999", fixed_version="2.0-2"))
    assert len(advisories) == 4200
    info = vulndb.build_db(advisories, tmp_path / "cache", source="generated", updated_at=UPDATED)
    assert vulndb.read_info(info.cache_dir).advisories == 4200

    flags = page_flags(info.path.read_bytes())
    assert flags["branch"] >= 1 and flags["overflowing leaf"] >= 1, flags

    # The first, a middle and the last package, installed at 1.5: fixes 1.6 .. 1.9 are missed.
    picked = (0, 77, 149)
    root = make_rootfs(
        tmp_path / "root",
        debs=[(f"lib{p:03d}", f"src{p:03d}", "1.5-1") for p in picked] + [("libbulk", "bulk", "2.0-1")],
        pips=[("usr/lib/python3/dist-packages", f"pkg-{p:03d}", "1.5") for p in picked],
    )
    found = findings(trivy, info.cache_dir, root)
    expected = {("CVE-2031-99999", "libbulk", "2.0-1")}
    for p in picked:
        for k in range(6, 10):
            expected.add((f"CVE-2030-{p * 10 + k:05d}", f"lib{p:03d}", "1.5-1"))
            expected.add((f"PYSEC-2030-{p * 10 + k:05d}", f"pkg-{p:03d}", "1.5"))
    assert set(found) == expected
    assert found[("CVE-2030-00777", "lib077", "1.5-1")]["Description"] == "x" * 40_000
    assert found[("PYSEC-2030-01496", "pkg-149", "1.5")]["FixedVersion"] == "1.6"


def page_flags(data: bytes) -> dict[str, int]:
    """How many pages of each kind the file has (walking page headers after the freelist)."""
    counts = {"branch": 0, "leaf": 0, "overflowing leaf": 0}
    reader = vulndb.BoltReader(data)
    pgid = 3
    while pgid < reader.high_water:
        header = data[pgid * vulndb.PAGE_SIZE : pgid * vulndb.PAGE_SIZE + 16]
        flags = int.from_bytes(header[8:10], "little")
        overflow = int.from_bytes(header[12:16], "little")
        kind = "branch" if flags == 0x01 else "overflowing leaf" if overflow else "leaf"
        counts[kind] += 1
        pgid += overflow + 1
    return counts


def _small_db(tmp_path: Path) -> vulndb.DbInfo:
    record = osv("CVE-2023-5678", "Debian:12", "openssl", [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}])
    write_osv(tmp_path / "osv", record)
    return vulndb.build_db(vulndb.load_osv(tmp_path / "osv"), tmp_path / "cache", source="t", updated_at=UPDATED)


def _truncate(data: bytearray, root: int) -> bytearray:
    return data[: len(data) // 2]


def _flip_both_meta_checksums(data: bytearray, root: int) -> bytearray:
    for meta_page in (0, 1):
        data[meta_page * vulndb.PAGE_SIZE + 16 + 56] ^= 0xFF
    return data


def _garble_root_page(data: bytearray, root: int) -> bytearray:
    start = root * vulndb.PAGE_SIZE
    data[start : start + vulndb.PAGE_SIZE] = b"\xa5" * vulndb.PAGE_SIZE
    return data


@pytest.mark.parametrize("damage", [_truncate, _flip_both_meta_checksums, _garble_root_page])
def test_a_damaged_database_fails_closed(tmp_path: Path, trivy: str, damage: Any) -> None:
    info = _small_db(tmp_path)
    root = make_rootfs(tmp_path / "root", debs=[("libssl3", "openssl", "3.0.11-1~deb12u2")])
    assert set(findings(trivy, info.cache_dir, root)) == {("CVE-2023-5678", "libssl3", "3.0.11-1~deb12u2")}

    data = bytearray(info.path.read_bytes())
    info.path.write_bytes(bytes(damage(data, vulndb.BoltReader(bytes(data)).root)))
    r = run_trivy(trivy, info.cache_dir, root)
    # Whether bbolt reports an error or Go panics, the scan must not pass as clean.
    assert r.returncode != 0
    assert "CVE-2023-5678" not in r.stdout
    with pytest.raises(VulnDbError, match="is not a readable vulnerability database"):
        vulndb.read_info(info.cache_dir)


def test_one_damaged_meta_page_is_survivable(tmp_path: Path) -> None:
    # bbolt keeps two meta pages so that a torn write of one leaves the other.
    info = _small_db(tmp_path)
    data = bytearray(info.path.read_bytes())
    data[16 + 56] ^= 0xFF
    info.path.write_bytes(bytes(data))
    assert vulndb.read_info(info.cache_dir).advisories == 1


def test_missing_metadata_is_a_clear_error(tmp_path: Path, trivy: str) -> None:
    info = _small_db(tmp_path)
    (info.path.parent / "metadata.json").unlink()
    with pytest.raises(VulnDbError) as err:
        vulndb.read_info(info.cache_dir)
    assert f"no vulnerability database metadata at {info.path.parent / 'metadata.json'}" in err.value.render()
    assert "pipelines vulndb build" in err.value.render()
    # Trivy treats it as a first run it may not skip the download of: it fails too.
    r = run_trivy(trivy, info.cache_dir, make_rootfs(tmp_path / "root"))
    assert r.returncode != 0


def test_missing_database_and_bad_metadata(tmp_path: Path) -> None:
    info = _small_db(tmp_path)
    meta_path = info.path.parent / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "Version": 1}))
    with pytest.raises(VulnDbError, match="not valid Trivy DB metadata") as err:
        vulndb.read_info(info.cache_dir)
    assert "schema Version 1, expected 2" in err.value.render()
    meta_path.write_text(json.dumps({**meta, "Advisories": 7}))
    with pytest.raises(VulnDbError, match="does not match its metadata"):
        vulndb.read_info(info.cache_dir)
    meta_path.write_text(json.dumps(meta))
    info.path.unlink()
    with pytest.raises(VulnDbError, match="no vulnerability database at"):
        vulndb.read_info(info.cache_dir)


# --------------------------------------------------------------------------
# metadata and the database layout


def test_metadata_and_info(tmp_path: Path) -> None:
    info = _small_db(tmp_path)
    meta = json.loads((tmp_path / "cache" / "db" / "metadata.json").read_text())
    assert meta["Version"] == 2
    assert meta["UpdatedAt"] == meta["DownloadedAt"] == "2026-11-01T12:30:00Z"
    assert datetime.fromisoformat(meta["NextUpdate"]) - UPDATED >= timedelta(days=3650)
    assert info == vulndb.read_info(tmp_path / "cache")
    assert (info.schema_version, info.updated_at, info.advisories, info.source) == (2, UPDATED, 1, "t")
    with pytest.raises(ValueError, match="timezone-aware"):
        vulndb.build_db([], tmp_path / "x", source="t", updated_at=datetime(2026, 1, 1))


def test_database_layout_trivy_depends_on(tmp_path: Path) -> None:
    info = _small_db(tmp_path)
    tree = read_tree(info.path.read_bytes())
    assert set(tree) == {b"debian 12", b"data-source", b"vulnerability", b"x-pipelines"}
    assert json.loads(tree[b"debian 12"][b"openssl"][b"CVE-2023-5678"]) == {"FixedVersion": "3.0.13-1~deb12u1"}
    assert json.loads(tree[b"data-source"][b"debian 12"])["ID"] == "debian"
    # Even with nothing to say, the vulnerability record must exist: Trivy reads its titles there.
    # The record rates nothing: it gets the default severity, stored as Trivy reads it.
    assert json.loads(tree[b"vulnerability"][b"CVE-2023-5678"]) == {"Severity": "HIGH", "VendorSeverity": {"debian": 3}}
    # What the data is travels inside the file: Trivy rewrites metadata.json when it downloads a copy.
    assert json.loads(tree[b"x-pipelines"][b"info"]) == {
        "Source": "t",
        "Advisories": 1,
        "Ecosystems": {"debian 12": 1},
        "NewestAdvisory": "2026-10-01T00:00:00Z",
        "DefaultedSeverity": {"debian 12": 1},
        "Keys": 1,
        "Covers": [],
    }


def test_empty_database_still_has_the_vulnerability_bucket(tmp_path: Path) -> None:
    info = vulndb.build_db([], tmp_path / "cache", source="t", updated_at=UPDATED)
    tree = read_tree(info.path.read_bytes())
    assert (tree[b"data-source"], tree[b"vulnerability"]) == ({}, {})
    assert vulndb.read_info(tmp_path / "cache").advisories == 0


def test_entries_for_one_package_and_id_are_merged(tmp_path: Path) -> None:
    adv = Advisory("CVE-1", (), "", "LOW", "debian 12", "openssl", fixed_version="1.0-1")
    info = vulndb.build_db([adv, adv], tmp_path / "a", source="t", updated_at=UPDATED)
    assert info.advisories == 1
    # Two fixes for one release: the higher one covers both; no fix at all wins over any fix.
    other = replace(adv, fixed_version="1.0-2", severity="HIGH")
    [merged] = vulndb.merge([adv, other]).values()
    assert (merged.fixed_version, merged.severity) == ("1.0-2", "HIGH")
    [unfixed] = vulndb.merge([adv, replace(adv, fixed_version="")]).values()
    assert unfixed.fixed_version == ""
    # pip: the constraints are alternatives, so they are united.
    pip = Advisory(
        "GHSA-1", (), "", "LOW", "pip", "urllib3", vulnerable_versions=("<1.26.17",), patched_versions=("1.26.17",)
    )
    two = replace(pip, vulnerable_versions=(">=2.0.0, <2.0.6",), patched_versions=("2.0.6",))
    [both] = vulndb.merge([pip, two]).values()
    assert both.vulnerable_versions == ("<1.26.17", ">=2.0.0, <2.0.6")
    assert both.patched_versions == ("1.26.17", "2.0.6")
    with pytest.raises(ValueError, match="neither 'pip' nor 'debian N'"):
        vulndb.build_db([replace(adv, ecosystem="Debian:12")], tmp_path / "c", source="t")
    with pytest.raises(ValueError, match="severity 'SEVERE' is not one of"):
        vulndb.build_db([replace(adv, severity="SEVERE")], tmp_path / "c", source="t")


# --------------------------------------------------------------------------
# CVSS (scored by the `cvss` library)


@pytest.mark.parametrize(
    ("kind", "vector", "severity"),
    [
        ("CVSS_V3", CRITICAL_9_8, "CRITICAL"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:L/A:N", "HIGH"),  # 7.2
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", "MEDIUM"),  # 5.3, CVE-2023-5678
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "CRITICAL"),  # 10.0
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", "LOW"),  # 3.1
        ("CVSS_V3", "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", "UNKNOWN"),  # 0.0
        ("CVSS_V3", CRITICAL_9_8 + "/E:P/RL:O/RC:C", "CRITICAL"),  # temporal metrics leave the base alone
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "CRITICAL"),  # 9.3
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", "HIGH"),  # 8.7
        ("CVSS_V4", "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", "MEDIUM"),  # 4.8
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "HIGH"),  # 7.5; v2 knows no CRITICAL
    ],
)
def test_cvss_vectors_are_rated(kind: str, vector: str, severity: str) -> None:
    assert vulndb.cvss_severity(kind, vector) == severity


@pytest.mark.parametrize(
    ("kind", "vector", "problem"),
    [
        ("CVSS_V3", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", "expected a vector starting with CVSS:3"),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "mandatory"),
        ("CVSS_V3", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV"),
        ("CVSS_V4", CRITICAL_9_8, "expected a vector starting with CVSS:4.0"),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L", "mandatory"),
        ("Ubuntu", "high", "not a CVSS vector type"),
    ],
)
def test_malformed_vectors_are_errors(kind: str, vector: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        vulndb.cvss_severity(kind, vector)


def test_severity_thresholds() -> None:
    assert [vulndb.severity_of_score(s) for s in (0.0, 0.1, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "UNKNOWN",
        "LOW",
        "LOW",
        "MEDIUM",
        "MEDIUM",
        "HIGH",
        "HIGH",
        "CRITICAL",
        "CRITICAL",
    ]


# --------------------------------------------------------------------------
# OSV


def parse(record: dict[str, Any], notes: list[str] | None = None) -> list[Advisory]:
    return vulndb.parse_osv(record, "advisory.json", notes if notes is not None else [])


@pytest.mark.parametrize(
    ("ranges", "versions", "vulnerable", "patched"),
    [
        ([[{"introduced": "0"}, {"fixed": "1.2.3"}]], [], ("<1.2.3",), ("1.2.3",)),
        ([[{"introduced": "1.0"}, {"fixed": "1.2.3"}]], [], (">=1.0, <1.2.3",), ("1.2.3",)),
        ([[{"introduced": "0"}, {"last_affected": "2.0"}]], [], ("<=2.0",), ()),
        ([[{"introduced": "1.5"}]], [], (">=1.5",), ()),
        ([[{"introduced": "0"}]], [], (">=0",), ()),
        (
            [[{"introduced": "1.0"}, {"fixed": "1.2.3"}, {"introduced": "2.0"}, {"fixed": "2.1"}]],
            [],
            (">=1.0, <1.2.3", ">=2.0, <2.1"),
            ("1.2.3", "2.1"),
        ),
        (
            [[{"introduced": "0"}, {"fixed": "1.1"}], [{"introduced": "3.0"}, {"last_affected": "3.2"}]],
            ["1.0", "3.1"],  # osv.dev's expansion of the ranges: adds nothing
            ("<1.1", ">=3.0, <=3.2"),
            ("1.1",),
        ),
        ([], ["1.0", "1.1"], ("==1.0", "==1.1"), ()),
    ],
)
def test_pypi_ranges_become_trivy_constraints(
    ranges: list[list[dict[str, str]]], versions: list[str], vulnerable: tuple[str, ...], patched: tuple[str, ...]
) -> None:
    record = osv("GHSA-xxxx-yyyy-zzzz", "PyPI", "Requests_OAuth.lib", *ranges)
    record["affected"][0]["versions"] = versions
    [adv] = parse(record)
    # Trivy's lookup name: lowercase, "_" as "-", dots kept.
    assert (adv.ecosystem, adv.package) == ("pip", "requests-oauth.lib")
    assert (adv.vulnerable_versions, adv.patched_versions) == (vulnerable, patched)


def test_debian_records() -> None:
    [fixed] = parse(osv("DEBIAN-CVE-2023-5678", "Debian:12", "openssl", [{"introduced": "0"}, {"fixed": "3.0.13-1"}]))
    assert (fixed.id, fixed.ecosystem, fixed.package, fixed.fixed_version) == (
        "CVE-2023-5678",
        "debian 12",
        "openssl",
        "3.0.13-1",
    )
    [unfixed] = parse(osv("DSA-5532-1", "Debian:11", "openssl", [{"introduced": "0"}]))
    assert (unfixed.id, unfixed.ecosystem, unfixed.fixed_version) == ("DSA-5532-1", "debian 11", "")
    notes: list[str] = []
    [twice] = parse(
        osv(
            "CVE-2024-1",
            "Debian:12",
            "curl",
            [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u6"}],
            [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u10"}],
            [{"introduced": "0"}, {"fixed": "7.88.1-10~bpo1"}],
        ),
        notes,
    )
    assert twice.fixed_version == "7.88.1-10+deb12u10"
    assert "using 7.88.1-10+deb12u10" in notes[0]


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1),
        ("1.0~rc1", "1.0", -1),
        ("1:0.9", "2.0", 1),
        ("7.88.1-10+deb12u10", "7.88.1-10+deb12u6", 1),
        ("1.0+b1", "1.0a", 1),
        ("1.2.13.dfsg-1", "1.2.13.dfsg-1", 0),
    ],
)
def test_debian_version_order(a: str, b: str, order: int) -> None:
    assert vulndb.debian_version_cmp(a, b) == order
    assert vulndb.debian_version_cmp(b, a) == -order


# Versions python-debian reads but dpkg calls bad syntax: a fix Trivy would compare differently from dpkg.
@pytest.mark.parametrize("bad", ["7.88.1-", "\u0663:7.88.1-1", "4294967296:7.88.1-1", "1:-1"])
def test_a_debian_version_dpkg_cannot_read_is_a_config_error(tmp_path: Path, bad: str) -> None:
    path = write_osv(tmp_path / "osv", osv("DSA-1", "Debian:12", "curl", [{"introduced": "0"}, {"fixed": bad}]))
    with pytest.raises(ConfigError) as err:
        vulndb.load_osv(tmp_path / "osv")
    assert err.value.file == str(path) and err.value.key.endswith(".ranges")
    assert f"{bad!r} is not a Debian version (package curl)" in err.value.problem


def test_merge_refuses_a_fixed_version_that_is_no_debian_version() -> None:
    good = Advisory("CVE-1", (), "t", "LOW", "debian 12", "curl", fixed_version="7.88.1-10")
    with pytest.raises(ValueError, match=r"CVE-1: fixed version '7.88.1-' is not a Debian version"):
        vulndb.merge([good, replace(good, fixed_version="7.88.1-")])


def test_severity_sources_in_order() -> None:
    cvss = [{"type": "CVSS_V3", "score": CRITICAL_9_8}]
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    ghsa = osv("GHSA-1", "PyPI", "a", events, database_specific={"severity": "MODERATE"}, severity=cvss)
    assert parse(ghsa)[0].severity == "MEDIUM"  # the advisory database's word beats the vector
    assert parse(osv("GHSA-2", "PyPI", "a", events, severity=cvss))[0].severity == "CRITICAL"
    unrated = parse(osv("GHSA-3", "PyPI", "a", events))[0]
    assert (unrated.severity, unrated.severity_defaulted) == ("HIGH", True)  # the built-in default
    low = vulndb.parse_osv(osv("GHSA-3", "PyPI", "a", events), "f", [], default_severity={"PyPI": "LOW"})
    assert low[0].severity == "LOW"
    v4_only = osv("GHSA-5", "PyPI", "a", events, severity=[{"type": "CVSS_V4", "score": V4_CRITICAL}])
    assert parse(v4_only)[0].severity == "CRITICAL"
    per_package = osv("GHSA-4", "PyPI", "a", events)
    per_package["affected"][0]["severity"] = [
        {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"},
    ]
    # The highest of the vectors given: v4 9.3 beats v3 5.5.
    assert parse(per_package)[0].severity == "CRITICAL"


def test_what_cannot_be_used_is_skipped_with_a_note() -> None:
    notes: list[str] = []
    assert parse(osv("GHSA-1", "npm", "left-pad", [{"introduced": "0"}]), notes) == []
    assert (
        parse({**osv("GHSA-2", "PyPI", "a", [{"introduced": "0"}]), "withdrawn": "2026-01-01T00:00:00Z"}, notes) == []
    )
    git_only = osv("OSV-3", "PyPI", "a")
    git_only["affected"][0]["ranges"] = [{"type": "GIT", "repo": "https://x.test/a", "events": [{"introduced": "0"}]}]
    assert parse(git_only, notes) == []
    assert parse(osv("OSV-4", "Debian", "openssl", [{"introduced": "0"}]), notes) == []  # no release
    assert len(notes) == 5, notes  # the GIT range, then the package it left without ranges
    assert "ecosystem 'npm' is not supported" in notes[0]
    assert "withdrawn" in notes[1]


def test_load_osv_reads_every_json_file_recursively(tmp_path: Path) -> None:
    write_osv(tmp_path / "a" / "b", osv("GHSA-1", "PyPI", "x", [{"introduced": "0"}, {"fixed": "1"}]))
    write_osv(tmp_path, osv("GHSA-2", "PyPI", "y", [{"introduced": "0"}, {"fixed": "1"}]))
    (tmp_path / "README.md").write_text("not an advisory")
    assert sorted(a.id for a in vulndb.load_osv(tmp_path)) == ["GHSA-1", "GHSA-2"]
    with pytest.raises(ConfigError, match="is not a directory of OSV advisories"):
        vulndb.load_osv(tmp_path / "missing")


GOOD = osv("GHSA-1", "PyPI", "x", [{"introduced": "0"}, {"fixed": "1"}])


@pytest.mark.parametrize(
    ("content", "key", "problem"),
    [
        ('{"id": "GHSA-1",', "", "is not valid JSON (line 1"),
        ("[]", "", "expected an object (an OSV record), got a list"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}), "id", "is required but missing"),
        (json.dumps({**GOOD, "id": 7}), "id", "Input should be a valid string, got a number"),
        (json.dumps({**GOOD, "id": None}), "id", "Input should be a valid string, got null"),
        (json.dumps({**GOOD, "aliases": "CVE-1"}), "aliases", "Input should be a valid list, got a string"),
        (json.dumps({**GOOD, "modified": "2024-02-30T00:00:00Z"}), "modified", "day value is outside"),
        (json.dumps({**GOOD, "modified": "2024-02-01T00:00:00"}), "modified", "timezone"),
        (json.dumps({**GOOD, "severty": []}), "severty", "is not an OSV field"),
        ("[" * 100_000 + "]" * 100_000, "", "nested too deeply"),
        (
            json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPI"}}]}),
            "affected[0].package.name",
            "is required but missing",
        ),
        (
            json.dumps({**GOOD, "affected": [{"package": {"ecosystem": "PyPI", "name": 3}}]}),
            "affected[0].package.name",
            "Input should be a valid string, got a number",
        ),
        (
            json.dumps(osv("GHSA-1", "PyPI", "x", [{"introduced": "0", "fixed": "1"}])),
            "affected[0].ranges[0].events[0]",
            "expected exactly one of introduced, fixed, last_affected, limit",
        ),
        (
            json.dumps({**GOOD, "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}]}),
            "severity[0].score",
            "is not a CVSS_V3 vector",
        ),
    ],
)
def test_malformed_osv_is_a_config_error_naming_the_file(tmp_path: Path, content: str, key: str, problem: str) -> None:
    good = write_osv(tmp_path / "osv", GOOD)
    bad = tmp_path / "osv" / "zz-bad.json"
    bad.write_text(content)
    with pytest.raises(ConfigError) as err:
        vulndb.load_osv(tmp_path / "osv")
    assert (err.value.file, err.value.key) == (str(bad), key)
    assert problem in err.value.problem
    assert str(bad) in err.value.render() and str(good) not in err.value.render()


def test_trivy_binary_is_the_pinned_one(trivy: str) -> None:
    r = _proc.run([trivy, "--version"], timeout=60, quiet=True, what="trivy --version")
    assert "Version: 0.76." in r.stdout


def test_random_damage_is_always_a_clean_error(tmp_path: Path) -> None:
    """Whatever byte is hit, read_info either still reads the file or says it is damaged."""
    info = vulndb.build_db(
        [Advisory(f"CVE-{i}", (), "t", "LOW", "debian 12", f"p{i % 7}", fixed_version="1") for i in range(300)],
        tmp_path / "cache",
        source="t",
        updated_at=UPDATED,
    )
    pristine = info.path.read_bytes()
    rng = random.Random(1234)  # noqa: S311 - reproducible damage, not a secret
    outcomes = {"read": 0, "error": 0}
    for _ in range(300):
        data = bytearray(pristine)
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
        info.path.write_bytes(bytes(data))
        try:
            vulndb.read_info(info.cache_dir)
            outcomes["read"] += 1
        except VulnDbError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0, outcomes


# -------------------------------------------------------------------------- one ID in two files that disagree


def test_two_records_of_one_id_that_disagree_are_named_and_never_narrowed(tmp_path: Path, trivy: str) -> None:
    early = osv("PYSEC-2099-1", "PyPI", "clashpkg", [{"introduced": "0"}, {"fixed": "1.2"}])
    late = osv("PYSEC-2099-1", "PyPI", "clashpkg", [{"introduced": "0"}, {"fixed": "1.5"}])
    write_osv(tmp_path / "osv" / "mirror-a", early)
    write_osv(tmp_path / "osv" / "mirror-b", late)
    r = run_cli_outcome("vulndb", "build", "--from", str(tmp_path / "osv"), "--out", str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    warning = next(line for line in r.stderr.splitlines() if line.startswith("warning: PYSEC-2099-1"))
    assert "mirror-a/PYSEC-2099-1.json" in warning and "mirror-b/PYSEC-2099-1.json" in warning
    assert "disagree" in warning and "<1.2" in warning and "<1.5" in warning
    # 1.3 is fixed by one record's word, affected by the other's: the scan still reports it.
    root = make_rootfs(tmp_path / "root", pips=[("usr/lib/python3/dist-packages", "clashpkg", "1.3")])
    found = findings(trivy, tmp_path / "cache", root)
    assert ("PYSEC-2099-1", "clashpkg", "1.3") in found
    assert ("PYSEC-2099-1", "clashpkg", "1.6") not in findings(
        trivy,
        tmp_path / "cache",
        make_rootfs(tmp_path / "root2", pips=[("usr/lib/python3/dist-packages", "clashpkg", "1.6")]),
    )


def test_debian_records_of_one_id_that_disagree_keep_the_later_fix_and_are_named() -> None:
    notes: list[str] = []
    a = vulndb.parse_osv(
        osv("DEBIAN-CVE-2099-9", "Debian:12", "zlib", [{"introduced": "0"}, {"fixed": "1.2-1"}]), "a.json", notes
    )
    b = vulndb.parse_osv(
        osv("DEBIAN-CVE-2099-9", "Debian:12", "zlib", [{"introduced": "0"}, {"fixed": "1.3-1"}]), "b.json", notes
    )
    merged = vulndb.merge([*a, *b], notes)
    assert [x.fixed_version for x in merged.values()] == ["1.3-1"]
    assert any(n.startswith("warning: ") and "a.json and b.json disagree: fixed in 1.2-1 vs 1.3-1" in n for n in notes)
    # Entries of one file (one per release series) are parts of one record, not a conflict.
    same: list[str] = []
    vulndb.merge(
        [
            *a,
            *vulndb.parse_osv(
                osv("DEBIAN-CVE-2099-9", "Debian:12", "zlib", [{"introduced": "0"}, {"fixed": "1.3-1"}]), "a.json", same
            ),
        ],
        same,
    )
    assert not any("disagree" in n for n in same)
