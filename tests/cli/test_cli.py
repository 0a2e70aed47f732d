"""The one boundary: results and errors become exit codes, a bug is exit 3 with a log, Ctrl-C is 130."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import cli
from pipelines._main import interrupted_inside
from pipelines.errors import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNUSABLE,
    BuildFailed,
    CommandFailed,
    GateFailed,
    PipelineError,
)
from pipelines.result import Result
from tests.harness import ROOT


def _stage_raising(exc: BaseException) -> Callable[[argparse.Namespace], tuple[None, Result]]:
    def stage(args: argparse.Namespace) -> tuple[None, Result]:
        raise exc

    return stage


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (PipelineError("no recorded build"), EXIT_UNUSABLE),
        (CommandFailed("docker image inspect failed"), EXIT_UNUSABLE),
        (BuildFailed("build of api failed"), EXIT_FAILED),
        (GateFailed("the gate said no"), EXIT_FAILED),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
    ],
)
def test_errors_map_to_their_exit_codes(
    exc: BaseException, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.STAGES, "build", _stage_raising(exc))
    assert cli.main(["--config", str(ROOT / "pipeline.toml"), "build"]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_a_bug_is_exit_3_with_one_line_and_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text())
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(cli.STAGES, "build", _stage_raising(ZeroDivisionError("division by zero")))
    code = cli.main(["build"])
    err = capsys.readouterr().err
    assert code == EXIT_BUG
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "internal error (a bug in pipelines)" in lines[0], err
    log = Path(lines[0].rsplit("details in ", 1)[1])
    assert log.parent == ROOT / "artifacts" / "logs"
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text
    log.unlink()


def _ctrl_c_in_a_class_body() -> BaseException:
    """What the interpreter raises when Ctrl-C lands while a class body sets up a descriptor."""

    class Interrupting:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    try:
        type("Loading", (), {"attr": Interrupting()})
    except BaseException as exc:  # whatever this interpreter makes of it
        return exc
    raise AssertionError("__set_name__ was not called")


def test_ctrl_c_wrapped_by_the_interpreter_is_an_interruption_not_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrapped = _ctrl_c_in_a_class_body()
    monkeypatch.setitem(cli.STAGES, "build", _stage_raising(wrapped))
    assert cli.main(["--config", str(ROOT / "pipeline.toml"), "build"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted" in err and "internal error" not in err, err
    # Any other error with no Ctrl-C in its chain is still a bug.
    assert not interrupted_inside(RuntimeError("Error calling __set_name__"))
    chained = ValueError("outer")
    chained.__context__ = chained  # a cycle ends the walk
    assert not interrupted_inside(chained)


def test_stage_results_map_to_0_and_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.result import Check, Outcome

    ok = Result(stage="build", headline="fine", checks=(Check("c", Outcome.PASS),))
    bad = Result(stage="build", headline="not fine", checks=(Check("c", Outcome.FAIL, "broken"),))
    monkeypatch.setitem(cli.STAGES, "build", lambda args: (None, ok))
    assert cli.main(["--config", str(ROOT / "pipeline.toml"), "build"]) == 0
    monkeypatch.setitem(cli.STAGES, "build", lambda args: (None, bad))
    assert cli.main(["--config", str(ROOT / "pipeline.toml"), "build"]) == 1
    assert "not fine" in capsys.readouterr().out


def test_output_to_a_directory_or_missing_parent_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM scratch\n")
    for target in (tmp_path, tmp_path / "missing" / "report.json"):
        code = cli.main(["lint", "--no-config", str(df), "--format", "json", "--output", str(target)])
        err = capsys.readouterr().err
        assert code == EXIT_UNUSABLE and "--output" in err and "Traceback" not in err, err


def test_unwritable_step_summary_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM scratch\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a directory
    code = cli.main(["lint", "--no-config", str(df)])
    err = capsys.readouterr().err
    assert code == EXIT_UNUSABLE and "GITHUB_STEP_SUMMARY" in err, err


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4])
def test_ctrl_c_at_start_up_is_a_clean_interruption(delay: float, tmp_path: Path) -> None:
    """SIGINT while the package loads and runs: no traceback, interrupted status, no temp files.

    The clock starts when the entry point module has been imported (-X importtime says so on
    stderr): a SIGINT inside the interpreter's own start-up (site, runpy), a few milliseconds
    before any code of ours exists, is the interpreter's to report.
    """
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "pipelines", "config"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.stderr is None:
        pytest.fail("no stderr pipe")
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.rstrip().endswith("| pipelines._main"):  # the entry point is loaded: ours from here on
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    # Finished before the signal: a normal exit. Otherwise interrupted: 130 from our handler, or
    # killed by SIGINT itself, which a shell reports as 130 too.
    assert proc.returncode in (0, EXIT_INTERRUPTED, -signal.SIGINT), (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_judged_build_leaves_a_verdict_for_exactly_its_images(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from pipelines import verdicts
    from pipelines.config import load
    from pipelines.result import Context
    from pipelines.tools import Toolchain

    cfg = load(ROOT / "pipeline.toml")
    ctx = Context(replace(cfg, project=replace(cfg.project, artifacts=tmp_path)), Toolchain())
    judged = Result(stage="scan", headline="gate: passed", env="dev", subjects={"api": "sha256:1"})
    monkeypatch.setitem(cli.STAGES, "scan", lambda args: (ctx, judged))
    assert cli.main(["scan"]) == 0
    v = verdicts.load(ctx.artifacts, "dev", "scan")
    assert v is not None and v.passed and v.subjects == {"api": "sha256:1"}
    assert verdicts.covers(v, {"api": "sha256:1"}) == ""
    assert "other images" in verdicts.covers(v, {"api": "sha256:2"})
    assert verdicts.covers(None, {"api": "sha256:1"}) == "never ran on this build"
    failed = Result(stage="scan", headline="gate: FAILED", env="dev", subjects={"api": "sha256:1"}, error="x")
    monkeypatch.setitem(cli.STAGES, "scan", lambda args: (ctx, failed))
    assert cli.main(["scan"]) == 1
    assert "failed at" in verdicts.covers(verdicts.load(ctx.artifacts, "dev", "scan"), {"api": "sha256:1"})


@pytest.mark.parametrize("runs", ["0", "-2", "three"])
def test_bench_runs_must_be_a_positive_whole_number(runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--pipeline", "--runs", runs])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_UNUSABLE and "--runs" in err and "Traceback" not in err, err


def test_bench_runs_reach_the_pipeline_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def measured(ctx: object, *, out: Path, runs: int) -> Result:
        seen.append(runs)
        return Result(stage="bench", headline="measured")

    monkeypatch.setattr("pipelines.bench.overhead.run_pipeline", measured)
    cli.main(["bench", "--pipeline", "--runs", "7"])
    cli.main(["bench", "--pipeline"])
    assert seen == [7, 3]


def test_bench_runs_without_pipeline_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["bench", "--scan", "--runs", "5"])
    err = capsys.readouterr().err
    assert code == EXIT_UNUSABLE and "--runs" in err and "--pipeline" in err and "Traceback" not in err, err


LOADED = """
import contextlib, io, sys
from pipelines.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(code, *sorted(m for m in ("pydantic", "docker", "requests", "http.client") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "argv",
    [["config"], ["lint", "--no-config", "tests/lint_corpus/dockerfile/d014_sudo/Dockerfile"]],
    ids=["config", "lint-without-dockerignore"],
)
def test_a_command_loads_only_the_libraries_its_work_needs(argv: list[str]) -> None:
    """Checking the config (its load benchmark too) or linting a Dockerfile with no .dockerignore to read loads
    neither pydantic (verdict records) nor docker-py nor an HTTP client: 0.03-0.25 s of every start each."""
    r = subprocess.run(
        [sys.executable, "-c", LOADED, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    code, *loaded = r.stdout.split()
    assert code in ("0", "1") and loaded == [], r.stdout + r.stderr[-2000:]
