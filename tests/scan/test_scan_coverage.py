"""What the scan's verdict says about its data: the real Trivy on a real image with old PyPI packages.

The test image starts from the project's own python-runtime golden base and
adds *.dist-info directories of old releases (Trivy detects Python packages
by them). The data is the PyPA snapshot in ../shared/advisories, real GitHub and PyPA records
(../shared/testdata/osv), and the same data pulled from the local registry the way
Trivy pulls its official database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines import scan
from pipelines.config import load
from pipelines.errors import ConfigError
from pipelines.scan import vulndb
from pipelines.scan.vulndb import oci as vulndb_oci
from tests.harness import osv_dir, run_cli, run_cli_outcome
from tests.scan.test_scan import gated_ids, project, result

REGISTRY = "127.0.0.1:5000"

# (name as in METADATA, version): old releases with advisories in the PyPA database and GitHub's.
OLD_PACKAGES = [
    ("Django", "4.1.5"),
    ("urllib3", "2.0.5"),
    ("jw.util", "2.0"),
    ("Products.PluggableAuthService", "2.6.0"),
    ("apache-skywalking", "1.0.1"),
]


@pytest.fixture(scope="module")
def old_pypi_image(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runtime = built["images"]["python-runtime"]["ref"]
    ctx = tmp_path_factory.mktemp("old-pypi")
    site = ctx / "site-packages"
    for name, version in OLD_PACKAGES:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (ctx / "Dockerfile").write_text(f"FROM {runtime}\nCOPY site-packages /opt/venv/lib/python3.11/site-packages\n")
    tag = f"pipelines-test/vulndb-old-pypi:{secrets.token_hex(4)}"
    subprocess.run(
        ["docker", "buildx", "build", "--load", "-t", tag, str(ctx)], check=True, capture_output=True, timeout=300
    )
    yield tag
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=60, check=False)


def by_id(data: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """(id, package) -> (severity, fixed) of every vulnerability finding."""
    return {
        (f["rule"], f["extra"]["package"]): (f["extra"]["scan_severity"], f["extra"]["fixed"])
        for f in data["findings"]
        if f["extra"].get("kind") == "vulnerability"
    }


def first_line(r: subprocess.CompletedProcess[str], data: dict[str, Any]) -> str:
    printed = r.stdout.splitlines()  # the report; progress and commands go to stderr
    assert printed[0] == data["notices"][0] == data["vulnerability_db"]
    return str(data["notices"][0])


BUNDLE_HEAD = (
    "Vulnerability DB: bundle (PyPA advisory database (github.com/westonsteimel/advisory-database-pypa@57da901aadaf, "
    "2026-07-23, CC-BY-4.0); 7080 records, 305 skipped): 6775 advisories (pip 6775); newest advisory 2026-07-23 ("
)


def test_bundle_alone_fails_the_gate_and_says_why(old_pypi_image: str, tmp_path: Path) -> None:
    cfg = project(tmp_path, scan_cfg='db_sources = ["cache", "bundle"]\nseverity = "CRITICAL"')
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    data = result(tmp_path)
    line = first_line(r, data)
    assert line.startswith(BUNDLE_HEAD), line
    assert (
        "COVERAGE INSUFFICIENT, gate fails: the data does not cover debian 12 (its source declares pip); data " in line
    )
    assert "days old (scan.max_data_age_days = 30)" in line
    assert r.returncode == 1, r.stderr[-2000:]
    assert scan.COVERAGE_RULE in gated_ids(data)
    coverage = [f for f in data["findings"] if f["rule"] == scan.COVERAGE_RULE]
    assert len(coverage) == 1 and "the data does not cover debian 12" in coverage[0]["message"]
    # A waiver cannot hide a coverage gap: only the config can accept it.
    ledger = f"""
        waivers:
          - id: {scan.COVERAGE_RULE}
            reason: trying to waive the data away
            owner: platform
            expires: 2099-01-01
    """
    cfg = project(tmp_path, ledger, scan_cfg='db_sources = ["bundle"]\nseverity = "CRITICAL"')
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    assert r.returncode == 1 and scan.COVERAGE_RULE in gated_ids(result(tmp_path))


def test_bundle_flags_old_pypi_packages_with_the_right_ids_and_severities(old_pypi_image: str, tmp_path: Path) -> None:
    cfg = project(tmp_path, scan_cfg='db_sources = ["bundle"]\naccept_limited_coverage = true')
    started = time.monotonic()
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    cold = time.monotonic() - started
    data = result(tmp_path)
    line = first_line(r, data)
    assert line.startswith(BUNDLE_HEAD)
    assert "; COVERAGE LIMITED: the data does not cover debian 12 (its source declares pip); data " in line
    assert "(accepted by scan.accept_limited_coverage)" in line
    found = by_id(data)
    assert found[("PYSEC-2020-342", "apache-skywalking")] == ("CRITICAL", "")  # CVSS v3 9.8
    assert found[("PYSEC-2023-192", "urllib3")] == ("HIGH", "2.0.6, 1.26.17")  # CVSS v3 8.1
    assert found[("PYSEC-2023-212", "urllib3")] == ("MEDIUM", "2.0.7, 1.26.18")  # CVSS v3 4.4
    # Unrated records: the default severity, HIGH.
    assert found[("PYSEC-2020-341", "jw.util")] == ("HIGH", "2.3")  # the dotted name
    assert found[("PYSEC-2021-45", "Products.PluggableAuthService")] == ("HIGH", "2.6.1")  # spelled with a dash
    assert found[("PYSEC-2023-100", "Django")] == ("HIGH", "4.2.3, 4.1.10, 3.2.20")
    assert {p for _, p in found} == {name for name, _ in OLD_PACKAGES}  # nothing from the base image's own
    assert r.returncode == 1 and ("PYSEC-2020-342") in gated_ids(data)
    assert scan.COVERAGE_RULE not in gated_ids(data)
    # 2734 of the 2026-07-23 snapshot's advisories in the DB rate nothing.
    assert any("default severity: pip 2734" in n for n in data["notices"])

    # Warm: the bundle DB is reused.
    started = time.monotonic()
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    warm = time.monotonic() - started
    assert r.returncode == 1
    print(f"bundle scan: first {cold:.1f}s (builds the bundle DB), warm {warm:.1f}s")

    # The site rates unrated PyPI records LOW: the bundle DB is rebuilt with that.
    cfg = project(
        tmp_path,
        scan_cfg='db_sources = ["bundle"]\naccept_limited_coverage = true\ndefault_severity = { PyPI = "LOW" }',
    )
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    found = by_id(result(tmp_path))
    assert found[("PYSEC-2020-341", "jw.util")] == ("LOW", "2.3")
    assert found[("PYSEC-2023-192", "urllib3")] == ("HIGH", "2.0.6, 1.26.17")  # rated: unchanged


def build_real_feed_db(tmp_path: Path) -> Path:
    """GitHub's records plus the Debian record, with Debian's unrated records as CRITICAL."""
    src = tmp_path / "osv"
    for sub in ("ghsa", "debian"):
        for f in osv_dir(sub).iterdir():
            (src / sub).mkdir(parents=True, exist_ok=True)
            (src / sub / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "db"
    r = run_cli(
        "vulndb", "build", "--from", str(src), "--out", str(out), "--default-severity", "Debian=CRITICAL",
        "--name", "GHSA and Debian test records", "--covers", "PyPI", "--covers", "Debian:12", "--covers", "Debian:13",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "5 advisories (debian 12 1, debian 13 1, pip 3)" in r.stdout
    return out


REAL_FEED_FINDINGS = {
    ("GHSA-jh3w-4vvf-mjgr", "Django"): ("HIGH", "3.2.20, 4.1.10, 4.2.3"),
    ("GHSA-v845-jxx5-vc9f", "urllib3"): ("MEDIUM", "2.0.6, 1.26.17"),
    ("GHSA-p44j-xrqg-4xrr", "Products.PluggableAuthService"): ("LOW", "2.6.1"),
    ("CVE-2099-0001", "zlib1g"): ("CRITICAL", ""),
}


def test_real_feed_db_covers_the_image_unless_it_is_too_old(old_pypi_image: str, tmp_path: Path) -> None:
    db = build_real_feed_db(tmp_path)
    cfg = project(tmp_path, scan_cfg="max_data_age_days = 36500")
    r = run_cli("--config", str(cfg), "scan", old_pypi_image, "--vulndb", str(db))
    data = result(tmp_path)
    line = first_line(r, data)
    assert line.startswith(
        "Vulnerability DB: explicit (GHSA and Debian test records): 5 advisories (debian 12 1, debian 13 1, pip 3); "
        "newest advisory 2026-11-20 ("
    ), line
    assert line.endswith("; covers the images' ecosystems (debian 12, pip)")
    assert by_id(data) == REAL_FEED_FINDINGS
    assert r.returncode == 1 and gated_ids(data) == {"GHSA-jh3w-4vvf-mjgr", "CVE-2099-0001"}

    # The same data judged against a one-day limit: its newest advisory is older, so the gate fails on that.
    cfg = project(tmp_path, scan_cfg='max_data_age_days = 1\nseverity = "CRITICAL"\nignore_unfixed = true')
    r = run_cli("--config", str(cfg), "scan", old_pypi_image, "--vulndb", str(db))
    data = result(tmp_path)
    line = first_line(r, data)
    assert "; COVERAGE INSUFFICIENT, gate fails: data " in line and "(scan.max_data_age_days = 1)" in line
    assert r.returncode == 1 and gated_ids(data) == {scan.COVERAGE_RULE}


def _delete(ref: vulndb_oci.Reference, digest: str) -> None:
    # The shared registry may not allow deletes; then the uniquely named tag stays behind.
    req = urllib.request.Request(f"{ref.base}/manifests/{digest}", method="DELETE")  # noqa: S310
    with contextlib.suppress(OSError):
        urllib.request.urlopen(req, timeout=10).close()  # noqa: S310


def test_registry_mirror_push_pull_scan(old_pypi_image: str, tmp_path: Path) -> None:
    db = build_real_feed_db(tmp_path)
    target = f"{REGISTRY}/pipelines-test/vulndb-{secrets.token_hex(4)}:2"
    r = run_cli("vulndb", "push", str(db), "--to", target)
    assert r.returncode == 0, r.stderr
    pushed = r.stdout.strip().split("@")[-1]
    ref = vulndb_oci.parse_reference(target)
    try:
        # What the registry holds is Trivy's artifact: one db.tar.gz layer of the DB media type.
        req = urllib.request.Request(f"{ref.base}/manifests/2", headers={"Accept": vulndb_oci.MANIFEST_MEDIA_TYPE})  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            manifest = json.loads(resp.read())
        assert manifest["config"]["mediaType"] == "application/vnd.aquasec.trivy.config.v1+json"
        [layer] = manifest["layers"]
        assert layer["mediaType"] == "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
        assert layer["annotations"]["org.opencontainers.image.title"] == "db.tar.gz"

        # Every scan pulls it with Trivy's own --db-repository: nothing local to start from.
        cfg = project(
            tmp_path,
            scan_cfg=f'db_sources = ["cache", "download"]\ndb_repositories = ["{target}"]\n'
            f'cache_dir = "mirror-cache"\nmax_data_age_days = 36500',
        )
        r = run_cli("--config", str(cfg), "scan", old_pypi_image)
        data = result(tmp_path)
        line = first_line(r, data)
        # Trivy rewrote metadata.json on download; the provenance travelled inside the DB file.
        assert line.startswith(
            "Vulnerability DB: download (GHSA and Debian test records): 5 advisories (debian 12 1, debian 13 1, pip 3)"
        ), line
        assert line.endswith("covers the images' ecosystems (debian 12, pip)")
        assert by_id(data) == REAL_FEED_FINDINGS
        assert r.returncode == 1
        # The next scan finds it fresh in its cache.
        r = run_cli("--config", str(cfg), "scan", old_pypi_image)
        assert first_line(r, result(tmp_path)).startswith("Vulnerability DB: cache (GHSA and Debian test records)")
    finally:
        _delete(ref, pushed)


def test_push_refuses_what_it_cannot_publish(tmp_path: Path) -> None:
    r = run_cli_outcome("vulndb", "push", str(tmp_path / "nothing"), "--to", f"{REGISTRY}/pipelines-test/x:2")
    assert r.returncode == 2 and "no vulnerability database metadata" in r.stderr
    db = build_real_feed_db(tmp_path)
    r = run_cli_outcome("vulndb", "push", str(db), "--to", "just-a-name")
    assert r.returncode == 2 and "does not name a registry and repository" in r.stderr
    r = run_cli_outcome("vulndb", "push", str(db), "--to", "127.0.0.1:9/pipelines-test/x:2")
    assert r.returncode == 2 and "cannot reach the registry 127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr


def _choice(ecosystems: dict[str, int], newest: dt.datetime | None, covers: tuple[str, ...]) -> scan.DbChoice:
    """A DB holding ``ecosystems`` advisories that declares it covers ``covers``."""
    when = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    info = vulndb.DbInfo(
        Path("/x/db/trivy.db"), 2, when, when, sum(ecosystems.values()), "src", ecosystems, newest, {}, covers
    )
    return scan.DbChoice(Path("/x"), "explicit", info)


def test_coverage_verdicts(tmp_path: Path) -> None:
    settings = load(project(tmp_path)).scan
    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    images = {"api": ("debian 12", "pip"), "worker": ("pip",)}
    fresh = _choice({"debian 12": 10, "pip": 5}, dt.datetime(2026, 11, 23, tzinfo=dt.UTC), ("debian 12", "pip"))
    c = scan.assess_coverage(fresh, images, settings, now)
    assert c is not None and not c.limited and c.findings() == []
    assert fresh.statement(c) == (
        "Vulnerability DB: explicit (src): 15 advisories (debian 12 10, pip 5); newest advisory 2026-11-23 "
        "(1 days old); covers the images' ecosystems (debian 12, pip)"
    )
    # No Debian data: only the image with Debian packages is not covered.
    c = scan.assess_coverage(_choice({"pip": 5, "debian 12": 0}, None, ("pip",)), images, settings, now)
    assert c is not None and c.missing == {"api": ("debian 12",), "worker": ()}
    assert [f.file for f in c.findings()] == ["api"]
    # A database that does not record its newest advisory (Trivy's own) is dated by its build.
    assert (
        "; built 2026-11-20 (4 days old); COVERAGE INSUFFICIENT, gate fails: the data does not cover debian 12 "
        "(its source declares pip)" in _choice({"pip": 5}, None, ("pip",)).statement(c)
    )
    # Old data fails every image; accepting it removes the findings and says so.
    old = _choice({"debian 12": 1, "pip": 1}, dt.datetime(2026, 9, 1, tzinfo=dt.UTC), ("debian 12", "pip"))
    c = scan.assess_coverage(old, images, settings, now)
    assert (
        c is not None and len(c.findings()) == 2 and c.reasons() == ["data 84 days old (scan.max_data_age_days = 30)"]
    )
    accepted = replace(settings, accept_limited_coverage=True)
    c = scan.assess_coverage(old, images, accepted, now)
    assert c is not None and c.findings() == [] and c.verdict().startswith("COVERAGE LIMITED: data 84 days old")
    # Nothing in the data is never coverage, even for an image without packages.
    c = scan.assess_coverage(_choice({}, None, ()), {"scratch": ()}, settings, now)
    assert c is not None and c.reasons() == ["the database holds no advisories"] and len(c.findings()) == 1
    assert scan.assess_coverage(scan.DbChoice(None, "none", None), images, settings, now) is None


# --------------------------------------------------------------------------- coverage is what the source declares


def _stray_debian_bundle(tmp_path: Path) -> Path:
    """A bundle that declares PyPI only, holding the PyPA test records plus one stray Debian 12 advisory."""
    src = tmp_path / "osv"
    src.mkdir()
    for f in [*osv_dir("pypa").iterdir(), osv_dir("debian") / "DEBIAN-CVE-2099-0001.json"]:
        (src / f.name).write_bytes(f.read_bytes())
    bundle = tmp_path / "stray.osv.json.gz"
    prov = vulndb.Provenance("stray test", "example.invalid/stray", "0" * 40, "2026-11-20", "CC0-1.0", ("PyPI",))
    vulndb.write_bundle(src, bundle, prov)
    return bundle


def test_one_stray_advisory_does_not_make_an_ecosystem_covered(tmp_path: Path) -> None:
    prov, advisories = vulndb.load_bundle(_stray_debian_bundle(tmp_path))
    assert prov.ecosystems == ("PyPI",)
    vulndb.build_db(advisories, tmp_path / "db", source=prov.line(), covers=prov.ecosystems)
    info = vulndb.read_info(tmp_path / "db")  # read back from the file, as a scan does
    # The stray advisory is in the data (Trivy still matches it), but the source declares PyPI alone.
    assert info.ecosystems["debian 12"] == 1 and info.covers == ("pip",)
    choice = scan.DbChoice(tmp_path / "db", "explicit", info)
    settings = replace(load(project(tmp_path)).scan, max_data_age_days=36500)
    c = scan.assess_coverage(choice, {"api": ("debian 12", "pip")}, settings, dt.datetime.now(dt.UTC))
    assert c is not None and c.missing == {"api": ("debian 12",)} and c.limited
    assert [f.rule for f in c.findings()] == [scan.COVERAGE_RULE]
    record = scan.coverage_record(choice, c)
    assert record.ecosystems == ("pip",) and record.limited and record.date == "2026-11-20"
    assert record.reason == "the data does not cover debian 12 (its source declares pip)"
    # Declared, it is covered: the same records with Debian 12 declared too.
    vulndb.build_db(advisories, tmp_path / "db2", source=prov.line(), covers=("PyPI", "Debian:12"))
    both = scan.DbChoice(tmp_path / "db2", "explicit", vulndb.read_info(tmp_path / "db2"))
    c = scan.assess_coverage(both, {"api": ("debian 12", "pip")}, settings, dt.datetime.now(dt.UTC))
    assert c is not None and not c.limited and not scan.coverage_record(both, c).limited
    # A declaration the database cannot hold is refused, naming the flag.
    with pytest.raises(ConfigError, match="'npm' is not an ecosystem"):
        vulndb.build_db(advisories, tmp_path / "db3", source="x", covers=("npm",))


def test_trivy_db_coverage_is_its_declared_data_sources(tmp_path: Path) -> None:
    """Trivy's own database (no provenance of ours): the data-source bucket is its declaration."""
    pip_bucket = b"pip::GitHub Security Advisory pip"
    tree: Any = {
        b"debian 12": {b"zlib": {b"CVE-2099-0001": b"{}"}},  # advisories, but no data source declared for them
        pip_bucket: {b"django": {b"GHSA-x": b'{"VulnerableVersions":["<4.2.3"]}'}},
        b"data-source": {pip_bucket: json.dumps({"ID": "ghsa", "Name": "GitHub Security Advisory pip"}).encode()},
        b"vulnerability": {b"CVE-2099-0001": b"{}", b"GHSA-x": b"{}"},
    }
    db = tmp_path / "trivy" / "db"
    db.mkdir(parents=True)
    (db / "trivy.db").write_bytes(vulndb.bolt_file(tree))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (db / "metadata.json").write_text(json.dumps({"Version": 2, "UpdatedAt": now, "NextUpdate": now}))
    info = vulndb.read_info(tmp_path / "trivy")
    assert info.ecosystems == {"debian 12": 1, "pip": 1}
    assert info.covers == ("pip",)
    # With Debian's data source declared, Debian 12 is covered.
    tree[b"data-source"][b"debian 12"] = b'{"ID":"debian","Name":"Debian Security Tracker"}'
    (db / "trivy.db").write_bytes(vulndb.bolt_file(tree))
    assert vulndb.read_info(tmp_path / "trivy").covers == ("debian 12", "pip")


