"""Real engine: the Compose stack, the smoke stage and its guaranteed teardown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines import composestack as stack
from pipelines import config
from pipelines.tools import Toolchain
from tests.harness import ROOT, RunLocks, run_cli

# The reference worker's inbox: service knowledge lives in the project's tests, not the package.
INBOX = "/var/lib/ingestion/inbox"


@pytest.fixture(scope="module")
def built_prod(built: dict[str, Any], cfg: config.Config, locks: RunLocks) -> None:
    locks.build(cfg, "prod")


def leftovers(project: str) -> dict[str, list[str]]:
    return stack.leftovers(project)


def assert_clean(project: str) -> None:
    deadline = time.monotonic() + 30
    left = leftovers(project)
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        left = leftovers(project)
    assert not any(left.values()), f"{project} left {left}"


def smoke_report(cfg: config.Config, project: str) -> dict[str, Any]:
    return dict(json.loads((cfg.project.artifacts / "smoke" / project / "smoke.json").read_text()))


def test_prod_smoke_passes_and_removes_everything(built_prod: None, cfg: config.Config) -> None:
    project = f"pt-smoke-prod-{os.getpid()}"
    r = run_cli("smoke", "--env", "prod", "--project", project, timeout=600)
    assert r.returncode == 0, r.stderr[-6000:]
    rep = smoke_report(cfg, project)
    names = {c["name"] for c in rep["checks"]}
    # The generic health check, the config's HTTP probes and the project's own suite all ran.
    assert rep["ok"] and rep["status"] == "passed"
    assert names >= {"services healthy", *(p.name for p in cfg.smoke.probes)}
    assert names >= {
        "test_metrics_reject_a_wrong_password",
        "test_bad_input_gets_json_errors",
        "test_ingested_documents_become_searchable",
        "test_malformed_records_are_rejected_and_the_worker_goes_on",
    }
    assert all(c["ok"] for c in rep["checks"])
    assert rep["up_to_healthy_s"] > 0
    assert_clean(project)


def test_failing_probe_shows_evidence_and_tears_down(built: dict[str, Any], cfg: config.Config, tmp_path: Path) -> None:
    overlay = tmp_path / "no-metrics.yaml"
    # Without its credential file the API turns /metrics off: the metrics probe must fail.
    overlay.write_text("services:\n  api:\n    environment:\n      METRICS_PASSWORD_FILE: /nonexistent\n")
    project = f"pt-smoke-fail-{os.getpid()}"
    # Under python -O too: probe verdicts must not rest on `assert`.
    r = subprocess.run(
        [sys.executable, "-O", "-m", "pipelines", "smoke", "--project", project, "--compose-file", str(overlay)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 1, r.stderr[-4000:]
    assert "FAIL metrics with the configured credential" in r.stderr
    failed_line = next(line for line in r.stdout.splitlines() if "check(s) failed:" in line)
    assert "metrics with the configured credential" in failed_line and "api liveness" not in failed_line
    assert "services" in r.stdout and "last lines of api" in r.stdout
    logs = cfg.project.artifacts / "smoke" / project / "logs"
    assert (logs / "api.log").stat().st_size > 0 and (logs / "db.log").exists()
    assert "Traceback" not in r.stderr
    assert_clean(project)


def test_failed_start_tears_down(built: dict[str, Any], tmp_path: Path) -> None:
    overlay = tmp_path / "broken-migrate.yaml"
    overlay.write_text('services:\n  migrate:\n    entrypoint: ["/opt/venv/bin/python", "-c", "raise SystemExit(3)"]\n')
    project = f"pt-smoke-nostart-{os.getpid()}"
    r = run_cli("smoke", "--project", project, "--compose-file", str(overlay), timeout=600)
    assert r.returncode == 1, r.stderr[-4000:]
    assert "did not come up" in r.stdout or "docker compose up failed" in r.stdout, r.stdout[-3000:]
    assert "last lines of migrate" in r.stdout
    assert_clean(project)


def test_interrupted_smoke_removes_everything(built: dict[str, Any]) -> None:
    project = f"pt-smoke-int-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "smoke", "--project", project],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not leftovers(project)["containers"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers(project)["containers"], "the stack never started"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert_clean(project)


def test_two_smoke_runs_at_once(built: dict[str, Any]) -> None:
    projects = [f"pt-smoke-par{i}-{os.getpid()}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines", "smoke", "--project", p],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in projects
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-4000:]
    for project in projects:
        assert_clean(project)


def _files_holding(root: Path, values: list[str]) -> list[str]:
    """Every file under ``root`` whose bytes contain one of ``values``."""
    needles = [v.encode() for v in values]
    return sorted(str(f) for f in root.rglob("*") if f.is_file() and any(n in f.read_bytes() for n in needles))


def test_smoke_leaves_no_generated_secret_under_artifacts(built: dict[str, Any], cfg: config.Config) -> None:
    """CI uploads artifacts/: the secrets a smoke run makes live in a private directory outside it, gone after."""
    kept = f"pt-secrets-kept-{os.getpid()}"
    r = run_cli("smoke", "--env", "dev", "--project", kept, "--keep", timeout=600)
    st = stack.Stack.from_handle(cfg.project.artifacts / "smoke" / kept / stack.HANDLE)
    secrets_dir = st.secrets_dir
    try:
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        values = [v for v in st.secret_values() if v]
        assert len(values) >= 3, f"the kept stack has {len(values)} secrets in {secrets_dir}"
        assert not secrets_dir.resolve().is_relative_to(cfg.project.artifacts.resolve()), secrets_dir
        assert secrets_dir.stat().st_mode & 0o777 == 0o700
        # Reports, logs, the rendered Compose file, the stack handle, the suite's JUnit: none holds a value.
        assert _files_holding(cfg.project.artifacts, values) == []
    finally:
        st.down()
        shutil.rmtree(secrets_dir, ignore_errors=True)
        assert_clean(kept)

    # Without --keep the private directory goes with the stack.
    project = f"pt-secrets-{os.getpid()}"
    before = set(Path(tempfile.gettempdir()).glob(f"pipelines-secrets-{project}-*"))
    r = run_cli("smoke", "--env", "dev", "--project", project, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    handle = json.loads((cfg.project.artifacts / "smoke" / project / stack.HANDLE).read_text())
    assert not Path(handle["secrets_dir"]).exists(), handle["secrets_dir"]
    assert set(Path(tempfile.gettempdir()).glob(f"pipelines-secrets-{project}-*")) == before == set()
    assert not (cfg.project.artifacts / "smoke" / project / "secrets").exists()
    assert_clean(project)


def test_services_in_the_stack_stop_within_2s(built: dict[str, Any], cfg: config.Config) -> None:
    """SIGTERM reaches the app through tini: the worker and the API stop at once, not after the timeout."""
    project = f"pt-stop-{os.getpid()}"
    st = stack.Stack(cfg, "dev", project, cfg.project.artifacts / "smoke" / project, Toolchain())
    try:
        with stack.running(st, keep=False, deadline_s=120):
            for service in ("ingestion", "api"):
                assert st.ps()[service].health == "healthy"
                start = time.monotonic()
                st.compose("stop", "--timeout", "10", service)
                took = time.monotonic() - start
                state = st.ps()[service]
                assert took < 2.0, f"{service} took {took:.1f}s to stop"
                assert state.state == "exited" and state.exit_code in (0, 143), state
    finally:
        assert_clean(project)


def _total(base: str) -> int:
    status, _, body = stack.http("GET", f"{base}/documents?limit=1")
    assert status == 200, body
    return int(json.loads(body)["total"])


def _wait_total(base: str, want: int, deadline: float) -> int:
    start = time.monotonic()
    n = _total(base)
    while n != want and time.monotonic() - start < deadline:
        time.sleep(0.3)
        n = _total(base)
    return n


def test_sigkill_mid_batch_then_restart_stores_each_document_once(built: dict[str, Any], cfg: config.Config) -> None:
    project = f"pt-kill-{os.getpid()}"
    st = stack.Stack(cfg, "dev", project, cfg.project.artifacts / "smoke" / project, Toolchain())
    valid = 30_000
    try:
        with stack.running(st, keep=False, deadline_s=120):
            base = "http://" + st.port("api", 8000)
            before = _wait_total(base, 20, 30)  # dev seed data
            assert before == 20
            lines = [json.dumps({"id": f"k-{i}", "body": f"kill test document {i}"}) for i in range(valid)]
            lines[100:100] = [json.dumps({"id": "k-5", "body": "a repeat of k-5 inside the batch"})] * 50
            lines[200:200] = ['{"broken": '] * 25
            batch = st.run_dir / "kill.jsonl"
            batch.write_text("\n".join(lines) + "\n")
            st.copy_in(batch, "ingestion", f"{INBOX}/kill.jsonl")
            start = time.monotonic()
            while _total(base) <= before and time.monotonic() - start < 60:
                time.sleep(0.05)
            st.compose("kill", "--signal", "SIGKILL", "ingestion")
            at_kill = _total(base)
            assert before < at_kill < before + valid, f"not killed mid-batch: {at_kill} stored"
            assert st.ps()["ingestion"].state == "exited"
            st.compose("start", "ingestion")
            final = _wait_total(base, before + valid, 120)
            assert final == before + valid, f"{final} stored, expected {before + valid}"
            # The same batch again under another name changes nothing.
            st.copy_in(batch, "ingestion", f"{INBOX}/kill-again.jsonl")
            done = st.run_dir / "done-check"
            start = time.monotonic()
            while not st.copy_out("ingestion", "/var/lib/ingestion/done/kill-again.jsonl", done):
                assert time.monotonic() - start < 120, "the repeated batch was never processed"
                time.sleep(0.5)
            assert _total(base) == before + valid
            status, _, body = stack.http("GET", f"{base}/documents/k-5")
            assert status == 200 and json.loads(body)["body"] == "kill test document 5"  # first write wins
    finally:
        assert_clean(project)


THIRD = """
services:
  extra:
    image: ${REGISTRY}/${NAMESPACE}/api:${IMAGE_TAG}
    entrypoint: ["/opt/venv/bin/python", "-m", "http.server", "9000", "--directory", "/tmp"]
    read_only: true
    tmpfs: ["/tmp"]
    cap_drop: [ALL]
    ports: ["127.0.0.1::9000"]
    healthcheck:
      test: ["CMD", "/opt/venv/bin/python", "-c", "%s"]
      interval: 1s
      timeout: 3s
      retries: 3
      start_period: 10s
