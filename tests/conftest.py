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
