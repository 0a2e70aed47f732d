"""The reusable Nox sessions (pipelines/nox.py), driven through the real `nox` on noxfiles written here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import nox as sessions_module
from tests.harness import run_cli_outcome

ROOT = Path(__file__).resolve().parent.parent


def nox(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`nox` from this interpreter (which has the package), in ``cwd``: as a user's `nox` with the package beside it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("NOX_SCRIPT_MODE", None)
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(out: str) -> dict[str, str]:
    """`nox -l` output: session name -> its tag."""
    found = {}
    for line in out.splitlines():
        if line[:2] in ("* ", "- "):
            name, _, rest = line[2:].partition(" [")
            found[name] = rest.partition("]")[0]
    return found


def test_a_two_line_noxfile_gets_every_stage_session_with_its_tag(tmp_path: Path) -> None:
    (tmp_path / "noxfile.py").write_text("import pipelines.nox\n\npipelines.nox.sessions()\n")
    r = nox(tmp_path, "-l")
    assert r.returncode == 0, r.stderr
    want = {s.name: s.tag for s in sessions_module.SESSIONS} | {"ci": "ci"}
    assert listed(r.stdout) == want
    assert "Everything CI runs, in order: lint, build, scan, verify, smoke." in r.stdout
    ci_only = nox(tmp_path, "-l", "-t", "ci")
    assert [n for n, _ in listed(ci_only.stdout).items() if f"* {n} " in ci_only.stdout] == [
        *sessions_module.CI_SESSIONS,
        "ci",
    ]


def test_a_session_runs_the_pipelines_command_in_noxs_own_environment(tmp_path: Path) -> None:
    (tmp_path / "noxfile.py").write_text("import pipelines.nox\n\npipelines.nox.sessions()\n")
    r = nox(tmp_path, "-s", "lint")
    # No pipeline.toml here: the command itself answers, with its exit code 2 and its message.
    assert r.returncode == 1, r.stderr
    assert f"{sys.executable} -m pipelines lint" in r.stderr
    assert "pipeline.toml: not found" in r.stdout + r.stderr and "failed with exit code 2" in r.stderr


def test_a_repository_replaces_a_session_and_keeps_the_ci_chain(tmp_path: Path) -> None:
    (tmp_path / "noxfile.py").write_text(
        "import nox\nimport pipelines.nox\n\n"
        "pipelines.nox.sessions(exclude=['lint'], ci=['lint', 'build'])\n\n\n"
        "@nox.session(venv_backend='none', tags=['ci'])\n"
        "def lint(session: nox.Session) -> None:\n"
        "    '''The stage, then our own linters.'''\n"
        "    session.log('own lint')\n"
    )
    r = nox(tmp_path, "-l")
    assert r.returncode == 0, r.stderr
    assert "* lint [ci] -> The stage, then our own linters." in r.stdout
    assert r.stdout.count("* lint ") == 1 and "in order: lint, build." in r.stdout


def test_excluding_a_session_that_does_not_exist_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "noxfile.py").write_text("import pipelines.nox\n\npipelines.nox.sessions(exclude=['lnt'])\n")
    r = nox(tmp_path, "-l")
    assert r.returncode != 0
    assert "no such session: lnt" in r.stdout + r.stderr


def test_a_session_of_ones_own_defined_first_is_not_replaced_silently(tmp_path: Path) -> None:
    (tmp_path / "noxfile.py").write_text(
        "import nox\nimport pipelines.nox\n\n\n"
        "@nox.session(venv_backend='none', tags=['ci'])\n"
        "def lint(session: nox.Session) -> None:\n"
        "    session.log('own lint')\n\n\n"
        "pipelines.nox.sessions()\n"
    )
    r = nox(tmp_path, "-l")
    assert r.returncode != 0
    assert "the noxfile defines lint already: pass exclude=['lint'] to keep its own" in r.stdout + r.stderr


def test_the_module_imports_only_the_standard_library_and_nox() -> None:
    # This repository's noxfile imports it from the checkout into Nox's own environment, which has nox alone.
    probe = (
        "import sys, nox\n"
        "before = set(sys.modules)\n"
        "import pipelines.nox\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)\n"
        "print(sorted(new))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['pipelines']"


def test_this_repositorys_noxfile_lists_its_sessions_with_nox_alone(tmp_path: Path) -> None:
    # No site-packages (-S), no working directory on the path (-P): only nox's own directory, where the
    # package is not (an editable install is a .pth file, read by `site` only). The noxfile finds it itself.
    import nox as nox_package

    env = {**os.environ, "PYTHONPATH": str(Path(nox_package.__file__).parent.parent), "NO_COLOR": "1"}
    env.pop("NOX_SCRIPT_MODE", None)
    r = subprocess.run(
        [sys.executable, "-S", "-P", "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert {"lint", "build", "tests", "ci"} <= set(listed(r.stdout))


@pytest.mark.parametrize("name", [s.name for s in sessions_module.SESSIONS])
def test_every_session_names_a_real_command(name: str) -> None:
    spec = {s.name: s for s in sessions_module.SESSIONS}[name]
    r = run_cli_outcome(*spec.command, "--help", timeout=60)
    # An unknown command is a usage error (exit 2); a real one prints its help.
    assert r.returncode == 0 and r.stdout.startswith("usage: pipelines " + spec.command[0]), r.stderr