"""
HEALTHY = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/', timeout=2)"


def test_a_third_service_needs_no_probe_code(built: dict[str, Any], tmp_path: Path) -> None:
    """Health of any service comes free; its own probe is a few lines of config."""
    overlay = tmp_path / "third.yaml"
    overlay.write_text(THIRD % HEALTHY)
    config_copy = ROOT / f".pipeline-third-{os.getpid()}.toml"
    config_copy.write_text(
        (ROOT / "pipeline.toml").read_text()
        + '\n[[smoke.probes]]\nname = "extra answers"\nservice = "extra"\nport = 9000\npath = "/"\n'
    )
    project = f"pt-smoke-third-{os.getpid()}"
    try:
        r = run_cli(
            "--config", str(config_copy), "smoke", "--project", project, "--compose-file", str(overlay), timeout=600
        )
    finally:
        config_copy.unlink()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((ROOT / "artifacts" / "smoke" / project / "smoke.json").read_text())
    checks = {c["name"]: c for c in rep["checks"]}
    assert "extra healthy" in checks["services healthy"]["detail"]
    assert checks["extra answers"]["ok"] and checks["extra answers"]["detail"] == "GET / -> 200"
    assert_clean(project)

    # The same service with a healthcheck that never passes fails the smoke, naming it.
    overlay.write_text(THIRD % "raise SystemExit(1)")
    project = f"pt-smoke-third-bad-{os.getpid()}"
    r = run_cli("smoke", "--project", project, "--compose-file", str(overlay), "--deadline", "60", timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "extra" in r.stdout and "unhealthy" in r.stdout, r.stdout[-3000:]
    assert_clean(project)
