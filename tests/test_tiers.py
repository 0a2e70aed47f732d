"""The suite's two tiers: a test is in the engine tier exactly when its fixtures need the engine.

`./noxw -s unit` runs ``-m "not engine"`` with the Docker socket unreachable; tests/harness.py marks a test
``engine`` from its fixture closure. These tests collect the suite in a child pytest, as the unit session
selects it, and check the marks against the fixtures each test really gets.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import harness
from tests.harness import ENGINE_FIXTURES, ENGINE_GROUPS, ROOT


def _noxfile_value(name: str) -> Any:
    """A literal module-level constant of the noxfile (it imports nox, which the test environment lacks)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return ast.literal_eval(stmt.value)
    raise LookupError(f"noxfile.py has no {name}")


UNIT_TIER: list[str] = _noxfile_value("UNIT_TIER")
UNIT_ENV: dict[str, str] = _noxfile_value("UNIT_ENV")


def _engine_fixtures(row: dict[str, Any]) -> set[str]:
    """The harness's engine fixtures the test gets: a module's own fixture of the same name is not one of them."""
    return {n for n, where in row["fixtures"].items() if n in ENGINE_FIXTURES and where == f"tests.harness.{n}"}


def _is_the_unit_session(config: pytest.Config) -> bool:
    """Whether this run collected and selected exactly as the unit session does: the whole suite, its `-m` and
    nothing else deselecting, its environment. Each xdist worker collects the whole run itself."""
    if not (harness.UNIT_TIER and os.environ.get("DOCKER_HOST") == UNIT_ENV["DOCKER_HOST"]):
        return False
    if [config.option.markexpr] != UNIT_TIER[1:] or config.option.keyword or config.option.deselect:
        return False
    rows = harness.collection_rows(config)
    collected = {ROOT / r["id"].split("::", 1)[0] for r in rows}
    suite = {p for pattern in config.getini("testpaths") for d in ROOT.glob(pattern) for p in d.rglob("test_*.py")}
    return collected == suite


@pytest.fixture(scope="module")
def unit_collection(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every test of the suite, collected with the unit session's selection and environment: this run's own
    collection when it is that session's run (a second one costs 3-4 s of CPU), else a child pytest's."""
    if _is_the_unit_session(request.config):
        return harness.collection_rows(request.config)
    report = tmp_path_factory.mktemp("tiers") / "report.json"
    env = {**os.environ, **UNIT_ENV, "PIPELINES_TIER_REPORT": str(report)}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *UNIT_TIER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(report.read_text())
    return rows


def test_a_test_is_marked_engine_exactly_when_its_fixtures_need_the_engine(
    unit_collection: list[dict[str, Any]],
) -> None:
    unmarked = [r["id"] for r in unit_collection if _engine_fixtures(r) and not r["engine"]]
    by_hand = [r["id"] for r in unit_collection if r["engine"] and not _engine_fixtures(r)]
    assert not unmarked, f"tests that use an engine fixture but are not marked engine: {unmarked}"
    assert not by_hand, (
        f"tests marked engine without an engine fixture (ask for one of {sorted(ENGINE_FIXTURES)} instead, "
        f"e.g. @pytest.mark.usefixtures('tools')): {by_hand}"
    )
    # Both tiers hold tests, and the engine one holds at least one test of each engine fixture.
    engine = [r for r in unit_collection if r["engine"]]
    assert engine and len(engine) < len(unit_collection)
    assert set().union(*(_engine_fixtures(r) for r in engine)) == ENGINE_FIXTURES


def test_the_unit_selection_holds_no_engine_test(unit_collection: list[dict[str, Any]]) -> None:
    selected = [r for r in unit_collection if r["selected"]]
    assert selected, "the unit tier selects nothing"
    leaked = {r["id"]: sorted(_engine_fixtures(r)) for r in selected if _engine_fixtures(r) or r["engine"]}
    assert not leaked, f"the unit tier would run tests that need the engine: {leaked}"
    # What it leaves out is exactly the engine tier.
    assert all(r["engine"] for r in unit_collection if not r["selected"])


def test_a_module_fixture_named_like_an_engine_fixture_is_not_one(unit_collection: list[dict[str, Any]]) -> None:
    """test_lint's `tools` needs only the Compose CLI: its tests stay in the unit tier."""
    lint = [r for r in unit_collection if r["fixtures"].get("tools") == "tests.lint.test_lint.tools"]
    assert lint and all(r["selected"] and not r["engine"] for r in lint)


def test_the_unit_session_makes_the_engine_unreachable() -> None:
    assert UNIT_TIER == ["-m", "not engine"]
    host = UNIT_ENV["DOCKER_HOST"]
    assert host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists()
    assert UNIT_ENV["PIPELINES_TEST_TIER"] == "unit"


CONNECT = """
import socket, sys
sys.path.insert(0, sys.argv[1])
import tests.harness  # installs the unit tier's audit hook, as under pytest
def refused(what, call):
    try:
        call()
    except ConnectionRefusedError as exc:
        print(what, "refused:", exc)
    else:
        print(what, "allowed")
refused("lookup", lambda: socket.getaddrinfo("deb.debian.org", 80))
remote = socket.socket()
remote.settimeout(2)
refused("remote", lambda: remote.connect(("192.0.2.1", 9)))
refused("engine", lambda: socket.socket(socket.AF_UNIX).connect("/var/run/docker.sock"))
server = socket.create_server(("127.0.0.1", 0))
refused("loopback", lambda: socket.create_connection(server.getsockname(), timeout=2).close())
"""


def test_the_unit_tier_refuses_the_network_and_the_engine_in_process() -> None:
    env = {**os.environ, **UNIT_ENV}
    r = subprocess.run(
        [sys.executable, "-c", CONNECT, str(ROOT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    said = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert said["lookup"] == "refused: unit tier: no network (name lookup of 'deb.debian.org' refused)"
    assert said["remote"] == "refused: unit tier: no network (192.0.2.1:9 refused)"
    assert said["engine"].startswith("refused: unit tier: /var/run/docker.sock is the engine")
    assert said["loopback"] == "allowed"


def test_every_engine_group_names_one_collected_module(unit_collection: list[dict[str, Any]]) -> None:
    """The xdist scheduler groups a module by its file name, wherever it sits: each name is one module.

    And each module ENGINE_GROUPS names is collected: a renamed or moved module would otherwise quietly lose its group.
    """
    paths: dict[str, set[str]] = {}
    for r in unit_collection:
        path = r["id"].split("::", 1)[0]
        paths.setdefault(path.rpartition("/")[2].removesuffix(".py"), set()).add(path)
    assert {name: found for name, found in paths.items() if len(found) > 1} == {}
    assert set(ENGINE_GROUPS) - set(paths) == set()


def test_every_property_test_takes_its_example_count_from_the_harness() -> None:
    """A count written as a bare number would be the full count in the unit tier too: it goes through examples()."""
    bare = re.compile(r"max_examples\s*=\s*\d")
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("services/*/tests/test_*.py")]
    files += ROOT.glob("images/*/tests/test_*.py")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert found == [], "use max_examples=examples(N) (tests/harness.py)"
    assert harness.examples(1500) == (150 if harness.UNIT_TIER else 1500)
