"""Coverage travels with the verdict: its record, the setting that requires it, and deploy's gate on a build.

A scan verdict records the vulnerability data it rests on and whether that
covered the images in full. An environment with require_full_coverage refuses
a build whose scan verdict says limited, before any signature is read; the
signed-attestation side is in test_signing (real cosign and registry).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipelines import cli, config, manifest, verdicts
from pipelines.errors import InputError, PipelineError
from pipelines.result import Result
from tests.harness import ROOT, run_cli, run_cli_outcome

LIMITED = verdicts.Coverage(
    source="bundle: PyPA advisory database (github.com/pypa/advisory-database@3ccb612573e2, 2024-10-10, CC-BY-4.0)",
    date="2024-10-10",
    ecosystems=("pip",),
    limited=True,
    reason="the data does not cover debian 12 (its source declares pip); data 788 days old",
    fallback="download: connection refused",
)
FULL = verdicts.Coverage(source="download: Trivy DB", date="2026-12-06", ecosystems=("debian 12", "pip"), limited=False)
IMAGE_ID = "sha256:" + "e" * 64
# A loopback port nothing listens on: the gate after the verdicts (the registry) answers the same with or without
# the local registry running, so this stays a unit test.
REGISTRY = "127.0.0.1:9"
REF = f"{REGISTRY}/pipelines-test/cg-absent@sha256:" + "d" * 64


def project(tmp: Path, env_extra: str = "", signing: str = "") -> Path:
    (tmp / "svc").mkdir(exist_ok=True)
    (tmp / "svc" / "Dockerfile").write_text("FROM scratch\n")
    (tmp / "cosign.pub").write_text("read only after the verdicts passed\n")
    cfg = tmp / "pipeline.toml"
    cfg.write_text(
        textwrap.dedent(f"""
        [project]
        name = "coverage-gate"
        [registry]
        address = "{REGISTRY}"
        [services.svc]
        context = "svc"
        [environments.qa]
        push = true
        {env_extra}
        [signing]
        public_key = "cosign.pub"
        key = "env://CG_COSIGN_KEY"
        {signing}
    """)
    )
    return cfg


def test_require_full_coverage_is_a_per_environment_setting(tmp_path: Path) -> None:
    ref = config.load(ROOT / "pipeline.toml")
    # Off everywhere in the reference setup: it scans offline, and the bundle never covers Debian (see pipeline.toml).
    assert not any(e.require_full_coverage for e in ref.environments.values())
    assert "require_full_coverage = false" in (ROOT / "pipeline.toml").read_text()
    assert config.load(project(tmp_path, "require_full_coverage = true")).env("qa").require_full_coverage
    assert not config.load(project(tmp_path)).env("qa").require_full_coverage
    with pytest.raises(PipelineError, match=r"environments\.qa\.require_full_coverage: .*true or false"):
        config.load(project(tmp_path, "require_full_coverage = 1"))
    # The coverage is read from the signed scan verdict: requiring it without attestations cannot work.
    with pytest.raises(PipelineError, match=r"require_full_coverage: needs \[signing\]\.attest = true") as exc:
        config.load(project(tmp_path, "require_full_coverage = true", "attest = false"))
    assert exc.value.exit_code == 2
    r = run_cli("--config", str(project(tmp_path, "require_full_coverage = true", "attest = false")), "config")
    assert r.returncode == 2 and "require_full_coverage" in r.stderr and "Traceback" not in r.stderr


def test_the_verdict_record_carries_the_coverage_and_a_damaged_one_is_exit_2(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    subjects = {"svc": IMAGE_ID}
    # What the CLI does with a scan's result: the reports and the verdict record both carry the coverage.
    res = Result(stage="scan", headline="gate: passed", env="qa", subjects=subjects, coverage=LIMITED)
    cli.emit(res, "json", tmp_path / "scan.json", artifacts=artifacts, environ={})
    assert json.loads((tmp_path / "scan.json").read_text())["coverage"] == LIMITED.model_dump(mode="json")
    v = verdicts.load(artifacts, "qa", "scan")
    assert v is not None and v.coverage == LIMITED
    assert json.loads(verdicts.path(artifacts, "qa", "scan").read_text())["coverage"] == {
        "source": LIMITED.source,
        "date": "2024-10-10",
        "ecosystems": ["pip"],
        "limited": True,
        "reason": LIMITED.reason,
        "fallback": "download: connection refused",
    }
    file = verdicts.path(artifacts, "qa", "scan")
    good = json.loads(file.read_text())
    for damage in ({"limited": "perhaps"}, {"ecosystems": "pip"}, {"extra": 1}):
        file.write_text(json.dumps({**good, "coverage": {**good["coverage"], **damage}}))
        with pytest.raises(InputError, match="not a verdict record") as exc:
            verdicts.load(artifacts, "qa", "scan")
        assert str(file) in exc.value.what and exc.value.exit_code == 2
    file.write_text(json.dumps({**good, "coverage": None}))  # a stage that judges no data records none
    assert verdicts.load(artifacts, "qa", "scan") is not None


# A deploy asks for the key that signs its release record before anything runs; these never get that far.
KEY_ENV = {"CG_COSIGN_KEY": "never read: a gate refuses first", "COSIGN_PASSWORD": ""}


def _build(tmp: Path, scan_coverage: verdicts.Coverage | None) -> Path:
    """A recorded, pushed build of qa whose scan, verify and smoke verdicts passed for exactly its image."""
    artifacts = tmp / "artifacts"
    image = manifest.BuiltImage(
        name="svc", kind="service", ref=REF, tags=(f"{REGISTRY}/pipelines-test/cg-absent:git-abc",),
        image_id=IMAGE_ID, digest=REF.rsplit("@", 1)[1], seconds=1.0, pushed=True,
    )  # fmt: skip
    record = manifest.BuildRecord(
        env="qa", commit="abc", dirty=False, builder="default", cache="inline", started="2026-12-07T00:00:00Z",
        seconds=1.0, images={"svc": image},
    )  # fmt: skip
    manifest.save(artifacts, record)
    for stage in ("scan", "verify", "smoke"):
        verdicts.record(
            artifacts, stage=stage, env="qa", passed=True, subjects={"svc": IMAGE_ID}, headline=f"{stage} passed",
            reports="", coverage=scan_coverage if stage == "scan" else None,
        )  # fmt: skip
    return tmp / "state"


def test_deploy_refuses_a_limited_scan_verdict_where_full_coverage_is_required(tmp_path: Path) -> None:
    strict = project(tmp_path, "require_full_coverage = true")
    state = _build(tmp_path, LIMITED)
    r = run_cli_outcome("--config", str(strict), "deploy", "--env", "qa", "--state", str(state), env=KEY_ENV)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "refusing to deploy the build of 'qa'" in r.stderr
    assert "its vulnerability data coverage is limited" in r.stderr and LIMITED.reason in r.stderr
    assert "environments.qa.require_full_coverage" in r.stderr and "Traceback" not in r.stderr
    # A scan verdict that records no coverage is no proof of full coverage either.
    _build(tmp_path, None)
    r = run_cli_outcome("--config", str(strict), "deploy", "--env", "qa", "--state", str(state), env=KEY_ENV)
    assert r.returncode == 1 and "records no vulnerability data coverage" in r.stderr, r.stderr[-2000:]
    # Full coverage passes the verdict gate; the next gate (the image's signature) is what stops this one.
    _build(tmp_path, FULL)
    r = run_cli_outcome("--config", str(strict), "deploy", "--env", "qa", "--state", str(state), env=KEY_ENV)
    assert "coverage is limited" not in r.stderr and "require_full_coverage" not in r.stderr
    assert f"the registry {REGISTRY} does not answer" in r.stderr, r.stderr[-2000:]
    # Not required: the same limited verdict passes the verdict gate.
    _build(tmp_path, LIMITED)
    r = run_cli_outcome("--config", str(project(tmp_path)), "deploy", "--env", "qa", "--state", str(state), env=KEY_ENV)
    assert "coverage is limited" not in r.stderr and "require_full_coverage" not in r.stderr
    assert f"the registry {REGISTRY} does not answer" in r.stderr, r.stderr[-2000:]
