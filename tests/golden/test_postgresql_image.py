"""The golden PostgreSQL image, built and run as a repository that adopts the package would: a thin service on it
(its own SQL for the first start), hardened Compose settings, a password from a secret file."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from pipelines import config
from tests.harness import ROOT, docker, shared_advisories

MAX_BYTES = 150 * 1000 * 1000  # the target: a datastore image at most 150 MB

DOCKERFILE = """\
ARG POSTGRESQL_IMAGE
FROM ${POSTGRESQL_IMAGE}
COPY --chown=0:0 schema.sql /docker-entrypoint-initdb.d/01-schema.sql
"""

COMPOSE = """\
services:
  db:
    image: ${REGISTRY}/${NAMESPACE}/db:${TAG:-dev}
    build: {context: db}
    read_only: true
    tmpfs: [/tmp, /var/run/postgresql]
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    environment:
      POSTGRES_USER: notes
      POSTGRES_DB: notes
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    volumes: ["pgdata:/var/lib/postgresql/data"]
secrets:
  db_password: {file: ./db_password.txt}
volumes:
  pgdata: {}
"""


def _config(cfg: config.Config) -> str:
    # The run's own registry and namespace: the golden Debian base is reused through the lock.
    return textwrap.dedent(
        f"""\
        [project]
        name = "notes"
        version = "1.0.0"
        source = "https://example.invalid/notes"

        [registry]
        address = "{cfg.registry.address}"
        namespace = "{cfg.registry.namespace}"

        [images.debian]
        golden = "debian-bookworm"

        [images.postgresql]
        golden = "postgresql"

        [services.db]
        context = "db"
        bases = {{ POSTGRESQL_IMAGE = "postgresql" }}

        [compose]
        files = ["compose.yaml"]

        [environments.dev]
        push = false
        tags = ["dev"]

        [lint]
        waivers = "waivers.yaml"

        # verify runs each image alone, with no network: a first start needs a password, any will do.
        [verify.run.db]
        environment = {{ POSTGRES_PASSWORD = "verify-only" }}

        [scan]
        db_sources = ["bundle"]
        offline_advisories = "{shared_advisories()}"
        offline_provenance = {{ covers = "PyPI" }}
        accept_limited_coverage = true
        """
    )


def _pipelines(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_the_golden_postgresql_builds_small_passes_verify_and_serves_its_users_database(
    built: dict[str, Any], cfg: config.Config, tmp_path: Path
) -> None:
    repo = tmp_path / "notes"
    (repo / "db").mkdir(parents=True)
    (repo / "db" / "Dockerfile").write_text(DOCKERFILE)
    (repo / "db" / "schema.sql").write_text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL);\n")
    (repo / "compose.yaml").write_text(COMPOSE)
    (repo / "db_password.txt").write_text("from-a-secret-file\n")
    (repo / "pipeline.toml").write_text(_config(cfg))
    # The golden rootfs is imported from a tarball and carries no OCI labels: the one waiver the reference
    # project's ledger holds for it too.
    expires = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    (repo / "waivers.yaml").write_text(
        "waivers:\n  - id: VFY-LABELS\n    scope: {image: debian}\n    reason: an imported rootfs has no labels\n"
        f"    owner: platform-team\n    expires: {expires}\n"
    )
    for name in ("pipeline.lock.json", "pipeline.packages.json"):
        shutil.copy(ROOT / name, repo / name)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-q", "-m", "notes"], check=True, timeout=60)
    tag = f"{cfg.registry.address}/{cfg.registry.namespace}/db:dev"  # the tag Compose names
    container = f"pipelines-test-golden-pg-{os.getpid()}"
    try:
        for stage in ("build", "verify", "smoke"):
            r = _pipelines(repo, stage)
            assert r.returncode == 0 and "Traceback" not in r.stderr, f"{stage}:\n{(r.stdout + r.stderr)[-6000:]}"
        manifest = json.loads((repo / "artifacts" / "build" / "dev.json").read_text())
        assert {"db", "postgresql", "debian"} <= set(manifest["images"]), manifest["images"]
        inspect = json.loads(docker("image", "inspect", tag).stdout)[0]
        assert inspect["Size"] <= MAX_BYTES, f"{inspect['Size'] / 1e6:.0f} MB"
        assert inspect["Config"]["User"] == "65532:65532" and inspect["Config"]["Healthcheck"]["Test"][0] == "CMD"
        for stage in ("verify", "smoke"):
            verdict = json.loads((repo / "artifacts" / "verdicts" / "dev" / f"{stage}.json").read_text())
            assert verdict["passed"] and "db" in verdict["subjects"], verdict
        # Run as Compose would, and ask the server itself: the user's database, its schema, its password.
        docker(
            "run", "-d", "--name", container, "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/var/run/postgresql",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
            "-e", "POSTGRES_USER=notes", "-e", "POSTGRES_PASSWORD=pw-for-this-test", tag,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, docker("logs", container, check=False).stderr[-3000:]
            time.sleep(1)
        psql = ["exec", "-e", "PGPASSWORD=pw-for-this-test", container, "psql", "-h", "127.0.0.1", "-U", "notes"]
        got = docker(*psql, "-Atc", "SELECT current_database(), to_regclass('note') IS NOT NULL", check=False)
        assert got.stdout.strip() == "notes|t", got.stdout + got.stderr
        wrong = docker("exec", "-e", "PGPASSWORD=wrong", *psql[3:], "-Atc", "SELECT 1", check=False)
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr, wrong.stderr
        shell = docker("exec", container, "/bin/sh", "-c", "true", check=False)
        assert shell.returncode != 0, "the image has a shell"
    finally:
        docker("rm", "-f", "-v", container, check=False)
        docker("rmi", "-f", tag, check=False)
