"""Smoke's health overlay: start_interval where the engine has it, a short interval where it does not."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines import compose_model
from pipelines import composestack as stack
from pipelines.tools import Toolchain, parse_version
from tests.test_images import local_ref

# The shape `docker compose config --format json` renders for compose/compose.yaml
# (recorded 2026-11-24, Compose 2.26.1): long-running services with
# healthchecks, one one-shot job without; durations as Compose prints them.
RENDERED: dict[str, Any] = {
    "services": {
        "db": {"healthcheck": {"test": ["CMD", "pg_isready"], "interval": "2s", "start_period": "30s"}},
        "migrate": {"depends_on": {"db": {"condition": "service_healthy"}}},
        "api": {"healthcheck": {"test": ["CMD", "python", "-m", "api.healthcheck"], "interval": "2s"}},
        "worker": {"healthcheck": {"test": ["CMD", "true"], "interval": "1m30s", "start_period": "20s"}},
        "off": {"healthcheck": {"disable": True}},
        "none": {"healthcheck": {"test": ["NONE"]}},
    }
}


def _parsed(config: dict[str, Any]) -> compose_model.Project:
    return compose_model.parse(config, source="rendered")


def test_old_engine_gets_a_short_interval_where_a_start_period_exists() -> None:
    got = stack.health_override(_parsed(RENDERED), (20, 10, 24))
    assert got == {
        "services": {name: {"healthcheck": {"interval": stack.OLD_ENGINE_INTERVAL}} for name in ("db", "worker")}
    }


def test_engine_25_gets_start_interval_where_a_start_period_exists() -> None:
    got = stack.health_override(_parsed(RENDERED), (26, 1, 5))
    assert got == {
        "services": {name: {"healthcheck": {"start_interval": stack.START_INTERVAL}} for name in ("db", "worker")}
    }
    assert stack.health_override(_parsed(RENDERED), (25, 0, 0)) == got
    assert stack.health_override(_parsed(RENDERED), (24, 0, 9)) != got


def test_a_check_without_start_period_keeps_its_interval_on_every_engine() -> None:
    """Asked every 250 ms, a check with 3 retries and no grace would be unhealthy after 0.75 s of start-up.

    As written (interval 10 s) the same service has 30 s to come up: smoke must not fail it sooner.
    """
    config = {"services": {"slow": {"healthcheck": {"test": ["CMD", "true"], "interval": "10s", "retries": 3}}}}
    for version in ((20, 10, 24), (26, 1, 5)):
        assert stack.health_override(_parsed(config), version) is None
    zero = {"services": {"slow": {"healthcheck": {"test": ["CMD", "true"], "interval": "10s", "start_period": "0s"}}}}
    assert stack.health_override(_parsed(zero), (20, 10, 24)) is None


def test_a_shorter_interval_as_written_is_kept() -> None:
    check = {"test": ["CMD", "true"], "start_period": "5s"}
    config = {
        "services": {
            "quick": {"healthcheck": {**check, "interval": "100ms", "start_interval": "50ms"}},
            "slow": {"healthcheck": {**check, "interval": "2s", "start_interval": "1s"}},
        }
    }
    assert stack.health_override(_parsed(config), (20, 10, 24)) == {
        "services": {"slow": {"healthcheck": {"interval": stack.OLD_ENGINE_INTERVAL}}}
    }
    assert stack.health_override(_parsed(config), (26, 1, 5)) == {
        "services": {"slow": {"healthcheck": {"start_interval": stack.START_INTERVAL}}}
    }


def test_nothing_to_speed_up_is_no_overlay() -> None:
    assert stack.health_override(_parsed({"services": {"job": {"image": "x"}}}), (26, 0, 0)) is None
    assert stack.health_override(_parsed({}), (20, 10, 0)) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5), ("1h0m1s", 3601.0), ("250us", 0.00025), (3, 3.0)],
)
def test_compose_durations_are_read(text: object, seconds: float) -> None:
    assert stack.go_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2", "2 s", "s", "2sx", "-1s", None, True])
def test_what_is_no_duration_is_none(text: object) -> None:
    assert stack.go_seconds(text) is None


def _compose(tmp_path: Path, *args: str, project: str, overlay: bool = True) -> subprocess.CompletedProcess[str]:
    files = ["-f", "base.yaml", *(["-f", "over.yaml"] if overlay else [])]
    return subprocess.run(
        ["docker", "compose", "-p", project, *files, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _write_slow_check(tmp_path: Path, image: str) -> None:
    """base.yaml: one service whose check, as written, is first asked 5 s after its start (start period 10 s)."""
    (tmp_path / "base.yaml").write_text(
        textwrap.dedent(f"""
        services:
          svc:
            image: {image}
            command: ["-c", "import time; time.sleep(60)"]
            healthcheck:
              test: ["CMD", "/usr/bin/python3", "-c", "pass"]
              interval: 5s
              retries: 3
              start_period: 10s
        """)
    )


def test_overlay_merges_and_this_engine_accepts_it(built: dict[str, Any], tmp_path: Path) -> None:
    """Compose merges the overlay over the check as written, and the engine here creates the container.

    The start_interval half also records why the key is never sent to an older
    engine: Compose refuses it there.
    """
    image = local_ref(built["images"]["python-runtime"])
    _write_slow_check(tmp_path, image)
    engine = parse_version(Toolchain().engine_version)
    project = f"pipelines-test-health-{os.getpid()}"
    rendered = json.loads(_compose(tmp_path, "config", "--format", "json", project=project, overlay=False).stdout)
    for version in ((20, 10, 24), (26, 1, 5)):
        overlay = stack.health_override(_parsed(rendered), version)
        assert overlay is not None
        (tmp_path / "over.yaml").write_text(json.dumps(overlay))
        merged = json.loads(_compose(tmp_path, "config", "--format", "json", project=project).stdout)
        hc = merged["services"]["svc"]["healthcheck"]
        assert hc["test"] == ["CMD", "/usr/bin/python3", "-c", "pass"] and hc["retries"] == 3
        if version[:2] >= stack.START_INTERVAL_ENGINE:
            assert hc["start_interval"] == stack.START_INTERVAL and hc["interval"] == "5s"
        else:
            assert hc["interval"] == stack.OLD_ENGINE_INTERVAL and "start_interval" not in hc
        try:
            r = _compose(tmp_path, "create", project=project)
            if version[:2] > engine[:2] and version[:2] >= stack.START_INTERVAL_ENGINE:
                assert r.returncode != 0 and "start_interval" in r.stderr, r.stderr
            else:
                assert r.returncode == 0, r.stderr
        finally:
            _compose(tmp_path, "down", "--volumes", project=project)


def test_overlay_makes_health_visible_sooner_on_this_engine(built: dict[str, Any], tmp_path: Path) -> None:
    """As written the check is first asked after 5 s; with this engine's overlay within a second or two.

    Run with DOCKER_HOST pointing at an engine from 25 it proves start_interval;
    on an older one the short interval.
    """
    image = local_ref(built["images"]["python-runtime"])
    _write_slow_check(tmp_path, image)
    project = f"pipelines-test-health-soon-{os.getpid()}"
    rendered = json.loads(_compose(tmp_path, "config", "--format", "json", project=project, overlay=False).stdout)
    overlay = stack.health_override(_parsed(rendered), parse_version(Toolchain().engine_version))
    assert overlay is not None
    (tmp_path / "over.yaml").write_text(json.dumps(overlay))
    try:
        r = _compose(tmp_path, "up", "--detach", project=project)
        assert r.returncode == 0, r.stderr
        cid = _compose(tmp_path, "ps", "--quiet", "svc", project=project).stdout.strip()
        start = time.monotonic()
        health = ""
        while time.monotonic() - start < 4.5:
            health = subprocess.run(
                ["docker", "inspect", "--format", "{{.State.Health.Status}}", cid],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            if health != "starting":
                break
            time.sleep(0.05)
        assert health == "healthy", f"{health!r} after {time.monotonic() - start:.1f} s (overlay {overlay})"
    finally:
        _compose(tmp_path, "down", "--volumes", "--timeout", "1", project=project)
