"""Tool discovery and version parsing, on recorded real outputs and a real dead socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import tools
from pipelines.errors import EngineUnavailable, ToolNotFound
from tests.harness import ROOT, run_cli

REC = Path(__file__).parent / "data" / "recorded"


def test_parse_version_variants() -> None:
    assert tools.parse_version("20.10.24+dfsg1") == (20, 10, 24)
    assert tools.parse_version("v2.26.1") == (2, 26, 1)
    assert tools.parse_version("0.13") == (0, 13, 0)
    with pytest.raises(ValueError):
        tools.parse_version("unknown")


def test_engine_version_from_recorded_output() -> None:
    assert tools.parse_engine((REC / "docker-version.json").read_text(), "", 0).startswith("20.10.")


def test_dead_daemon_from_recorded_output() -> None:
    with pytest.raises(EngineUnavailable) as err:
        tools.parse_engine(
            (REC / "docker-version-no-daemon.json").read_text(),
            (REC / "docker-version-no-daemon.stderr").read_text(),
            1,
        )
    text = err.value.render()
    assert "Docker engine is not reachable" in text and "Cannot connect to the Docker daemon" in text
    assert "provision.sh" in text


def test_engine_too_old() -> None:
    with pytest.raises(ToolNotFound, match=r"too old: found 19.03.5, need >= 20.10"):
        tools.parse_engine('{"Server": {"Version": "19.03.5"}}', "", 0)


def test_buildx_and_compose_from_recorded_output() -> None:
    assert tools.parse_buildx((REC / "buildx-version.txt").read_text(), "", 0) == "0.13.1"
    assert tools.parse_compose((REC / "compose-version.json").read_text(), "", 0).startswith("2.26.1")


def test_missing_and_old_plugins() -> None:
    unknown = "docker: unknown command: docker buildx\n\nRun 'docker --help' for more information"
    with pytest.raises(ToolNotFound, match="buildx plugin is missing"):
        tools.parse_buildx("", unknown, 1)
    with pytest.raises(ToolNotFound, match=r"buildx is too old: found 0.8.2"):
        tools.parse_buildx("github.com/docker/buildx v0.8.2 6224def4", "", 0)
    with pytest.raises(ToolNotFound, match="compose v2 is missing"):
        tools.parse_compose("", "docker: 'compose' is not a docker command.", 1)
    with pytest.raises(ToolNotFound, match=r"compose is too old: found v2.3.3"):
        tools.parse_compose('{"version":"v2.3.3"}', "", 0)


def test_builder_from_recorded_inspect() -> None:
    b = tools.parse_builder((REC / "buildx-inspect-docker-driver.txt").read_text())
    assert (b.name, b.driver) == ("default", "docker")
    assert b.buildkit.startswith("v0.8")
    assert b.cache_backends == ("inline",)
    assert tools.BuilderInfo("ci", "docker-container", "v0.13").cache_backends[0] == "registry"


def test_missing_docker_binary() -> None:
    with pytest.raises(ToolNotFound, match="docker-does-not-exist is not installed"):
        tools.Toolchain("docker-does-not-exist").require_build()


def test_cli_with_dead_daemon_exits_2_with_one_message(tmp_path: Path) -> None:
    r = run_cli("build", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert r.returncode == 2
    assert "error: the Docker engine is not reachable" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_help_lists_stages() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for stage in ("build", "config", "doctor", "bench", "exit codes"):
        assert stage in r.stdout


def test_doctor_reports_a_dead_daemon(tmp_path: Path) -> None:
    r = run_cli("doctor", cwd=ROOT, env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert r.returncode == 2
    row = next(line for line in r.stdout.splitlines() if "unavailable: the Docker engine is not reachable" in line)
    assert row.split()[0] == "engine", r.stdout  # the renderer's table: one row per tool


def test_a_pinned_tools_version_is_asked_once_per_binary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real hadolint, copied: its version is remembered until the file changes, and still checked."""
    import os
    import shutil
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    binary = tmp_path / "hadolint"
    shutil.copy2(Path(sys.executable).parent / "hadolint", binary)
    asked: list[str] = []

    def ask(path: str) -> str:
        asked.append(path)
        return tools._ask_hadolint(path, "hint")

    first = tools.cached_version(str(binary), ask)
    assert first.startswith("2.") and asked == [str(binary)]
    assert tools.cached_version(str(binary), ask) == first and len(asked) == 1  # remembered
    cache = tools.version_cache_file()
    assert cache.is_file() and cache.is_relative_to(tmp_path / "cache")

    # A remembered answer is that file's only: a rewritten binary (new mtime) is asked again.
    known = json.loads(cache.read_text())
    known = {k: "9.9.9" for k in known}
    cache.write_text(json.dumps(known))
    assert tools.cached_version(str(binary), ask) == "9.9.9"  # the cache is what answered
    st = binary.stat()
    os.utime(binary, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert tools.cached_version(str(binary), ask) == first and len(asked) == 2
    # Another file of the same name and size elsewhere is another binary.
    other = tmp_path / "other" / "hadolint"
    other.parent.mkdir()
    shutil.copy2(binary, other)
    assert tools.cached_version(str(other), ask) == first and len(asked) == 3

    # A damaged cache is no error: the binary is asked.
    cache.write_text("{not json")
    assert tools.cached_version(str(binary), ask) == first and len(asked) == 4


def test_a_remembered_version_outside_the_pinned_series_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    trivy = str(Path(sys.executable).parent / "trivy")
    path, version = tools.trivy_binary()
    assert path == trivy and version.startswith("0.76.")
    cache = tools.version_cache_file()
    cache.write_text(json.dumps({k: "0.50.1" for k in json.loads(cache.read_text())}))
    with pytest.raises(ToolNotFound) as err:
        tools.trivy_binary()
    assert "0.50.1" in err.value.what and "0.76" in err.value.what


@pytest.mark.usefixtures("tools")  # conftest's: the engine answers (this module's `tools` is the package's module)
def test_a_prefetched_probe_is_the_answer_read_later_and_a_failed_one_raises_where_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real docker CLI: against the engine the answers match; against a dead socket the error comes where read."""
    chain = tools.Toolchain()
    with pytest.raises(ValueError, match="no probe"):
        chain.prefetch("docker_version")  # not a probe: a programming error, at once
    chain.prefetch("engine_version", "buildx_version")
    assert chain.engine_version == tools.Toolchain().engine_version
    assert chain.buildx_version == tools.Toolchain().buildx_version

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    dead = tools.Toolchain()
    dead.prefetch("engine_version")
    with pytest.raises(EngineUnavailable):
        dead.engine_version  # noqa: B018 - the probe runs again here and raises
