"""A repository that adopts the package runs `nox -s build scan smoke` on golden bases it names, with no file of
this repository: its own config, Dockerfile, Compose file and the noxfile `pipelines init` writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pipelines import config
from pipelines.adopt import write
from tests.harness import ROOT, docker, shared_advisories

APP = """\
import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

DOCKERFILE = """\
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE

FROM ${BUILDER_IMAGE} AS build
WORKDIR /app
COPY app.py .
RUN python3 -m compileall -q app.py

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /app /app
USER 65532:65532
EXPOSE 8000
HEALTHCHECK --interval=2s --timeout=2s --retries=10 \\
  CMD ["/usr/bin/python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=1)"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/python3", "/app/app.py"]
"""

COMPOSE = """\
services:
  web:
    image: ${REGISTRY}/${NAMESPACE}/web:${TAG:-dev}
    build: {context: web, target: runtime}
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    ports: ["127.0.0.1::8000"]
"""


def _config(cfg: config.Config) -> str:
    # The same registry and namespace as this run's own build, so the golden bases it built (same definitions,
    # same inputs) are reused through the lock instead of built a second time.
    return textwrap.dedent(
        f"""\
        [project]
        name = "shop"

        [registry]
        address = "{cfg.registry.address}"
        namespace = "{cfg.registry.namespace}"

        [images.debian]
        golden = "debian-bookworm"

        [images.python-builder]
        golden = "python-builder"

        [images.python-runtime]
        golden = "python-runtime"

        [services.web]
        context = "web"
        target = "runtime"
        bases = {{ BUILDER_IMAGE = "python-builder", RUNTIME_IMAGE = "python-runtime" }}

        [compose]
        files = ["compose.yaml"]

        [environments.dev]
        push = false
        tags = ["dev"]

        [scan]
        db_sources = ["bundle"]
        offline_advisories = "{shared_advisories()}"
        offline_provenance = {{ covers = "PyPI" }}
        accept_limited_coverage = true
        """
    )


def test_an_adopting_repository_builds_scans_and_smokes_on_named_golden_bases(
    built: dict[str, Any], cfg: config.Config, tmp_path: Path
) -> None:
    repo = tmp_path / "shop"
    (repo / "web").mkdir(parents=True)
    (repo / "web" / "app.py").write_text(APP)
    (repo / "web" / "Dockerfile").write_text(DOCKERFILE)
    (repo / "compose.yaml").write_text(COMPOSE)
    (repo / "pipeline.toml").write_text(_config(cfg))
    (repo / "noxfile.py").write_text(write.noxfile())
    for name in ("pipeline.lock.json", "pipeline.packages.json"):
        shutil.copy(ROOT / name, repo / name)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "build", "scan", "smoke"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    out = r.stdout + r.stderr
    try:
        assert r.returncode == 0, out[-6000:]
        assert "Traceback" not in out, out[-6000:]
        # The bases were the golden ones of the package, taken from the lock, not rebuilt.
        assert "reusing" in out and "python-runtime" in out, out[-6000:]
        manifest = json.loads((repo / "artifacts" / "build" / "dev.json").read_text())
        assert {"web", "python-runtime", "python-builder", "debian"} <= set(manifest["images"]), manifest["images"]
        for stage in ("scan", "smoke"):
            verdict = json.loads((repo / "artifacts" / "verdicts" / "dev" / f"{stage}.json").read_text())
            # Each verdict names the service image it examined, by the ID the build recorded.
            assert verdict["passed"] and "web" in verdict["subjects"], verdict
    finally:
        tag = f"{cfg.registry.address}/{cfg.registry.namespace}/web:dev"
        docker("rmi", "-f", tag, check=False)
