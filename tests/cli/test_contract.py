"""One contract for every command: a Result, rendered by the one renderer, reports written even on error.

For each command that used to print its own output (bench, config, doctor, keys, render k8s, releases), its
``--format json`` output must be the renderer's JSON, and a run that fails or stops on an error must still
write its reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines import bench, cli, render
from pipelines.cli import commands
from pipelines.errors import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, BuildFailed, ToolNotFound
from pipelines.result import Result
from tests.config.test_config import project
from tests.harness import ROOT, run_cli

# Every key the renderer's JSON has, whatever the stage (render.to_json).
RENDERER_KEYS = {
    "stage",
    "status",
    "failed",
    "headline",
    "error",
    "unusable",
    "notices",
    "files",
    "timings",
    "artifacts",
    "checks",
    "findings",
}


def renderer_json(text: str, stage: str) -> dict[str, Any]:
    """``text`` parsed, held to the shape render.to_json gives every stage."""
    doc = json.loads(text)
    assert isinstance(doc, dict), doc
    missing = RENDERER_KEYS - set(doc)
    assert not missing, f"not the renderer's JSON: {sorted(missing)} missing"
    assert doc["stage"] == stage
    assert doc["status"] in ("passed", "failed", "could not run")
    assert doc["failed"] is (doc["status"] != "passed")
    for c in doc["checks"]:
        assert {"name", "outcome", "ok", "value", "target"} <= set(c), c
    return doc


def written_reports(directory: Path, stage: str) -> dict[str, Any]:
    """The four formats under ``directory``; returns the JSON one."""
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted(f"{stage}{s}" for s in (".json", ".junit.xml", ".md", ".sarif")), names
    return renderer_json((directory / f"{stage}.json").read_text(), stage)


def one_dir(parent: Path) -> Path:
    dirs = [p for p in parent.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


# ---- config


def test_config_prints_the_renderers_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project(tmp_path)
    assert cli.main(["--config", str(cfg), "config"]) == EXIT_OK
    doc = renderer_json(capsys.readouterr().out, "config")
    assert doc["status"] == "passed" and doc["config"]["project"]["name"] == "demo"
    assert written_reports(tmp_path / "artifacts" / "config", "config")["config"] == doc["config"]


def test_an_invalid_config_is_reported_in_the_chosen_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project(tmp_path)
    cfg.write_text(cfg.read_text() + "\n[nonsense]\n")
    assert cli.main(["--config", str(cfg), "config", "--format", "json"]) == EXIT_UNUSABLE
    out, err = capsys.readouterr()
    doc = renderer_json(out, "config")
    assert doc["status"] == "could not run" and "nonsense" in doc["error"] and "nonsense" in err


# ---- doctor


class _NoEngine:
    def summary(self) -> dict[str, str]:
        return {"engine": "unavailable: the Docker daemon does not answer", "buildx": "0.17.1", "builder": "x"}

    def require_build(self) -> None:
        raise ToolNotFound("the Docker daemon does not answer", hint="start it")


def test_doctor_without_an_engine_is_exit_2_with_its_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path)
    monkeypatch.setattr(commands, "Toolchain", _NoEngine)
    assert cli.main(["--config", str(cfg), "doctor", "--format", "json"]) == EXIT_UNUSABLE
    out, err = capsys.readouterr()
    doc = renderer_json(out, "doctor")
    assert doc["status"] == "could not run" and "does not answer" in err
    assert {c["name"]: c["outcome"] for c in doc["checks"]} == {"engine": "fail", "buildx": "pass", "builder": "pass"}
    assert written_reports(tmp_path / "artifacts" / "doctor", "doctor")["error"] == doc["error"]


# ---- keys


def test_keys_refused_inside_the_project_still_write_their_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    code = cli.main(["--config", str(cfg), "keys", "generate", "--out", str(tmp_path / "keys"), "--format", "json"])
    assert code == EXIT_UNUSABLE
    out, err = capsys.readouterr()
    doc = renderer_json(out, "keys")
    assert "inside the project tree" in doc["error"] and "inside the project tree" in err
    assert not (tmp_path / "keys").exists()
    assert "inside the project tree" in written_reports(one_dir(tmp_path / "artifacts" / "keys"), "keys")["error"]


# ---- render k8s


def test_render_without_a_build_is_exit_2_with_its_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project(tmp_path)
    out_dir = tmp_path / "k8s"
    code = cli.main(["--config", str(cfg), "render", "k8s", "--out", str(out_dir), "--format", "json"])
    assert code == EXIT_UNUSABLE
    out, _ = capsys.readouterr()
    doc = renderer_json(out, "render")
    assert doc["status"] == "could not run" and doc["error"]
    assert not out_dir.exists()  # nothing rendered; the reports are under the artifacts, not beside manifests
    assert written_reports(one_dir(tmp_path / "artifacts" / "render"), "render")["error"] == doc["error"]


# ---- releases


def test_releases_print_the_renderers_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = project(tmp_path)
    code = cli.main(["--config", str(cfg), "releases", "--state", str(tmp_path / "state"), "--format", "json"])
    assert code == EXIT_OK
    doc = renderer_json(capsys.readouterr().out, "releases")
    assert doc["releases"] == [] and doc["env"] == "dev"


def test_releases_from_a_state_that_is_a_file_still_write_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    (tmp_path / "state").write_text("not a directory")
    code = cli.main(["--config", str(cfg), "releases", "--state", str(tmp_path / "state"), "--format", "json"])
    assert code == EXIT_UNUSABLE
    doc = renderer_json(capsys.readouterr().out, "releases")
    assert "not a directory" in doc["error"]
    reports = written_reports(one_dir(tmp_path / "artifacts" / "releases"), "releases")
    assert reports["status"] == "could not run"


# ---- bench


def _measured(ok: bool) -> Any:
    def run_build(ctx: Any, *, env: Any, service: Any, out: Path, skip_cold: bool) -> Result:
        checks = [
            bench.check("one-line change produced a new web image", "yes", "yes", True),
            bench.check("web image size", "120.0 MB", "<= 100 MB", ok),
        ]
        data = {
            "when": "2026-01-01T00:00:00Z",
            "machine": {"cpus": 1},
            "timings_s": {"no_change": 1.0},
            "changed_file": "services/web/app.py",
            "sizes_mb": {"web": 120.0},
        }
        res = bench.result("build", out, data, checks)
        bench.write(out, res)
        return res

    return run_build


@pytest.mark.parametrize("ok", [True, False])
def test_bench_targets_are_checks_of_the_renderers_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ok: bool
) -> None:
    cfg = project(tmp_path)
    monkeypatch.setattr("pipelines.bench.build.run_build", _measured(ok))
    out = tmp_path / "bench"
    code = cli.main(["--config", str(cfg), "bench", "--out", str(out), "--format", "json"])
    assert code == (EXIT_OK if ok else EXIT_FAILED)  # a missed target is a failed run, not an exception
    doc = renderer_json(capsys.readouterr().out, "bench")
    size = next(c for c in doc["checks"] if c["name"] == "web image size")
    assert (size["value"], size["target"], size["ok"]) == ("120.0 MB", "<= 100 MB", ok)
    # The benchmark's own file keeps its keys, written from the same Result.
    own = json.loads((out / "bench.json").read_text())
    assert own["ok"] is ok and own["sizes_mb"] == {"web": 120.0}
    assert {"check": "web image size", "value": "120.0 MB", "target": "<= 100 MB", "ok": ok} in own["checks"]
    assert ("MISSED" in (out / "bench.md").read_text()) is not ok
    assert written_reports(out / "reports" / "bench", "bench")["checks"] == doc["checks"]


def test_a_failed_build_in_the_benchmark_still_writes_every_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path)

    def broken(ctx: Any, **_: Any) -> Result:
        raise BuildFailed("build of web failed", seen="RUN false")

    monkeypatch.setattr("pipelines.bench.build.run_build", broken)
    out = tmp_path / "bench"
    assert cli.main(["--config", str(cfg), "bench", "--out", str(out), "--format", "json"]) == EXIT_FAILED
    std, err = capsys.readouterr()
    doc = renderer_json(std, "bench")
    assert "build of web failed" in doc["error"] and "build of web failed" in err
    own = json.loads((out / "bench.json").read_text())
    assert own["ok"] is False and "build of web failed" in own["error"] and own["checks"] == []
    assert "build of web failed" in (out / "bench.md").read_text()
    assert written_reports(out / "reports" / "bench", "bench")["error"] == doc["error"]


def test_a_benchmark_that_cannot_run_is_exit_2_with_its_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The deploy benchmark needs [bench.deploy]; the demo project has none.
    cfg = project(tmp_path)
    out = tmp_path / "bench"
    assert cli.main(["--config", str(cfg), "bench", "--deploy", "--out", str(out), "--format", "json"]) == 2
    doc = renderer_json(capsys.readouterr().out, "bench")
    assert doc["status"] == "could not run" and "bench.deploy" in doc["error"]
    assert json.loads((out / "deploy.json").read_text())["ok"] is False
    written_reports(out / "reports" / "deploy", "bench")


def test_every_format_of_a_bench_result_comes_from_the_renderer(tmp_path: Path) -> None:
    res = bench.result("scan", tmp_path, {"when": "now"}, [bench.check("scan, warm", "2.0 s", "<= 1 s", False)])
    assert "scan, warm" in render.render(res, "table") and "MISSED" in render.render(res, "markdown")
    assert 'failures="1"' in render.render(res, "junit")
    renderer_json(render.render(res, "json"), "bench")


def test_config_of_a_full_config_is_json_with_values_as_written() -> None:
    """This repository's own config: a request body (bytes inside), severities, paths: all JSON."""
    r = run_cli("config", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)["config"]
    body = doc["bench"]["deploy"]["requests"][1]["body"]
    assert isinstance(body, str) and json.loads(body)["title"] == "deploy benchmark"
