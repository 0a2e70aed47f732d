"""The writer on real advisory feeds (GitHub's OSV JSON, the PyPA database's YAML), read by the real Trivy.

Inputs are real records in ../shared/testdata/osv (SOURCES.md there names their commits); the offline
advisories are the whole PyPA database snapshot in ../shared/advisories. Nothing is mocked: Trivy scans a root
filesystem with dist-info directories and a dpkg status file written here.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import scan
from pipelines.errors import ConfigError
from pipelines.scan import vulndb
from tests.harness import ROOT, examples, osv_dir, run_cli, run_cli_outcome, shared_advisories
from tests.scan.vulndb.test_vulndb import findings, make_rootfs, trivy, write_osv

__all__ = ["trivy"]  # the fixture, shared with test_vulndb


def load_all(default_severity: dict[str, str] | None = None) -> tuple[list[vulndb.Advisory], list[str]]:
    notes: list[str] = []
    advisories: list[vulndb.Advisory] = []
    for sub in ("ghsa", "pypa", "debian"):
        advisories += vulndb.load_osv(osv_dir(sub), notes=notes, default_severity=default_severity)
    return advisories, notes


def test_real_feeds_are_matched_by_trivy_with_the_right_ids_and_severities(tmp_path: Path, trivy: str) -> None:
    advisories, notes = load_all({"Debian": "CRITICAL"})
    # The withdrawn record is left out, and said so with its file.
    assert any("PYSEC-2023-73.yaml" in n and "withdrawn" in n for n in notes)
    info = vulndb.build_db(advisories, tmp_path / "cache", source="tests/data/osv", notes=notes)
    # Three GitHub entries for Django and two for urllib3 are one advisory each.
    assert info.ecosystems == {"debian 12": 1, "debian 13": 1, "pip": 9}
    assert info.newest_advisory is not None and f"{info.newest_advisory:%Y-%m-%d}" == "2026-11-20"

    root = make_rootfs(
        tmp_path / "root",
        debs=[("zlib1g", "zlib", "1:1.2.13.dfsg-1")],
        pips=[
            ("opt/a/site-packages", "Django", "4.1.5"),
            ("opt/b/site-packages", "Django", "4.2.3"),  # the fixed 4.2 series: clean
            ("opt/a/site-packages", "urllib3", "2.0.5"),
            ("opt/b/site-packages", "urllib3", "1.26.17"),  # fixed for one advisory, not the other
            ("opt/a/site-packages", "Products.PluggableAuthService", "2.6.0"),
            ("opt/a/site-packages", "jw.util", "2.0"),
            ("opt/a/site-packages", "apache-skywalking", "1.0.1"),
        ],
    )
    found = findings(trivy, info.cache_dir, root)
    got = {key: (v["Severity"], v.get("FixedVersion", "")) for key, v in found.items()}
    assert got == {
        # GitHub: database_specific.severity; one entry per release series, merged.
        ("GHSA-jh3w-4vvf-mjgr", "Django", "4.1.5"): ("HIGH", "3.2.20, 4.1.10, 4.2.3"),
        ("GHSA-v845-jxx5-vc9f", "urllib3", "2.0.5"): ("MEDIUM", "2.0.6, 1.26.17"),
        ("GHSA-p44j-xrqg-4xrr", "Products.PluggableAuthService", "2.6.0"): ("LOW", "2.6.1"),
        # PyPA: CVSS v3 vectors where given, else the default (HIGH).
        ("PYSEC-2023-100", "Django", "4.1.5"): ("HIGH", "4.2.3, 4.1.10, 3.2.20"),
        ("PYSEC-2023-192", "urllib3", "2.0.5"): ("HIGH", "2.0.6, 1.26.17"),  # 8.1
        ("PYSEC-2023-212", "urllib3", "2.0.5"): ("MEDIUM", "2.0.7, 1.26.18"),  # 4.4
        ("PYSEC-2023-212", "urllib3", "1.26.17"): ("MEDIUM", "2.0.7, 1.26.18"),
        # The PyPA record spells the dotted project with a dash; Trivy looks it up with the dot.
        ("PYSEC-2021-45", "Products.PluggableAuthService", "2.6.0"): ("HIGH", "2.6.1"),
        ("PYSEC-2020-341", "jw.util", "2.0"): ("HIGH", "2.3"),
        ("PYSEC-2020-342", "apache-skywalking", "1.0.1"): ("CRITICAL", ""),  # 9.8, no fix
        # Debian as osv.dev has it: no rating; the configured default for Debian.
        ("CVE-2099-0001", "zlib1g", "1:1.2.13.dfsg-1"): ("CRITICAL", ""),
    }


def test_pip_spellings_cover_what_feeds_and_trivy_write() -> None:
    assert vulndb.pip_name("Products.PluggableAuthService") == "products.pluggableauthservice"
    assert vulndb.pip_name("ruamel_yaml.clib") == "ruamel-yaml.clib"
    assert vulndb.pip_spellings("products-pluggableauthservice") == [
        "products-pluggableauthservice",
        "products.pluggableauthservice",
    ]
    assert set(vulndb.pip_spellings("zope.interface")) == {"zope.interface", "zope-interface"}
    assert len(vulndb.pip_spellings("a.b.c.d")) == 8 and vulndb.pip_spellings("a.b.c.d")[0] == "a.b.c.d"
    many = vulndb.pip_spellings("a-b-c-d-e-f-g-h")  # 7 separators: the two uniform spellings only
    assert many == ["a-b-c-d-e-f-g-h", "a.b.c.d.e.f.g.h"]
    assert vulndb.pip_spellings("Django") == ["django"]


def test_yaml_is_read_as_osv_means_it(tmp_path: Path) -> None:
    # Unquoted versions stay text: 1.10 is not 1.1, and the date is checked by the schema.
    (tmp_path / "a.yaml").write_text(
        "id: PYSEC-0000-1\nmodified: 2024-01-02T03:04:05Z\naffected:\n- package: {name: x.y, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 1.10\n    - fixed: 1.20\n"
    )
    [adv] = vulndb.load_osv(tmp_path)
    assert (adv.package, adv.vulnerable_versions, adv.patched_versions) == ("x.y", (">=1.10, <1.20",), ("1.20",))


def _hostile(tmp_path: Path) -> list[tuple[str, bytes, str]]:
    good = json.loads((osv_dir("ghsa") / "GHSA-p44j-xrqg-4xrr.json").read_text())
    return [
        ("deep.json", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        ("deep.yaml", b"a: " + b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
        (
            "bomb.yaml",
            b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
            "aliases are not allowed",
        ),
        ("huge.json", b" " * (vulndb.MAX_RECORD_BYTES + 1), "is too large"),
        ("id.json", json.dumps({**good, "id": ["GHSA"]}).encode(), "id: Input should be a valid string, got a list"),
        ("date.json", json.dumps({**good, "modified": "2021-13-45T99:00:00Z"}).encode(), "modified:"),
        ("latin1.yaml", "id: caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        ("top.yaml", b"- just\n- a list\n", "expected an object (an OSV record), got a list"),
        ("bad.yaml", b"id: [unclosed\n", "is not valid YAML (line"),
    ]


def test_hostile_inputs_are_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    for name, content, problem in _hostile(tmp_path):
        d = tmp_path / name.replace(".", "-")
        d.mkdir()
        (d / name).write_bytes(content)
        started = time.monotonic()
        with pytest.raises(ConfigError) as err:
            vulndb.load_osv(d)
        assert err.value.file == str(d / name), name
        assert problem in err.value.render(), (name, err.value.render())
        assert time.monotonic() - started < 20, name


def test_cli_build_refuses_nothing_and_names_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli_outcome("vulndb", "build", "--from", str(empty), "--out", str(tmp_path / "db"))
    assert (
        r.returncode == 2 and f"{empty}: no advisories: holds no OSV files" in r.stderr and "Traceback" not in r.stderr
    )
    (empty / "README.md").write_text("advisories live elsewhere")
    r = run_cli_outcome("vulndb", "build", "--from", str(empty), "--out", str(tmp_path / "db"))
    assert r.returncode == 2 and "found only: .md" in r.stderr
    withdrawn = tmp_path / "withdrawn"
    withdrawn.mkdir()
    (withdrawn / "PYSEC-2023-73.yaml").write_bytes((osv_dir("pypa") / "PYSEC-2023-73.yaml").read_bytes())
    r = run_cli_outcome("vulndb", "build", "--from", str(withdrawn), "--out", str(tmp_path / "db"))
    assert r.returncode == 2 and "no advisories Trivy can use" in r.stderr
    assert not (tmp_path / "db" / "db" / "trivy.db").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.json").write_bytes(b"[" * 200_000)
    r = run_cli_outcome("vulndb", "build", "--from", str(bad), "--out", str(tmp_path / "db"))
    assert r.returncode == 2 and f"{bad / 'x.json'}" in r.stderr and "Traceback" not in r.stderr
    r = run_cli_outcome(
        "vulndb",
        "build",
        "--from",
        str(osv_dir("pypa")),
        "--out",
        str(tmp_path / "db"),
        "--default-severity",
        "npm=LOW",
    )
    assert r.returncode == 2 and "npm: is not an ecosystem the database holds" in r.stderr


def test_cli_build_reads_yaml_and_reports_what_it_holds(tmp_path: Path) -> None:
    out = tmp_path / "db"
    r = run_cli(
        "vulndb", "build", "--from", str(osv_dir("pypa")), "--out", str(out), "--default-severity", "PyPI=MEDIUM"
    )
    assert r.returncode == 0, r.stderr
    assert "6 advisories (pip 6), newest advisory 2023-11-07" in r.stdout
    assert "rated by the default severity (the records rate nothing): pip 3" in r.stdout
    assert "PYSEC-2023-73 is withdrawn" in r.stderr
    info = vulndb.read_info(out)
    assert (info.advisories, info.ecosystems, info.defaulted) == (6, {"pip": 6}, {"pip": 3})


def test_the_offline_db_is_the_2026_07_23_pypa_snapshot_with_its_provenance(tmp_path: Path) -> None:
    # How long the build takes is the scan benchmark's to measure (its cold run rebuilds this DB), not a test's.
    data = vulndb.load_advisory_dir(shared_advisories(), provenance={"covers": "PyPI"})
    info = vulndb.build_db(
        data.advisories,
        tmp_path / "bundle",
        source=data.source_line(),
        covers=data.provenance.ecosystems,
        notes=data.notes,
        data_as_of=data.as_of(),
    )
    # Read from the snapshot's README: the mirror the commit lives in, its date, the data's license.
    assert data.provenance == vulndb.Provenance(
        "PyPA advisory database",
        "github.com/westonsteimel/advisory-database-pypa",
        "57da901aadaf5862a588727ec949df1e56908f4f",
        "2026-07-23",
        "CC-BY-4.0",
        ("PyPI",),  # what the bundle declares it covers: PyPI, nothing else
    )
    assert info.covers == ("pip",)  # declared by the config, as pipeline.toml does
    assert data.records == 7080  # every vulns/*/*.yaml of that commit
    # Left out, each named with its file and why: withdrawn records, and records whose every entry has a range
    # bound PEP 440 cannot read ("0.2.0-n653", timestamps) or no range and no versions at all.
    assert data.unused == 305 and sum("is withdrawn" in n for n in data.notes) == 269
    assert sum("is not a PEP 440 version Trivy can compare" in n for n in data.notes) == 25
    assert sum("no ECOSYSTEM range and no versions" in n for n in data.notes) == 11
    assert sum("versions Trivy cannot compare left out" in n for n in data.notes) == 47  # entry kept
    assert data.source_line().endswith("; 7080 records, 305 skipped")
    assert info.ecosystems == {"pip": info.advisories} and info.advisories == 6775  # one ID in two entries
    # Two real records say they were modified on 2027-07-09: misdated, named, and not taken as the data's age.
    misdated = [n for n in data.notes if "is after the data's own date 2026-07-23" in n]
    assert len(misdated) == 2 and any("PYSEC-2025-19" in n for n in misdated), misdated
    assert f"{info.newest_advisory:%Y-%m-%d}" == "2026-07-23"


def test_provenance_comes_from_the_config_or_a_readme_and_is_required(tmp_path: Path) -> None:
    osv = tmp_path / "mirror" / "vulns"
    osv.mkdir(parents=True)
    (osv / "PYSEC-2023-73.yaml").write_bytes((osv_dir("pypa") / "PYSEC-2023-73.yaml").read_bytes())
    with pytest.raises(ConfigError, match=r"provenance lacks repository, commit, date \(no README.md in it or beside"):
        vulndb.read_provenance(osv)
    (tmp_path / "mirror" / "README.md").write_text(
        "# Our mirror\n\n| field | value |\n|---|---|\n| data | Our advisories (internal) |\n"
        "| repository | https://github.com/example/advisories.git |\n| commit | " + "ab" * 20 + " |\n"
    )
    with pytest.raises(ConfigError, match=r"lacks repository, commit, date \(read .*mirror/README.md"):
        vulndb.read_provenance(osv)  # no date: nothing is taken from an incomplete table
    given = {"repository": "github.com/example/advisories", "commit": "ab" * 20, "date": "2026-01-02"}
    assert vulndb.read_provenance(osv, given).line() == (
        "vulns (github.com/example/advisories@abababababab, 2026-01-02, license not stated)"
    )
    (tmp_path / "mirror" / "README.md").write_text(
        (tmp_path / "mirror" / "README.md").read_text() + "| commit date | 2026-01-02 |\n\nLicensed CC0-1.0.\n"
    )
    assert vulndb.read_provenance(tmp_path / "mirror").line() == (
        "Our advisories (github.com/example/advisories@abababababab, 2026-01-02, CC0-1.0)"
    )


def test_bundle_round_trip_and_damage(tmp_path: Path) -> None:
    prov = vulndb.Provenance("test", "example.invalid/x", "0" * 40, "2024-10-10", "CC-BY-4.0")
    out = tmp_path / "b.osv.json.gz"
    assert vulndb.write_bundle(osv_dir("pypa"), out, prov) == 7
    got_prov, advisories = vulndb.load_bundle(out)
    assert got_prov == prov
    assert sorted(a.id for a in advisories) == sorted(a.id for a in vulndb.load_osv(osv_dir("pypa")))
    out.write_bytes(out.read_bytes()[:500])
    with pytest.raises(ConfigError, match="is truncated"):
        vulndb.load_bundle(out)
    out.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match="is not a gzip'd bundle"):
        vulndb.load_bundle(out)
    out.write_bytes(gzip.compress(b" " * (vulndb.MAX_BUNDLE_BYTES + 10)))  # 64 MiB from ~64 KiB
    with pytest.raises(ConfigError, match="more than a bundle may hold"):
        vulndb.load_bundle(out)
    out.write_bytes(gzip.compress(json.dumps({"format": "other"}).encode()))
    with pytest.raises(ConfigError, match="is not a pipelines-osv-bundle/1 bundle"):
        vulndb.load_bundle(out)
    bad: dict[str, Any] = {"format": vulndb.BUNDLE_FORMAT, "provenance": {"name": "x"}, "records": []}
    out.write_bytes(gzip.compress(json.dumps(bad).encode()))
    with pytest.raises(ConfigError, match="provenance: must give"):
        vulndb.load_bundle(out)


def test_same_id_in_two_files_and_two_spellings_is_one_advisory(tmp_path: Path) -> None:
    # A mirror of one advisory next to the original, spelling the project differently.
    record = json.loads((osv_dir("ghsa") / "GHSA-p44j-xrqg-4xrr.json").read_text())
    copy = json.loads(json.dumps(record))
    copy["affected"][0]["package"]["name"] = "products-pluggableauthservice"
    copy["affected"][0]["ranges"][0]["events"] = [{"introduced": "3.0"}, {"last_affected": "3.1"}]
    write_osv(tmp_path / "a", record)
    write_osv(tmp_path / "b", copy)
    merged = vulndb.merge(vulndb.load_osv(tmp_path))
    [adv] = merged.values()
    assert adv.vulnerable_versions == ("<2.6.1", ">=3.0, <=3.1")


# Any JSON value, nested a few levels, with the keys an OSV record uses.
_KEYS = st.sampled_from(
    [
        "id",
        "modified",
        "affected",
        "package",
        "ecosystem",
        "name",
        "ranges",
        "type",
        "events",
        "introduced",
        "fixed",
        "severity",
        "score",
        "withdrawn",
        "aliases",
        "versions",
        "x",
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["PyPI", "Debian:12", "ECOSYSTEM", "GIT", "0", "1.0", "2024-01-01T00:00:00Z", "CVSS_V3"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=examples(300), deadline=None)
@given(data=_JSON)
def test_any_json_is_advisories_or_one_config_error(data: object) -> None:
    try:
        advisories = vulndb.parse_osv(data, "fuzz.json", [])
    except ConfigError as exc:
        assert exc.file == "fuzz.json"
        return
    assert all(a.severity in vulndb.SEVERITIES and a.package for a in advisories)


def test_config_default_severity_is_checked(tmp_path: Path) -> None:
    from pipelines.config import load
    from tests.scan.test_scan import project

    cfg = load(project(tmp_path, scan_cfg='default_severity = { debian = "medium" }'))
    assert cfg.scan.default_severity == {"Debian": "MEDIUM"}
    with pytest.raises(ConfigError, match=r"scan.default_severity: npm: is not an ecosystem the database holds"):
        load(project(tmp_path, scan_cfg='default_severity = { npm = "LOW" }'))
    with pytest.raises(ConfigError, match=r"'SEVERE' is not one of"):
        load(project(tmp_path, scan_cfg='default_severity = { PyPI = "SEVERE" }'))


def test_image_ecosystems_from_a_recorded_trivy_report() -> None:
    data = json.loads((ROOT / "tests" / "data" / "recorded" / "trivy-image-api.json").read_text())
    assert scan.image_ecosystems(data) == ("debian 12", "pip")
    alpine = {"Metadata": {"OS": {"Family": "alpine", "Name": "3.19.1"}},
              "Results": [{"Class": "os-pkgs", "Type": "alpine", "Packages": [{}]},
                          {"Class": "lang-pkgs", "Type": "node-pkg", "Packages": [{}]},
                          {"Class": "lang-pkgs", "Type": "gobinary", "Packages": []}]}  # fmt: skip
    assert scan.image_ecosystems(alpine) == ("alpine 3.19", "npm")


def test_a_foreign_trivy_db_is_counted_per_ecosystem_and_dated_by_its_build(tmp_path: Path) -> None:
    # Laid out as Trivy's official DB is: no record of ours, buckets per data source.
    rec = b'{"VulnerableVersions":["<1"]}'
    tree: dict[bytes, Any] = {
        b"pip::GitHub Security Advisory pip": {b"django": {b"GHSA-1": rec, b"GHSA-2": rec}},
        b"npm::GitHub Security Advisory npm": {b"left-pad": {b"GHSA-3": rec}},
        b"alpine 3.19": {b"openssl": {b"CVE-1": b'{"FixedVersion":"3.1"}'}},
        b"data-source": {b"alpine 3.19": b"{}"},
        b"vulnerability": {b"GHSA-1": b"{}"},
    }
    db = tmp_path / "db"
    db.mkdir()
    (db / "trivy.db").write_bytes(vulndb.bolt_file(tree))
    meta = {"Version": 2, "NextUpdate": "2026-11-25T00:00:00Z", "UpdatedAt": "2026-11-24T00:00:00Z"}
    (db / "metadata.json").write_text(json.dumps(meta))
    info = vulndb.read_info(tmp_path)
    assert info.ecosystems == {"alpine 3.19": 1, "npm": 1, "pip": 2} and info.advisories == 4
    assert info.newest_advisory is None and f"{info.data_date:%Y-%m-%d}" == "2026-11-24"
    assert (info.source, info.defaulted) == ("", {})


def test_an_entry_without_a_package_is_skipped_with_a_note() -> None:
    record = json.loads((osv_dir("ghsa") / "GHSA-v845-jxx5-vc9f.json").read_text())
    git_only = {"ranges": [{"type": "GIT", "repo": "https://x.test/r", "events": [{"introduced": "0"}]}]}
    record["affected"].append(git_only)
    notes: list[str] = []
    advisories = vulndb.parse_osv(record, "r.json", notes)
    assert len(advisories) == 2 and notes == ["r.json: affected[2]: no package (commit ranges only); skipped"]