def test_stray_advisory_db_scans_with_limited_coverage(old_pypi_image: str, tmp_path: Path) -> None:
    """The real image (Debian 12 and PyPI packages) against GitHub's records and one Debian advisory, PyPI declared."""
    src = tmp_path / "osv"
    src.mkdir()
    for f in [*osv_dir("ghsa").iterdir(), osv_dir("debian") / "DEBIAN-CVE-2099-0001.json"]:
        (src / f.name).write_bytes(f.read_bytes())
    db = tmp_path / "db"
    r = run_cli("vulndb", "build", "--from", str(src), "--out", str(db), "--name", "stray", "--covers", "PyPI")
    assert r.returncode == 0, r.stderr
    r = run_cli("vulndb", "info", str(db))
    assert r.returncode == 0 and "(debian 12 1, debian 13 1, pip 3)" in r.stdout
    assert "declares it covers: pip" in r.stdout
    cfg = project(tmp_path, scan_cfg="max_data_age_days = 36500")
    r = run_cli("--config", str(cfg), "scan", old_pypi_image, "--vulndb", str(db))
    data = result(tmp_path)
    line = first_line(r, data)
    # The stray advisory still finds its package; it does not make Debian 12 covered.
    assert ("CVE-2099-0001", "zlib1g") in by_id(data)
    assert line.endswith(
        "COVERAGE INSUFFICIENT, gate fails: the data does not cover debian 12 (its source declares pip)"
    )
    assert r.returncode == 1 and scan.COVERAGE_RULE in gated_ids(data)
    assert data["coverage"]["ecosystems"] == ["pip"] and data["coverage"]["limited"] is True


