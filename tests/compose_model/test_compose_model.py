"""The typed Compose model: real renders of this repository's files, and any shape at all.

The renders are made here, by `docker compose config --format json` (which reads
files only, no engine), from the repository's own Compose files and the lint
corpus, so the model is held to what the installed Compose actually prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import compose_model
from pipelines.compose_model import ComposeShapeError, parse
from pipelines.errors import EXIT_UNUSABLE, InputError
from tests.harness import IN_CI, ROOT, examples

COMPOSE = ROOT / "compose"
CORPUS = sorted((ROOT / "tests" / "lint_corpus" / "compose").glob("*.yaml"))
ENVS = {
    "dev": ["compose.yaml", "compose.dev.yaml"],
    "staging": ["compose.yaml", "compose.prod.yaml", "compose.staging.yaml"],
    "prod": ["compose.yaml", "compose.prod.yaml"],
}


def _render(files: list[Path], project_dir: Path, tmp_path: Path) -> dict[str, Any]:
    docker = shutil.which("docker")
    if docker is None:
        if IN_CI:
            pytest.fail("CI=true and there is no docker CLI to render Compose files with")
        pytest.skip("no docker CLI here")
    argv = [docker, "compose", "--project-directory", str(project_dir), "--profile", "*"]
    for f in files:
        argv += ["-f", str(f)]
    env = {
        **os.environ,
        "REGISTRY": "registry.test:5000",
        "NAMESPACE": "pipelines",
        "IMAGE_TAG": "abc123",
        "SECRETS_DIR": str(tmp_path),
    }
    r = subprocess.run([*argv, "config", "--format", "json"], capture_output=True, text=True, timeout=60, env=env)
    if r.returncode != 0 and "is not a docker command" in r.stderr:
        if IN_CI:
            pytest.fail("CI=true and the Compose plugin is missing")
        pytest.skip("no Compose plugin here")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


@pytest.fixture(params=sorted(ENVS))
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    env = str(request.param)
    return env, _render([COMPOSE / f for f in ENVS[env]], COMPOSE, tmp_path)


# --------------------------------------------------------------------------- real renders


def test_every_service_of_each_environment_is_read(rendered: tuple[str, dict[str, Any]]) -> None:
    env, data = rendered
    project = parse(data, source=f"compose {env}")
    assert project.name == data["name"]
    assert list(project.services) == list(data["services"])
    for name, raw in data["services"].items():
        svc = project.services[name]
        assert svc.name == name
        assert svc.image == raw.get("image", "")
        assert dict(svc.environment) == (raw.get("environment") or {})
        assert [p.target for p in svc.ports] == [int(p["target"]) for p in raw.get("ports") or []]
        assert [p.published for p in svc.ports] == [str(p.get("published") or "") for p in raw.get("ports") or []]
        assert list(svc.cap_drop) == (raw.get("cap_drop") or [])
        assert svc.read_only is bool(raw.get("read_only"))
        assert set(svc.depends_on) == set(raw.get("depends_on") or {})
        for dep, how in (raw.get("depends_on") or {}).items():
            assert svc.depends_on[dep].condition == how["condition"]
        assert [(m.type, m.source, m.target) for m in svc.volumes] == [
            (v["type"], v.get("source", ""), v["target"]) for v in raw.get("volumes") or []
        ]
        assert [s.source for s in svc.secrets] == [s["source"] for s in raw.get("secrets") or []]
        hc = raw.get("healthcheck")
        assert (svc.healthcheck is None) == (hc is None)
        if hc is not None and svc.healthcheck is not None:
            assert list(svc.healthcheck.test) == hc.get("test", [])
            assert svc.healthcheck.retries == hc.get("retries")
        # Nothing is lost: every key is either a typed field or kept in extras.
        assert set(svc.extras) <= set(raw)
        assert svc.given == {k for k, v in raw.items() if v not in (None, [], {}, False)}
    assert set(project.secrets) == set(data.get("secrets") or {})
    assert {n for n, net in project.networks.items() if net.internal} == {
        n for n, net in (data.get("networks") or {}).items() if (net or {}).get("internal")
    }


def test_jobs_and_order_follow_depends_on(rendered: tuple[str, dict[str, Any]]) -> None:
    _, data = rendered
    project = parse(data, source="compose")
    waited = {
        dep
        for spec in data["services"].values()
        for dep, how in (spec.get("depends_on") or {}).items()
        if how.get("condition") == "service_completed_successfully"
    }
    assert project.jobs() == waited
    order = project.order()
    assert sorted(order) == sorted(data["services"])
    for name, svc in project.services.items():
        for dep in svc.depends_on:
            assert order.index(dep) < order.index(name), (dep, name)


@pytest.mark.parametrize("case", [p.name for p in CORPUS])
def test_the_lint_corpus_renders_parse(case: str, tmp_path: Path) -> None:
    path = ROOT / "tests" / "lint_corpus" / "compose" / case
    data = _render([path], path.parent, tmp_path)
    project = parse(data, source=case)
    assert set(project.services) == set(data.get("services") or {})


def test_the_model_is_frozen() -> None:
    project = parse({"services": {"a": {"image": "x", "environment": {"K": "v"}, "labels": {"l": "1"}}}}, source="t")
    svc = project.services["a"]
    with pytest.raises(AttributeError):
        svc.image = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        svc.environment["K"] = "w"  # type: ignore[index]
    with pytest.raises(TypeError):
        project.services["b"] = svc  # type: ignore[index]


def test_extras_keep_untyped_keys_frozen_and_thaw_back() -> None:
    raw = {"logging": {"driver": "json-file", "options": {"max-size": "10m"}}, "ulimits": {"nofile": [1, 2]}}
    svc = parse({"services": {"a": raw}}, source="t").services["a"]
    assert compose_model.thaw(svc.extras) == raw
    with pytest.raises(TypeError):
        svc.extras["logging"]["driver"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ([], "compose.json: expected a mapping, got a list"),
        ({"services": []}, "services: expected a mapping"),
        ({"services": {"api": "nginx"}}, "services.api: expected a mapping"),
        ({"services": {"api": {"ports": ["80:80"]}}}, "services.api.ports[0]: '80:80' is not in the rendered"),
        ({"services": {"api": {"ports": [{"target": "http"}]}}}, "services.api.ports[0].target: 'http'"),
        ({"services": {"api": {"environment": {"A": ["x"]}}}}, "services.api.environment.A: expected a string"),
        ({"services": {"api": {"healthcheck": {"retries": -1}}}}, "services.api.healthcheck.retries: -1 is not"),
        ({"services": {"api": {"healthcheck": {"retries": True}}}}, "services.api.healthcheck.retries: True"),
        ({"services": {"api": {"depends_on": {"db": "healthy"}}}}, "services.api.depends_on.db: expected a mapping"),
        ({"services": {"api": {"deploy": {"resources": {"limits": []}}}}}, "deploy.resources.limits: expected a"),
        ({"services": {"api": {"volumes": ["/a:/b"]}}}, "services.api.volumes[0]: '/a:/b' is not in the rendered"),
        ({"services": {"api": {"read_only": "maybe"}}}, "services.api.read_only: expected true or false"),
        ({"networks": {"front": {"internal": 3}}}, "networks.front.internal: expected true or false"),
        ({"secrets": {"s": {"file": {"path": "x"}}}}, "secrets.s.file: expected a string"),
    ],
)
def test_a_bad_shape_names_the_file_and_key(data: object, where: str) -> None:
    with pytest.raises(ComposeShapeError) as err:
        parse(data, source="release/compose.json")
    assert err.value.exit_code == EXIT_UNUSABLE
    assert err.value.what.startswith("release/compose.json: ")
    assert where in err.value.what


def test_value_helpers_name_the_service_and_key_in_the_callers_error() -> None:
    class Mine(InputError):
        pass

    assert compose_model.duration("1m30s", "api", "healthcheck.interval") == 90 * 10**9
    assert compose_model.size("256m", "api", "mem_limit") == 256 * 1024**2
    assert compose_model.cpus("0.5", "api", "cpus") == 0.5
    with pytest.raises(Mine, match=r"compose services\.api\.healthcheck\.interval: '2 sec' is not a duration"):
        compose_model.duration("2 sec", "api", "healthcheck.interval", Mine)
    with pytest.raises(Mine, match=r"services\.api\.mem_limit"):
        compose_model.size("lots", "api", "mem_limit", Mine)
    with pytest.raises(Mine, match=r"services\.api\.cpus: 'nan' is not a number of CPUs"):
        compose_model.cpus("nan", "api", "cpus", Mine)


def test_a_depends_on_cycle_is_an_input_error() -> None:
    project = parse(
        {"services": {"a": {"depends_on": {"b": {"condition": "service_started"}}}, "b": {"depends_on": ["a"]}}},
        source="t",
    )
    with pytest.raises(InputError, match="cycle"):
        project.order()


# --------------------------------------------------------------------------- any shape


_KEYS = st.sampled_from(
    [
        "name", "services", "networks", "volumes", "secrets", "configs", "image", "build", "ports", "environment",
        "healthcheck", "test", "interval", "retries", "disable", "user", "read_only", "cap_drop", "cap_add",
        "security_opt", "tmpfs", "target", "published", "protocol", "host_ip", "mode", "type", "source", "tmpfs",
        "depends_on", "condition", "required", "deploy", "resources", "limits", "reservations", "cpus", "memory",
        "pids", "replicas", "restart_policy", "placement", "update_config", "profiles", "command", "entrypoint",
        "labels", "aliases", "external", "internal", "file", "api", "db", "x-extra", "scale", "pids_limit",
    ]
)  # fmt: skip
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS | st.text(max_size=4), inner, max_size=4),
    max_leaves=25,
)


def _shaped() -> st.SearchStrategy[object]:
    """Mostly the render's own shape, with any value anywhere."""
    service = st.dictionaries(_KEYS, _JSON, max_size=6)
    return st.one_of(
        _JSON,
        st.fixed_dictionaries(
            {"services": st.dictionaries(st.text(min_size=1, max_size=4), service, max_size=3)},
            optional={k: st.dictionaries(st.text(max_size=4), _JSON, max_size=3) for k in ("networks", "secrets")},
        ),
    )


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_shaped())
def test_any_shape_gives_a_model_or_an_input_error(data: object) -> None:
    try:
        project = parse(data, source="any.json")
    except ComposeShapeError as exc:
        assert exc.what.startswith("any.json: ")
        assert exc.exit_code == EXIT_UNUSABLE
        return
    for svc in project:
        svc.waits_for("service_completed_successfully")
    project.jobs()
    try:
        project.order()
    except InputError as exc:
        assert "cycle" in exc.what
