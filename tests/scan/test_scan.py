"""The scan stage with the real Trivy on real images, and its parsers on recorded output."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pipelines import scan
from pipelines.config import load
from pipelines.errors import ConfigError, ScanError
from pipelines.scan import database, vulndb
from pipelines.tools import trivy_binary
from tests.harness import ROOT, osv_dir, run_cli, shared_advisories

REC = ROOT / "tests" / "data" / "recorded"
TODAY = dt.date.today()


def osv(id_: str, ecosystem: str, name: str, fixed: str | None, severity: str) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed:
        events.append({"fixed": fixed})
    return {
        "id": id_,
        "modified": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),  # current data: coverage is not at issue
        "summary": f"test advisory for {name}",
        "database_specific": {"severity": severity},
        "affected": [
            {"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
    }


def make_db(tmp: Path, *records: dict[str, Any], covers: tuple[str, ...] = ("Debian:12", "PyPI")) -> Path:
    """A DB of ``records`` that declares it covers ``covers`` (the api image's ecosystems by default)."""
    src = tmp / "osv"
    src.mkdir(exist_ok=True)
    for r in records:
        (src / f"{r['id']}.json").write_text(json.dumps(r))
    out = tmp / "db"
    declared = [arg for eco in covers for arg in ("--covers", eco)]
    r = run_cli("vulndb", "build", "--from", str(src), "--out", str(out), *declared)
    assert r.returncode == 0, r.stderr
    return out


# Packages really present in the api image: Debian's openssl (libssl3) and starlette.
OS_ADVISORY = osv("TEST-OS-0001", "Debian:12", "openssl", "99.0", "HIGH")
PY_ADVISORY = osv("TEST-PY-0001", "PyPI", "starlette", "99.0", "CRITICAL")


def project(tmp: Path, ledger: str = "waivers: []\n", scan_cfg: str = "") -> Path:
    if ("db_sources" not in scan_cfg or "bundle" in scan_cfg) and "offline_advisories" not in scan_cfg:
        # The offline source is the project's advisory snapshot beside the repository (../shared/advisories).
        # Declared PyPI's, as pipeline.toml declares it: coverage is what a source declares, never inferred.
        declared = 'offline_provenance = { covers = "PyPI" }\n'
        scan_cfg = f'offline_advisories = "{shared_advisories()}"\n' + declared + scan_cfg
    (tmp / "svc").mkdir(exist_ok=True)
    (tmp / "svc" / "Dockerfile").write_text("FROM scratch\n")
    (tmp / "waivers.yaml").write_text(textwrap.dedent(ledger))
    cfg = tmp / "pipeline.toml"
    cfg.write_text(
        textwrap.dedent(f"""
        [project]
        name = "scan-test"
        [registry]
        address = "127.0.0.1:5000"
        [services.svc]
        context = "svc"
        [environments.dev]
        [lint]
        waivers = "waivers.yaml"
        [scan]
        {scan_cfg}
    """)
    )
    return cfg


def result(tmp: Path) -> dict[str, Any]:
    return dict(json.loads((tmp / "artifacts/scan/latest/scan.json").read_text()))


def gated_ids(data: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in data["findings"] if f["gated"]}


@pytest.fixture(scope="module")
def api_ref(built: dict[str, Any]) -> str:
    return str(built["images"]["api"]["tags"][0])


def test_vulnerabilities_are_reported_and_the_gate_fails(api_ref: str, tmp_path: Path) -> None:
    db = make_db(tmp_path, OS_ADVISORY, PY_ADVISORY)
    r = run_cli("--config", str(project(tmp_path)), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 1, r.stderr[-3000:]
    data = result(tmp_path)
    assert data["notices"][0].startswith("Vulnerability DB: explicit") and "2 advisories" in data["notices"][0]
    printed = r.stdout.splitlines()  # the report; progress and commands go to stderr
    assert printed[0] == data["notices"][0]  # the report's first line names the DB
    by_id = {f["rule"]: f for f in data["findings"]}
    assert by_id["TEST-OS-0001"]["extra"]["package"] == "libssl3"
    assert by_id["TEST-OS-0001"]["extra"]["fixed"] == "99.0" and by_id["TEST-OS-0001"]["extra"]["installed"]
    assert by_id["TEST-PY-0001"]["extra"]["scan_severity"] == "CRITICAL"
    assert gated_ids(data) == {"TEST-OS-0001", "TEST-PY-0001"}
    run_dir = (tmp_path / "artifacts/scan/latest").resolve()
    name = data["images"][0]["name"]
    assert sorted(p.name for p in run_dir.glob("*.sarif")) == ["scan.sarif"]  # one upload, no copies
    sarif = json.loads((run_dir / "scan.sarif").read_text())
    ids = {x["ruleId"] for run in sarif["runs"] for x in run["results"] if x["ruleId"].startswith("TEST-")}
    assert ids == {"TEST-OS-0001", "TEST-PY-0001"}
    cats = [
        run["automationDetails"]["id"]
        for run in sarif["runs"]
        if any(x["ruleId"].startswith("TEST-") for x in run["results"])
    ]
    assert all(name in c for c in cats), cats
    sbom = json.loads((run_dir / f"{name}.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and any(c["name"] == "starlette" for c in sbom["components"])
    suite = ET.parse(run_dir / "scan.junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert (run_dir / f"{name}.trivy.json").exists() and (run_dir / "trivyignore.yaml").exists()
    assert "Gated findings" in (run_dir / "scan.md").read_text()


def test_valid_waivers_pass_expired_fail_stale_reported(api_ref: str, tmp_path: Path) -> None:
    db = make_db(tmp_path, OS_ADVISORY, PY_ADVISORY)
    until = (TODAY + dt.timedelta(days=30)).isoformat()
    ledger = f"""
        waivers:
          - id: TEST-OS-0001
            scope: {{package: libssl3}}
            reason: fixed upstream; rebuild scheduled
            owner: platform
            expires: {until}
          - id: TEST-PY-0001
            scope: {{image: "*", package: starlette}}
            reason: endpoint not exposed
            owner: api-team
            expires: {until}
          - id: CVE-1999-0001
            reason: long gone
            owner: platform
            expires: {until}
    """
    r = run_cli("--config", str(project(tmp_path, ledger)), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 0, r.stderr[-3000:]
    data = result(tmp_path)
    waived = {f["rule"] for f in data["findings"] if f["waived_by"]}
    assert waived == {"TEST-OS-0001", "TEST-PY-0001"}
    stale = [f for f in data["findings"] if f["rule"] == "PL-W003"]
    assert len(stale) == 1 and "CVE-1999-0001" in stale[0]["message"]
    ignore = (tmp_path / "artifacts/scan/latest/trivyignore.yaml").read_text()
    assert "TEST-OS-0001" in ignore and f"expired_at: '{until}'" in ignore

    expired = ledger.replace(until, (TODAY - dt.timedelta(days=1)).isoformat(), 1)
    r = run_cli("--config", str(project(tmp_path, expired)), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 1
    data = result(tmp_path)
    assert "PL-W002" in gated_ids(data) and "TEST-OS-0001" in gated_ids(data)

    too_far = ledger.replace(until, (TODAY + dt.timedelta(days=200)).isoformat(), 1)
    r = run_cli("--config", str(project(tmp_path, too_far)), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 1 and "more than 90 days ahead" in json.dumps(result(tmp_path)["findings"])


def test_ignore_unfixed_is_a_gate_option(api_ref: str, tmp_path: Path) -> None:
    # The PyPI record is for a package the image lacks: the DB declares (make_db) that it covers both ecosystems.
    db = make_db(
        tmp_path, osv("TEST-NOFIX-1", "Debian:12", "openssl", None, "HIGH"), osv("X", "PyPI", "absent", "1", "LOW")
    )
    r = run_cli("--config", str(project(tmp_path)), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 1 and "TEST-NOFIX-1" in gated_ids(result(tmp_path))
    cfg = project(tmp_path, scan_cfg="ignore_unfixed = true")
    r = run_cli("--config", str(cfg), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(f["rule"] == "TEST-NOFIX-1" for f in result(tmp_path)["findings"])  # reported, not gated


def test_missing_or_corrupt_db_fails_closed(api_ref: str, tmp_path: Path) -> None:
    cfg = project(tmp_path)
    r = run_cli("--config", str(cfg), "scan", api_ref, "--vulndb", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no vulnerability database metadata" in r.stderr and "Traceback" not in r.stderr
    db = make_db(tmp_path, OS_ADVISORY)
    path = db / "db" / "trivy.db"
    path.write_bytes(path.read_bytes()[:5000])
    r = run_cli("--config", str(cfg), "scan", api_ref, "--vulndb", str(db))
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_no_db_at_all_stops_unless_explicitly_allowed(api_ref: str, tmp_path: Path) -> None:
    r = run_cli("--config", str(project(tmp_path, scan_cfg='db_sources = ["cache"]')), "scan", api_ref)
    assert r.returncode == 2 and "no vulnerability database could be had" in r.stderr
    cfg = project(tmp_path, scan_cfg='db_sources = ["cache"]\nallow_no_vulndb = true')
    r = run_cli("--config", str(cfg), "scan", api_ref)
    assert r.returncode == 0, r.stderr[-2000:]
    assert result(tmp_path)["notices"][0] == scan.NOT_CHECKED
    assert (tmp_path / "artifacts/scan/latest/scan.md").read_text().startswith(f"**{scan.NOT_CHECKED}**")


def test_offline_advisories_are_the_last_resort(api_ref: str, tmp_path: Path) -> None:
    scan_cfg = 'db_sources = ["cache", "bundle"]\naccept_limited_coverage = true'
    r = run_cli("--config", str(project(tmp_path, scan_cfg=scan_cfg)), "scan", api_ref)
    assert r.returncode == 0, r.stderr[-2000:]
    first = result(tmp_path)["notices"][0]
    assert first.startswith("Vulnerability DB: bundle (PyPA advisory database") and "COVERAGE LIMITED" in first


def test_planted_private_key_is_caught(built: dict[str, Any], tmp_path: Path) -> None:
    runtime = built["images"]["python-runtime"]["ref"]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    body = "\n".join("MIIEpAIBAAKCAQEA" + "x7Qz9Kp2Lm4Nr8St" * 3 for _ in range(20))
    (ctx / "id_rsa").write_text(f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n")
    (ctx / "Dockerfile").write_text(f"FROM {runtime}\nCOPY --chown=65532:65532 id_rsa /home/nonroot/.ssh/id_rsa\n")
    tag = "pipelines-test/planted-key:1"
    subprocess.run(
        ["docker", "buildx", "build", "--load", "-t", tag, str(ctx)], check=True, capture_output=True, timeout=300
    )
    try:
        db = make_db(tmp_path, OS_ADVISORY)
        r = run_cli("--config", str(project(tmp_path)), "scan", tag, "--vulndb", str(db))
        assert r.returncode == 1, r.stderr[-2000:]
        secrets = [f for f in result(tmp_path)["findings"] if f["extra"]["kind"] == "secret"]
        assert secrets and secrets[0]["gated"] and "id_rsa" in secrets[0]["file"]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=60, check=False)


def _small_mirror(tmp: Path) -> Path:
    """A two-record OSV mirror with its README: a bundle that builds in well under a second."""
    mirror = tmp / "mirror"
    (mirror / "vulns").mkdir(parents=True)
    for name in ("PYSEC-2020-341.yaml", "PYSEC-2023-73.yaml"):  # one usable, one withdrawn
        (mirror / "vulns" / name).write_bytes((osv_dir("pypa") / name).read_bytes())
    (mirror / "README.md").write_text(
        "| field | value |\n|---|---|\n| data | Test mirror (two records) |\n"
        f"| taken from | github.com/example/mirror |\n| commit | {'c' * 40} |\n| commit date | 2024-10-10 |\n"
    )
    return mirror


def test_stale_cache_falls_through_to_the_next_source(tmp_path: Path) -> None:
    # The fall-through is what is tested here, not the snapshot's size: a small mirror is the bundle.
    cfg = load(project(tmp_path, scan_cfg=f'offline_advisories = "{_small_mirror(tmp_path)}"'))
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    vulndb.build_db([], cfg.scan.cache_dir / "trivy", source="old", updated_at=old)
    trivy, _ = trivy_binary()
    choice = scan.resolve_db(cfg, cfg.scan, None, trivy)
    assert choice.source == "bundle"
    assert any("h old" in a for a in choice.attempts)
    # Trivy leaves a cache alone whose NextUpdate is ahead: that must not count as a download.
    assert any(a.startswith("download:") for a in choice.attempts)


# --------------------------------------------------------------------------- parsers on recorded output


def test_parse_recorded_trivy_image_report() -> None:
    data = json.loads((REC / "trivy-image-api.json").read_text())
    issues, packages = scan.parse_trivy(data, "api")
    assert packages > 30
    vulns = {i.id: i for i in issues if i.kind == "vulnerability"}
    assert vulns["TEST-OS-0001"].package == "libssl3" and vulns["TEST-OS-0001"].fixed == "99.0"
    assert vulns["TEST-PY-0001"].severity == "CRITICAL" and vulns["TEST-PY-0001"].target == "Python"


def test_parse_recorded_trivy_config_report() -> None:
    data = json.loads((REC / "trivy-config.json").read_text())
    issues, _ = scan.parse_trivy(data, "config")
    assert {(i.id, i.severity) for i in issues} == {("DS-0002", "HIGH"), ("DS-0026", "LOW")}


def test_empty_or_foreign_json_is_an_error() -> None:
    with pytest.raises(ScanError):
        scan.parse_trivy({"hello": 1}, "x")
    with pytest.raises(ScanError):
        scan.parse_trivy([], "x")


def test_parse_snyk_container_json() -> None:
    # Constructed from Snyk's documented `snyk container test --json` fields; no
    # Snyk account is reachable here to record a real run.
    data = json.loads((REC / "snyk-container-constructed.json").read_text())
    issues = scan.parse_snyk(data, "api")
    assert [(i.id, i.severity, i.package, i.fixed, i.tool) for i in issues] == [
        ("SNYK-DEBIAN12-OPENSSL-0000001", "HIGH", "openssl/libssl3", "3.0.99-1", "snyk")
    ]
    with pytest.raises(ScanError, match="Snyk could not test"):
        scan.parse_snyk({"ok": False, "error": "authentication failed"}, "api")


def test_repository_config_scan_settings() -> None:
    cfg = load(ROOT / "pipeline.toml")
    assert cfg.scan.severity == "HIGH" and "vuln" in cfg.scan.scanners
    assert cfg.scan_for("prod").severity in scan.LEVELS


def test_without_configured_offline_advisories_the_bundle_source_says_so(tmp_path: Path) -> None:
    """A project outside this workspace has no snapshot beside it: the source is named as unconfigured."""
    cfg_file = tmp_path / "pipeline.toml"
    project(tmp_path, scan_cfg='db_sources = ["cache"]')  # writes the files; the config is replaced below
    cfg_file.write_text(cfg_file.read_text().replace('db_sources = ["cache"]', 'db_sources = ["bundle"]'))
    cfg = load(cfg_file)
    assert cfg.scan.offline_advisories is None
    trivy, _ = trivy_binary()
    with pytest.raises(vulndb.VulnDbError) as err:
        scan.resolve_db(cfg, cfg.scan, None, trivy)
    assert "bundle: scan.offline_advisories: no offline advisories configured" in str(err.value.seen)


def test_offline_advisories_build_once_name_their_source_and_list_what_was_skipped(tmp_path: Path) -> None:
    mirror = _small_mirror(tmp_path)
    cfg_file = project(tmp_path, scan_cfg=f'db_sources = ["bundle"]\noffline_advisories = "{mirror}"')
    settings = load(cfg_file).scan
    out = tmp_path / "bundle"
    info = database._bundle_db(out, settings)
    assert info.source == (
        f"Test mirror (github.com/example/mirror@{'c' * 12}, 2024-10-10, license not stated); 2 records, 1 skipped"
    )
    assert "PYSEC-2023-73 is withdrawn" in (out / "skipped.txt").read_text()
    built = (out / "db" / "trivy.db").stat().st_mtime_ns
    assert database._bundle_db(out, settings).source == info.source
    assert (out / "db" / "trivy.db").stat().st_mtime_ns == built  # reused, not rebuilt
    (mirror / "vulns" / "PYSEC-2023-73.yaml").unlink()  # the snapshot changes: the DB follows
    assert database._bundle_db(out, settings).source.endswith("; 1 records, 0 skipped")


def test_a_changed_readme_rebuilds_the_offline_db_with_what_it_declares(tmp_path: Path) -> None:
    """Provenance and coverage are read from the README: a change there is a change of the data's description."""
    mirror = tmp_path / "mirror"
    (mirror / "vulns").mkdir(parents=True)
    (mirror / "vulns" / "PYSEC-2020-341.yaml").write_bytes((osv_dir("pypa") / "PYSEC-2020-341.yaml").read_bytes())
    table = f"| field | value |\n|---|---|\n| taken from | github.com/example/mirror |\n| commit | {'c' * 40} |\n"
    (mirror / "README.md").write_text(table + "| commit date | 2024-10-10 |\n")
    settings = load(project(tmp_path, scan_cfg=f'db_sources = ["bundle"]\noffline_advisories = "{mirror}"')).scan
    out = tmp_path / "bundle"
    assert database._bundle_db(out, settings).covers == ()
    (mirror / "README.md").write_text(table + "| commit date | 2024-10-11 |\n| covers | PyPI |\n")
    info = database._bundle_db(out, settings)
    assert info.covers == ("pip",) and "2024-10-11" in info.source


def test_a_configured_offline_source_that_cannot_be_read_stops_the_scan(tmp_path: Path) -> None:
    """Only an unconfigured source is a reason to fall back; a broken one is bad input, even with no DB allowed."""
    cfg_file = project(
        tmp_path,
        scan_cfg=f'db_sources = ["bundle"]\noffline_advisories = "{tmp_path / "absent"}"\nallow_no_vulndb = true',
    )
    cfg = load(cfg_file)
    with pytest.raises(ConfigError, match=r"scan\.offline_advisories is not a directory") as err:
        scan.resolve_db(cfg, cfg.scan, None, "trivy-is-not-asked")
    assert err.value.exit_code == 2