def test_fallback_and_coverage_travel_in_the_headline_and_every_report(old_pypi_image: str, tmp_path: Path) -> None:
    # Nothing answers on port 9: the download fails, the bundle is what the scan falls back to.
    cfg = project(
        tmp_path,
        scan_cfg='db_sources = ["download", "bundle"]\ndb_repositories = ["127.0.0.1:9/pipelines-test/no-db:2"]\n'
        'accept_limited_coverage = true\nseverity = "CRITICAL"\ndownload_timeout = 30',
    )
    r = run_cli("--config", str(cfg), "scan", old_pypi_image, "--format", "json")
    data = json.loads(r.stdout)
    assert data == result(tmp_path)  # the report printed is the one written
    headline = data["headline"]
    assert "; FELL BACK to the offline bundle because download: " in headline, headline
    cov = data["coverage"]
    assert headline.endswith(f"; COVERAGE LIMITED: {cov['reason']}")
    assert cov["fallback"].startswith("download: ") and cov["fallback"] in headline
    assert cov["source"].startswith(
        "bundle: PyPA advisory database (github.com/westonsteimel/advisory-database-pypa@57da901aadaf"
    )
    assert (cov["date"], cov["ecosystems"], cov["limited"]) == ("2026-07-23", ["pip"], True)
    assert cov["reason"].startswith("the data does not cover debian 12 (its source declares pip); data ")
    assert set(cov) == {"source", "date", "ecosystems", "limited", "reason", "fallback"}
    # The markdown report and the terminal end on the same headline; the SARIF runs each carry the coverage.
    run_dir = (tmp_path / "artifacts/scan/latest").resolve()
    assert headline in (run_dir / "scan.md").read_text()
    sarif = json.loads((run_dir / "scan.sarif").read_text())
    assert sarif["runs"] and all(run["properties"]["coverage"] == cov for run in sarif["runs"])
    r = run_cli("--config", str(cfg), "scan", old_pypi_image)
    assert "; FELL BACK to the offline bundle because download: " in r.stdout.rstrip().splitlines()[-1]
