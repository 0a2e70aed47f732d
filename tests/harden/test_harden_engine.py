"""A FastAPI service on python:3.11-slim, adopted with `pipelines init`, hardened with `pipelines harden`, then
built on the golden bases (reused through the lock) and put through `pipelines verify`'s hardening matrix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines import config
from pipelines.tools import Toolchain
from tests.harness import ROOT, docker

FILES = {
    "requirements.txt": "fastapi==0.110.0\nuvicorn==0.29.0\n",
    "app/__init__.py": "",
    "app/main.py": """
        from fastapi import FastAPI

        app = FastAPI()


        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}
    """,
    "Dockerfile": """
        FROM python:3.11-slim
        WORKDIR /srv
        COPY requirements.txt .
        RUN pip install --no-cache-dir -r requirements.txt
        COPY app ./app
        EXPOSE 8000
        CMD uvicorn app.main:app --host 0.0.0.0 --port 8000
    """,
}


def _pipelines(repo: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_hardened_fastapi_service_builds_on_the_golden_bases_and_passes_verify(
    tools: Toolchain, network: None, cfg: config.Config, tmp_path: Path
) -> None:
    repo = tmp_path / "hardshop"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(textwrap.dedent(text).lstrip())
    assert _pipelines(repo, "init").returncode == 0
    r = _pipelines(repo, "harden")
    assert r.returncode == 0, r.stdout + r.stderr
    # This run's registry and base names, so the golden bases of the lock are reused, not built again.
    toml = (repo / "pipeline.toml").read_text()
    toml = toml.replace('namespace = "hardshop"', f'namespace = "{cfg.registry.namespace}"')
    toml = toml.replace('address = "127.0.0.1:5000"', f'address = "{cfg.registry.address}"')
    (repo / "pipeline.toml").write_text(toml + '\n[images.debian]\ngolden = "debian-bookworm"\n')
    for name in ("pipeline.lock.json", "pipeline.packages.json"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, repo / name)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    tag = f"{cfg.registry.address}/{cfg.registry.namespace}/hardshop"
    try:
        build = _pipelines(repo, "build")
        out = build.stdout + build.stderr
        assert build.returncode == 0, out[-6000:]
        assert "Traceback" not in out
        verify = _pipelines(repo, "verify", "--format", "json")
        doc = json.loads(verify.stdout)
        cells = {(c["group"], c["name"]): c["outcome"] for c in doc["checks"]}
        mine = {name: outcome for (group, name), outcome in cells.items() if group == "hardshop"}
        # Every cell the Dockerfile decides passes; the OCI source label comes from a git remote this repo lacks.
        failed = {name for name, outcome in mine.items() if outcome == "fail"} - {"VFY-LABELS"}
        assert mine and not failed, mine
    finally:
        for suffix in ("dev", "nogit-dev"):
            docker("rmi", "-f", f"{tag}:{suffix}", check=False)
