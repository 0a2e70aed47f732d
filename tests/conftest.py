"""Shared fixtures.

Tests marked ``engine`` need the real Docker engine, buildx and the local
registry. Without them they are skipped on a developer machine but FAIL under
CI=true: there a missing engine means the build was not proven.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import config, registry
from pipelines.errors import PipelineError
from pipelines.tools import Toolchain

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Data files taken from other projects live beside the repository, never in it (CI has the same folder).
SHARED_TESTDATA = ROOT.parent / "shared" / "testdata"
# The real advisory records tests read there (SOURCES.md in each folder names repository, path and commit).
GHSA_FILES = ("GHSA-jh3w-4vvf-mjgr.json", "GHSA-p44j-xrqg-4xrr.json", "GHSA-v845-jxx5-vc9f.json")
PYPA_FILES = tuple(
    f"PYSEC-{n}.yaml" for n in ("2020-341", "2020-342", "2021-45", "2023-100", "2023-192", "2023-212", "2023-73")
)


def shared_data(rel: str, names: tuple[str, ...] = ()) -> Path:
    """A data file (or a folder holding `names`) under ../shared/testdata.

    Missing: the test is skipped on a developer machine and FAILS under CI=true, naming the file, since CI has
    the folder beside the clone and a silent skip would hide a test that never ran.
    """
    path = SHARED_TESTDATA / rel
    for p in [path, *(path / n for n in names)]:
        if not p.exists():
            msg = f"test data file {p} is missing (shared data folder ../shared/testdata beside the repository)"
            if IN_CI:
                pytest.fail(f"CI=true and {msg}")
            pytest.skip(msg)
    return path


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run the real `pipelines` command in a child process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session", autouse=True)
def _deploy_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Release history a test makes without --state goes to a directory of this run, never the host's own."""
    home = tmp_path_factory.mktemp("xdg-state")
    kept = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(home)
    try:
        yield home
    finally:
        if kept is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = kept


@pytest.fixture(scope="session")
def tools() -> Toolchain:
    t = Toolchain()
    try:
        t.require_build()
        t.compose_version  # noqa: B018
        registry.check(config.load(ROOT / "pipeline.toml").registry.address)
    except PipelineError as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the container toolchain is not usable:\n{exc.render()}")
        pytest.skip(f"container toolchain not usable here: {exc.what}")
    return t


@pytest.fixture(scope="session")
def cfg() -> config.Config:
    return config.load(ROOT / "pipeline.toml")


@pytest.fixture(scope="session")
def built(tools: Toolchain, cfg: config.Config) -> dict[str, Any]:
    """Build everything for `dev` with the real CLI, once per test session."""
    r = run_cli("build", "--env", "dev")
    assert r.returncode == 0, f"pipelines build failed:\n{r.stderr[-6000:]}"
    manifest = json.loads((cfg.project.artifacts / "build" / "dev.json").read_text())
    assert set(manifest["images"]) == set(cfg.images)
    return manifest


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture
def container_names() -> Iterator[list[str]]:
    """Names of containers a test starts; removed afterwards whatever happened."""
    names: list[str] = []
    yield names
    for n in names:
        docker("rm", "-f", "-v", n, check=False)


def osv_dir(feed: str) -> Path:
    """A folder of OSV test records: `ghsa` and `pypa` (real records, shared) or `debian` (constructed, here)."""
    if feed == "ghsa":
        return shared_data("osv/ghsa", GHSA_FILES)
    if feed == "pypa":
        return shared_data("osv/pypa-3ccb612573e2", PYPA_FILES)
    return ROOT / "tests" / "data" / "osv" / feed


def shared_advisories() -> Path:
    """The PyPA advisory database snapshot the project's scan builds its offline DB from (../shared/advisories)."""
    path = ROOT.parent / "shared" / "advisories" / "pypa-advisory-database"
    for p in (path / "vulns", path.parent / "README.md"):
        if not p.exists():
            msg = f"advisory data {p} is missing (shared data folder ../shared/advisories beside the repository)"
            if IN_CI:
                pytest.fail(f"CI=true and {msg}")
            pytest.skip(msg)
    return path
