"""The golden matrix built for real: each Debian suite's Python builder and runtime, checked inside and verified.

One project outside the reference one (its own registry namespace and lock, under the git-ignored
artifacts/), so the reference services stay on bookworm and a later run reuses the bases from that lock.
Each suite is built once per run, under the run's build lock.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipelines import lockfile, manifest
from tests.harness import ROOT, RunLocks, docker, run_cli

PROJECT = ROOT / "artifacts" / "golden-matrix"
# suite -> the Python it carries, and how the project names its images: the runtime by family and version,
# so the build's report has a version mismatch to state.
SUITES = {"trixie": "3.13", "forky": "3.14"}
CONFIG = """
[project]
name = "golden-matrix"
source = "https://github.com/pipelines-dev/pipelines"

[registry]
address = "127.0.0.1:5000"
namespace = "golden-matrix"

[images.python-builder-trixie]
golden = "python-builder"
python = "3.13"

[images.python-runtime-trixie]
golden = "python-runtime"
python = "3.12"

[images.python-builder-forky]
golden = "python-builder-forky"

[images.python-runtime-forky]
golden = "python-runtime-forky"

[services.probe]
context = "probe"
bases = { RUNTIME_IMAGE = "python-runtime-trixie" }

# One environment per suite: each has a build record of its own, which verify reads.
[environments.trixie]
push = false

[environments.forky]
push = false
"""

_BUILT: dict[str, dict[str, Any]] = {}
# suite -> the exit code and output of a build the archive's state refused
_REFUSED: dict[str, tuple[int, str]] = {}


# As in the reference project: a debootstrapped rootfs carries no OCI labels; the images on it do.
WAIVER = """
  - id: VFY-LABELS
    scope: {{image: debian-{suite}}}
    reason: the golden rootfs is imported from a debootstrap tarball, which carries no OCI labels
    owner: platform-team
    expires: {expires}
"""


def _project() -> Path:
    (PROJECT / "probe").mkdir(parents=True, exist_ok=True)
    (PROJECT / "probe" / "Dockerfile").write_text("ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n")
    (PROJECT / "security").mkdir(exist_ok=True)
    expires = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    waivers = "".join(WAIVER.format(suite=s, expires=expires) for s in SUITES)
    (PROJECT / "security" / "waivers.yaml").write_text("waivers:" + waivers)
    path = PROJECT / "pipeline.toml"
    text = textwrap.dedent(CONFIG).lstrip()
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


@pytest.fixture(scope="module", params=sorted(SUITES))
def suite_build(request: pytest.FixtureRequest, tools: object, root: None, network: None, locks: RunLocks) -> Any:
    """The suite's builder and runtime, built (or reused from the project's lock) once per run."""
    suite: str = request.param
    if suite not in _BUILT and suite not in _REFUSED:
        _build(suite, locks)
    if suite in _REFUSED:
        # The image checks cannot run on an image the archive's state kept from being built; that refusal is
        # itself checked, by test_an_expired_archive_is_refused_naming_the_index.
        out = _REFUSED[suite][1]
        pytest.skip(f"{suite}: " + out[out.find("error:") :].splitlines()[0])
    return _BUILT[suite]


def _build(suite: str, locks: RunLocks) -> None:
    path = _project()
    names = (f"python-builder-{suite}", f"python-runtime-{suite}")
    with locks.exclusive("build"):
        r = run_cli(
            "--config", str(path), "build", "--env", suite, "--parallel", "1", "--format", "json", "--only", *names
        )
    out = r.stdout + r.stderr
    if r.returncode != 0:
        if "serve expired indexes" not in out:
            pytest.fail(f"pipelines build of {suite} exited {r.returncode}:\n{out[-6000:]}")
        # The archive's state, not the package's: apt rightly refuses a Release past its Valid-Until.
        _REFUSED[suite] = (r.returncode, out)
        return
    lock = lockfile.load(PROJECT / "pipeline.lock.json")
    _BUILT[suite] = {
        "report": json.loads(r.stdout),
        "builder": lock[names[0]].ref,
        "runtime": lock[names[1]].ref,
        "python": SUITES[suite],
        "suite": suite,
    }


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_an_expired_archive_is_refused_naming_the_index(
    suite: str, tools: object, root: None, network: None, locks: RunLocks
) -> None:
    """Each suite builds, or its mirror's expired index stops the build with exit 2 naming the file and its age."""
    if suite not in _BUILT and suite not in _REFUSED:
        _build(suite, locks)
    if suite in _BUILT:
        assert not _BUILT[suite]["report"]["failed"], _BUILT[suite]["report"]
        return
    code, out = _REFUSED[suite]
    assert code == 2 and "Traceback" not in out, out[-3000:]
    assert re.search(r"serve expired indexes: http\S+Release \(expired .+ ago\)", out), out[-3000:]
    assert "Valid-Until" in out, out[-3000:]


def _local(ref: str) -> str:
    if docker("image", "inspect", ref, check=False).returncode != 0:
        docker("pull", "-q", ref, timeout=300)
    return ref


def test_builder_and_runtime_carry_the_suites_python(suite_build: dict[str, Any]) -> None:
    builder = docker("run", "--rm", _local(suite_build["builder"]), "python3", "--version").stdout.strip()
    runtime = docker("run", "--rm", _local(suite_build["runtime"]), "--version").stdout.strip()
    assert builder.startswith(f"Python {suite_build['python']}."), builder
    assert runtime == builder


def test_the_runtime_has_no_shell_and_runs_as_65532(suite_build: dict[str, Any]) -> None:
    ref = _local(suite_build["runtime"])
    user = docker("image", "inspect", "--format", "{{.Config.User}}", ref).stdout.strip()
    assert user == "65532:65532"
    ids = docker("run", "--rm", ref, "-c", "import os; print(os.getuid(), os.getgid())").stdout.split()
    assert ids == ["65532", "65532"]
    for shell in ("/bin/sh", "/bin/bash", "/usr/bin/dash"):
        r = docker("run", "--rm", "--entrypoint", shell, ref, "-c", "true", check=False)
        assert r.returncode != 0, shell


def test_the_build_report_states_version_and_support(suite_build: dict[str, Any]) -> None:
    suite = suite_build["suite"]
    # The build record carries them for the stages after.
    record = manifest.load(PROJECT / "artifacts", suite).images[f"python-runtime-{suite}"]
    status = {"trixie": "stable", "forky": "testing"}[suite]
    assert (record.python, record.debian, record.debian_status) == (suite_build["python"], suite, status)
    notices = "\n".join(suite_build["report"]["notices"])
    if suite_build["suite"] == "trixie":
        assert "python-runtime-trixie: python 3.12 requested, 3.13 used" in notices
    else:
        assert "Debian forky is Debian testing, without the Debian security team's support" in notices


def test_verify_passes_on_the_runtime(suite_build: dict[str, Any]) -> None:
    _local(suite_build["runtime"])
    r = run_cli("--config", str(PROJECT / "pipeline.toml"), "verify", "--env", suite_build["suite"], "--format", "json")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    checks = json.loads(r.stdout)["checks"]
    runtime = {c["name"]: c["outcome"] for c in checks if c["group"] == f"python-runtime-{suite_build['suite']}"}
    assert runtime and set(runtime.values()) <= {"pass", "n/a", "waived"}, runtime
    assert runtime["VFY-SHELL"] == "pass"
