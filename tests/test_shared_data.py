"""Data taken from other projects is read from ../shared beside the repository, and never committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import harness
from tests.harness import ROOT


def test_a_missing_shared_file_fails_under_ci_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "SHARED_TESTDATA", tmp_path)
    monkeypatch.setattr(harness, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match=rf"CI=true and test data file {tmp_path}/osv/ghsa is missing"):
        harness.osv_dir("ghsa")
    (tmp_path / "osv" / "ghsa").mkdir(parents=True)
    with pytest.raises(pytest.fail.Exception, match=r"osv/ghsa/GHSA-jh3w-4vvf-mjgr\.json is missing"):
        harness.osv_dir("ghsa")


def test_a_missing_shared_file_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "SHARED_TESTDATA", tmp_path)
    monkeypatch.setattr(harness, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=r"k8s-psa/pass/v1.25-base.yaml is missing"):
        harness.shared_data("k8s-psa/pass/v1.25-base.yaml")


def test_shared_data_is_found_relative_to_the_project_root() -> None:
    assert ROOT.parent / "shared" / "testdata" == harness.SHARED_TESTDATA


# Folders and files that held other projects' files; none may come back into the tree.
COPIED = (
    "tests/bench/realworld/dockerfile/",
    "tests/bench/realworld/compose/",
    "tests/k8s/data/k8s/psa/",
    "tests/data/osv/ghsa/",
    "tests/data/osv/pypa/",
    "pipelines/scan/advisories/",
)


def test_the_repository_holds_no_file_copied_from_another_repository() -> None:
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    if r.returncode != 0:
        if harness.IN_CI:
            pytest.fail(f"CI=true and not a git checkout: {r.stderr.strip()}")
        pytest.skip(f"not a git checkout: {r.stderr.strip()}")
    files = r.stdout.splitlines()
    assert files, "git ls-files listed nothing"
    assert [f for f in files if f.startswith(COPIED)] == []
    # Build recipes under tests/ are the project's own: each lives in a corpus this project wrote.
    recipes = [f for f in files if f.startswith("tests/") and Path(f).name in ("Dockerfile", "compose.yaml")]
    assert all(f.startswith(("tests/lint_corpus/", "tests/cli/bad_inputs/", "tests/data/")) for f in recipes), recipes
