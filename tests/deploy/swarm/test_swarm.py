"""The Docker Swarm engine: the stack render, and deploys watched on a real single-node swarm.

Render tests read the reference stack's merged Compose config as `docker compose config` printed it
(tests/data/recorded/swarm/SOURCES.md) and judge the stack file against that input: every key the input
sets and the stack lacks must be named in a notice, every monitor must cover its healthcheck's window.

Engine tests deploy a small stack of real images to the engine's swarm (initialised here when the engine
is not in one, and left again afterwards): variants of the reference api image, made with `docker commit`
and pushed to the local registry under a repository of their own. A good deploy converges; a bad one
(its healthcheck never passes) is rolled back by Swarm, and the deploy must say so; a rollback to an
earlier digest map converges on those digests.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import compose_model, composefile
from pipelines.deploy import plan, steps, swarm
from pipelines.engine import Engine
from pipelines.errors import GateFailed, PipelineError
from pipelines.result import Context
from pipelines.tools import Toolchain
from tests.harness import IN_CI, ROOT, docker

RECORDED = ROOT / "tests" / "data" / "recorded" / "swarm"
DIGEST = "sha256:" + "0" * 63


def _recorded(env: str, secrets_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / f"compose-{env}.json").read_text())
    for key, spec in data["secrets"].items():
        path = secrets_dir / key
        path.write_text(f"value of {key}\n")
        spec["file"] = str(path)
    return data


def _parsed(compose: dict[str, Any]) -> compose_model.Project:
    return compose_model.parse(compose, source="compose.json")


def _images(compose: dict[str, Any]) -> dict[str, str]:
    return {name: f"127.0.0.1:5000/pipelines/{name}@{DIGEST}{i}" for i, name in enumerate(sorted(compose["services"]))}


def _ns(text: str) -> float:
    return swarm._duration_ns(text, "test", "duration") / 1e9


@pytest.fixture(params=["prod", "staging"])
def reference(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return _recorded(str(request.param), tmp_path)


# --------------------------------------------------------------------------- render


def test_every_key_swarm_does_not_take_is_noticed(reference: dict[str, Any]) -> None:
    out = swarm.render_stack(_parsed(reference), _images(reference), stack="ref")
    notes = swarm.notices(out)
    mapped_into = {  # input key -> where the stack holds it instead
        "tmpfs": "volumes",
        "cpus": "deploy",
        "mem_limit": "deploy",
        "pids_limit": "deploy",
        "restart": "deploy",
    }
    checked = 0
    for name, spec in reference["services"].items():
        rendered = out["services"][name]
        for key, value in spec.items():
            if value in (None, [], {}, False):
                continue
            checked += 1
            if key in rendered or (mapped_into.get(key) in rendered and key != "restart"):
                continue
            assert any(n.startswith(f"services.{name}.{key}") for n in notes), (name, key, notes)
    assert checked > 40  # the reference stack sets plenty: the loop judged real keys
    # Keys Swarm ignores without a word (short tmpfs options, host_ip) are named too.
    assert any("host_ip 127.0.0.1 dropped" in n and "every interface" in n for n in notes)
    assert any(n.startswith("services.db.tmpfs[1] /var/run/postgresql: uid=999 dropped") for n in notes)
    assert any(n.startswith("services.api.security_opt dropped") for n in notes)
    assert any(n.startswith("services.api.depends_on dropped") for n in notes)


def test_keys_beyond_the_reference_stack_are_noticed(tmp_path: Path) -> None:
    """Keys the reference stack does not use, as `docker compose config` prints them, each named."""
    compose = _recorded("prod", tmp_path)
    api = compose["services"]["api"]
    api.update(
        container_name="api-1",
        privileged=True,
        devices=[{"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}],
        shm_size="67108864",
        group_add=["audio"],
        pull_policy="always",
    )
    api["networks"]["data"] = {"ipv4_address": "10.9.0.5", "aliases": ["api-internal"]}
    api["deploy"] = {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}
    api["ports"][0]["app_protocol"] = "http"
    compose["networks"]["data"]["ipam"] = {"config": [{"subnet": "10.9.0.0/24"}]}
    out = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    notes = swarm.notices(out)
    for key in ("container_name", "privileged", "devices", "shm_size", "group_add", "pull_policy"):
        assert any(n.startswith(f"services.api.{key} dropped") for n in notes), key
        assert key not in out["services"]["api"]
    for prefix in (
        "services.api.networks.data.ipv4_address dropped",
        "services.api.deploy.resources.reservations.devices dropped",
        "services.api.ports[0]: app_protocol dropped",
        "networks.data.ipam dropped",
    ):
        assert any(n.startswith(prefix) for n in notes), (prefix, notes)
    assert out["services"]["api"]["networks"]["data"] == {"aliases": ["api-internal"]}


def test_swarm_form_of_limits_ports_tmpfs_and_networks(reference: dict[str, Any]) -> None:
    out = swarm.render_stack(_parsed(reference), _images(reference), stack="ref")
    api = out["services"]["api"]
    assert api["ports"] == [{"mode": "host", "protocol": "tcp", "published": 8000, "target": 8000}]
    assert api["deploy"]["resources"]["limits"] == {"cpus": "1", "memory": str(256 * 1024**2), "pids": 128}
    assert {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 16 * 1024**2}} in api["volumes"]
    assert "tmpfs" not in api and "mem_limit" not in api and "pids_limit" not in api
    assert out["networks"]["data"] == {"driver": "overlay", "internal": True}
    assert out["networks"]["front"] == {"driver": "overlay"}
    # Compose's implied volume names (PROJECT_KEY) become the stack's own; an explicit name stays.
    assert out["volumes"] == {"ingest": {}, "pgdata": {}}
    reference["volumes"]["pgdata"]["name"] = "kept-data"
    again = swarm.render_stack(_parsed(reference), _images(reference), stack="ref")
    assert again["volumes"]["pgdata"] == {"name": "kept-data"}
    for name, svc in out["services"].items():
        assert svc["image"] == _images(reference)[name]
        assert all(p["mode"] == "host" for p in svc.get("ports", []))
    # Services that publish a host port or mount a named volume cannot run twice: stop-first.
    assert api["deploy"]["update_config"]["order"] == "stop-first"
    assert out["services"]["db"]["deploy"]["update_config"]["order"] == "stop-first"
    assert out["services"]["migrate"]["deploy"] == {
        "mode": "replicated-job",
        "resources": {"limits": {"cpus": "1", "memory": str(256 * 1024**2), "pids": 128}},
        "restart_policy": {"condition": "none"},
    }


def test_monitor_covers_the_healthcheck_window(reference: dict[str, Any]) -> None:
    out = swarm.render_stack(_parsed(reference), _images(reference), stack="ref")
    judged = 0
    for name, svc in out["services"].items():
        if svc["deploy"].get("mode") == "replicated-job":
            continue
        hc = reference["services"][name]["healthcheck"]
        window = _ns(hc["start_period"]) + _ns(hc["interval"]) * int(hc["retries"])
        for section in ("update_config", "rollback_config"):
            cfg = svc["deploy"][section]
            assert _ns(cfg["monitor"]) >= window, (name, section, cfg, hc)
            assert cfg["parallelism"] == 1
        assert svc["deploy"]["update_config"]["failure_action"] == "rollback"
        assert svc["deploy"]["rollback_config"]["failure_action"] == "pause"
        judged += 1
    assert judged == 3


def test_start_first_without_host_port_or_volume(tmp_path: Path) -> None:
    compose = _recorded("prod", tmp_path)
    del compose["services"]["api"]["ports"]
    out = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    assert out["services"]["api"]["deploy"]["update_config"]["order"] == "start-first"
    assert out["services"]["api"]["deploy"]["rollback_config"]["order"] == "start-first"


def test_secrets_named_by_content_hash(tmp_path: Path) -> None:
    compose = _recorded("prod", tmp_path)
    out = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    for key, spec in compose["secrets"].items():
        digest = hashlib.sha256(Path(spec["file"]).read_bytes()).hexdigest()[:12]
        assert out["secrets"][key] == {"file": spec["file"], "name": f"ref_{key}_{digest}"}
    # Mounted where Compose mounts them: /run/secrets/KEY.
    assert out["services"]["api"]["secrets"] == [
        {"source": "db_password"},
        {"source": "metrics_user"},
        {"source": "metrics_password"},
    ]
    Path(compose["secrets"]["db_password"]["file"]).write_text("rotated\n")
    again = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    assert again["secrets"]["db_password"]["name"] != out["secrets"]["db_password"]["name"]
    assert again["secrets"]["metrics_user"] == out["secrets"]["metrics_user"]


def test_byte_identical_for_identical_input(tmp_path: Path) -> None:
    compose = _recorded("staging", tmp_path)
    first = swarm.dump(swarm.render_stack(_parsed(compose), _images(compose), stack="ref"))
    # The same content in another key order (as another Compose version may print it).
    shuffled = json.loads(json.dumps(compose))
    items = list(shuffled["services"].items())
    items.reverse()
    shuffled["services"] = dict(items)
    shuffled["services"]["api"] = dict(reversed(list(shuffled["services"]["api"].items())))
    second = swarm.dump(swarm.render_stack(_parsed(copy.deepcopy(shuffled)), _images(compose), stack="ref"))
    assert first == second
    assert first.startswith("networks:") and "x-pipelines:" in first


def test_phases_run_the_job_between_its_dependencies_and_its_dependants(tmp_path: Path) -> None:
    compose = _recorded("prod", tmp_path)
    out = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    assert swarm.phases(out) == [
        ("before jobs", ["db"]),
        ("job migrate", ["migrate"]),
        ("services", ["api", "db", "ingestion"]),
    ]
    # A rollback does not run jobs again.
    assert swarm.phases(out, run_jobs=False) == [("services", ["api", "db", "ingestion"])]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, i: i.update(api="127.0.0.1:5000/pipelines/api:prod"), "not a reference by digest"),
        (lambda c, i: i.pop("db"), "no image digest for service(s) db"),
        (lambda c, i: c["secrets"]["db_password"].update(file="/nonexistent/db_password"), "/nonexistent/db_password"),
        (lambda c, i: c["services"]["api"]["healthcheck"].update(disable=True), "services.api.healthcheck"),
        (lambda c, i: c["services"]["api"]["environment"].update(X=None), "services.api.environment.X"),
        (lambda c, i: c["networks"]["data"].update(driver="macvlan"), "networks.data"),
        (lambda c, i: c["secrets"]["db_password"].update(environment="DB_PASSWORD"), "secrets.db_password"),
        (lambda c, i: c["services"]["api"]["ports"][0].update(published="8000-8001"), "services.api.ports[0]"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, change: Any, message: str) -> None:
    compose = _recorded("prod", tmp_path)
    images = _images(compose)
    change(compose, images)
    with pytest.raises(swarm.SwarmRenderError) as err:
        swarm.render_stack(_parsed(compose), images, stack="ref")
    assert message in err.value.render()
    assert err.value.exit_code == 2


def test_stack_name_is_checked(tmp_path: Path) -> None:
    compose = _recorded("prod", tmp_path)
    with pytest.raises(swarm.SwarmRenderError, match="stack name"):
        swarm.render_stack(_parsed(compose), _images(compose), stack="Bad Name")


# --------------------------------------------------------------------------- the engine


def _engine_or_fail(tools: Toolchain) -> Engine:
    try:
        return Engine.connect()
    except PipelineError as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the engine does not answer:\n{exc.render()}")
        pytest.skip(f"engine not usable here: {exc.what}")


@pytest.fixture(scope="module")
def manager(tools: Toolchain) -> Iterator[Engine]:
    """The engine as a Swarm manager: initialised here if it is in no swarm, and left again afterwards."""
    engine = _engine_or_fail(tools)
    state = engine.client.info()["Swarm"]["LocalNodeState"]
    initialised = False
    if state == "inactive":
        # Before init: the engine must refuse, saying how to fix it.
        with pytest.raises(swarm.SwarmNotReady) as err:
            swarm.check_manager(engine)
        assert "docker swarm init" in err.value.render() and err.value.exit_code == 2
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        initialised = True
    swarm.check_manager(engine)
    yield engine
    engine.close()
    if initialised:
        docker("swarm", "leave", "--force", check=False)


def _reference_api_image() -> str:
    r = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=127.0.0.1:5000/*/api")
    refs = [line for line in r.stdout.splitlines() if not line.endswith(":<none>")]
    if not refs:
        message = "no reference api image in the engine: run `./noxw -s build` first"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return refs[0]  # newest first


@pytest.fixture(scope="module")
def variants(manager: Engine) -> Iterator[dict[str, str]]:
    """Three images by digest, made from the reference api image: good1, good2 (healthy) and bad (never healthy)."""
    base = _reference_api_image()
    repo = f"127.0.0.1:5000/swarmtest-{uuid.uuid4().hex[:8]}/web"
    server = '["/opt/venv/bin/python", "-m", "http.server", "--bind", "0.0.0.0", "8000"]'
    sleeper = '["/opt/venv/bin/python", "-c", "import time; time.sleep(86400)"]'
    made: dict[str, str] = {}
    created: list[str] = []
    try:
        for variant, entrypoint in (("good1", server), ("good2", server), ("bad", sleeper)):
            cid = docker("create", base).stdout.strip()
            created.append(cid)
            docker(
                "commit",
                "--change", f"ENTRYPOINT {entrypoint}",
                "--change", 'CMD []',
                "--change", f"LABEL dev.pipelines.test.variant={variant}",
                cid, f"{repo}:{variant}",
            )  # fmt: skip
            docker("push", f"{repo}:{variant}", timeout=300)
            made[variant] = docker(
                "image", "inspect", "--format", "{{index .RepoDigests 0}}", f"{repo}:{variant}"
            ).stdout.strip()
        assert len(set(made.values())) == 3
        yield made
    finally:
        for cid in created:
            docker("rm", "-f", cid, check=False)
        for variant in ("good1", "good2", "bad"):
            docker("rmi", f"{repo}:{variant}", check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TEST_COMPOSE = """
name: {project}
services:
  migrate:
    image: 127.0.0.1:5000/test/web:any
    entrypoint: ["/opt/venv/bin/python", "-c", "print('migrated')"]
    restart: "no"
    networks: [data]
    read_only: true
    cap_drop: [ALL]
  web:
    image: 127.0.0.1:5000/test/web:any
    networks: [data, front]
    ports: ["127.0.0.1:{port}:8000"]
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    tmpfs: ["/tmp:size=16m,mode=1777"]
    pids_limit: 64
    mem_limit: 128m
    secrets: [token]
    healthcheck:
      test:
        - CMD
        - /opt/venv/bin/python
        - -c
        - "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/'); open('/run/secrets/token').read()"
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 3s
    depends_on:
      migrate:
        condition: service_completed_successfully
  worker:
    image: 127.0.0.1:5000/test/web:any
    networks: [data]
    read_only: true
    cap_drop: [ALL]
    healthcheck:
      test: ["CMD", "/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 3s
    depends_on:
      migrate:
        condition: service_completed_successfully
secrets:
  token:
    file: ./token
networks:
  data:
    internal: true
  front: {{}}
"""


@pytest.fixture(scope="module")
def stack(manager: Engine, tools: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A test stack's merged Compose render (by the real `docker compose config`), removed afterwards."""
    name = f"swarmtest{uuid.uuid4().hex[:8]}"
    work = tmp_path_factory.mktemp("swarm")
    port = _free_port()
    (work / "compose.yaml").write_text(TEST_COMPOSE.format(project=name, port=port))
    (work / "token").write_text("first token\n")
    rendered = composefile.render(tools, [work / "compose.yaml"], ["compose.yaml"], project_dir=work)
    yield {"name": name, "work": work, "port": port, "compose": rendered.config, "tools": tools}
    _remove_stack(name)


def _remove_stack(name: str) -> None:
    """`docker stack rm` returns before Swarm removed the tasks' containers and networks: wait for them."""
    docker("stack", "rm", name, check=False)
    label = f"label=com.docker.stack.namespace={name}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not docker("service", "ls", "-q", "--filter", label, check=False).stdout.strip():
            # Swarm (20.10) leaves the exited containers of job tasks behind: ours, removed here.
            for cid in docker("ps", "-aq", "--filter", label, "--filter", "status=exited", check=False).stdout.split():
                docker("rm", cid, check=False)
        left = "".join(
            docker(*kind, "-q", "--filter", label, check=False).stdout.strip()
            for kind in (("ps", "-a"), ("network", "ls"), ("secret", "ls"))
        )
        if not left:
            return
        time.sleep(1)


def _service(engine: Engine, full: str) -> dict[str, Any]:
    return dict(engine.client.api.inspect_service(full))


def _running_digests(engine: Engine, full: str) -> set[str]:
    tasks = engine.client.api.tasks(filters={"service": full, "desired-state": "running"})
    return {t["Spec"]["ContainerSpec"]["Image"].rpartition("@")[2] for t in tasks if t["Status"]["State"] == "running"}


def test_deploy_update_bad_update_and_rollback(
    manager: Engine, variants: dict[str, str], stack: dict[str, Any]
) -> None:
    name, work, compose, tools = stack["name"], stack["work"], stack["compose"], stack["tools"]
    lines: list[str] = []

    def images(variant: str) -> dict[str, str]:
        return {svc: variants[variant] for svc in ("migrate", "web", "worker")}

    def run(variant: str, **kw: Any) -> swarm.Outcome:
        return swarm.deploy(
            _parsed(compose), images(variant), stack=name, workdir=work / "out", tools=tools, log=lines.append, **kw
        )

    # 1. First deploy: job, then services; healthy on the new digests, port published on the host.
    first = run("good1")
    print(f"first deploy: {first.seconds:.1f} s; phases {[(p.services, round(p.seconds, 1)) for p in first.phases]}")
    assert [p.services for p in first.phases] == [("migrate",), ("web", "worker")]
    for svc in ("web", "worker"):
        assert _running_digests(manager, f"{name}_{svc}") == {variants["good1"].rpartition("@")[2]}
    job = _service(manager, f"{name}_migrate")
    assert job["Spec"]["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    with urllib.request.urlopen(f"http://127.0.0.1:{stack['port']}/", timeout=5) as resp:
        assert resp.status == 200
    web = _service(manager, f"{name}_web")
    assert web["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert web["Spec"]["TaskTemplate"]["Resources"]["Limits"]["Pids"] == 64
    assert web["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Type"] == "tmpfs"
    secret = web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"]
    assert secret == f"{name}_token_" + hashlib.sha256(b"first token\n").hexdigest()[:12]
    # Services find each other by name on their overlay network (DNS round robin: no IPVS needed).
    worker = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}_worker").stdout.split()[0]
    probe = "import urllib.request; print(urllib.request.urlopen('http://web:8000/', timeout=5).status)"
    assert docker("exec", worker, "/opt/venv/bin/python", "-c", probe).stdout.strip() == "200"
    assert any("security_opt dropped" in line for line in lines)

    # 2. An update with a new digest and a rotated secret: converges; the job ran again with the new image.
    (work / "token").write_text("second token\n")
    iteration = int(job["JobStatus"]["JobIteration"].get("Index", 0))
    second = run("good2")
    print(f"update deploy: {second.seconds:.1f} s")
    for svc in ("web", "worker"):
        assert _running_digests(manager, f"{name}_{svc}") == {variants["good2"].rpartition("@")[2]}
    job = _service(manager, f"{name}_migrate")
    assert int(job["JobStatus"]["JobIteration"]["Index"]) == iteration + 1
    web = _service(manager, f"{name}_web")
    assert web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"].endswith(
        hashlib.sha256(b"second token\n").hexdigest()[:12]
    )

    # 3. A bad update: Swarm rolls it back, docker stack deploy said nothing, the deploy must fail naming it.
    started = time.monotonic()
    with pytest.raises(GateFailed) as err:
        run("bad")
    detected = time.monotonic() - started
    print(f"bad deploy: failed after {detected:.1f} s: {err.value.what}; {err.value.seen.splitlines()[-1]}")
    assert err.value.exit_code == 1
    assert "web" in err.value.what or "worker" in err.value.what
    assert "roll" in err.value.what
    failed = "web" if "service web:" in err.value.what else "worker"
    # The deploy returned once Swarm's rollback of the named service ended: it serves the previous digest.
    assert "Swarm rolled the update back" in err.value.what
    assert _service(manager, f"{name}_{failed}")["UpdateStatus"]["State"] == "rollback_completed"
    for svc in ("web", "worker"):
        full = f"{name}_{svc}"
        deadline = time.monotonic() + 90
        while _service(manager, full)["UpdateStatus"]["State"] not in ("rollback_completed", "completed"):
            assert time.monotonic() < deadline, _service(manager, full)["UpdateStatus"]
            time.sleep(1)
        spec_image = _service(manager, full)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert spec_image.endswith(variants["good2"].rpartition("@")[2]), (svc, spec_image)
    deadline = time.monotonic() + 30
    while (seen := _running_digests(manager, f"{name}_{failed}")) != {variants["good2"].rpartition("@")[2]}:
        # A task of the bad digest may still be on its way down when Swarm reports the rollback complete.
        assert time.monotonic() < deadline, seen
        time.sleep(1)

    # 4. Rollback to the first release's digests: converges on them; the job does not run again.
    job_before = int(_service(manager, f"{name}_migrate")["JobStatus"]["JobIteration"]["Index"])
    back = swarm.rollback(
        _parsed(compose), images("good1"), stack=name, workdir=work / "out", tools=tools, log=lines.append
    )
    print(f"rollback: {back.seconds:.1f} s")
    for svc in ("web", "worker"):
        assert _running_digests(manager, f"{name}_{svc}") == {variants["good1"].rpartition("@")[2]}
    assert int(_service(manager, f"{name}_migrate")["JobStatus"]["JobIteration"]["Index"]) == job_before
    # The first token's secret is used by no spec any more (nor a previous one): removed; the second stays.
    first_secret = f"{name}_token_" + hashlib.sha256(b"first token\n").hexdigest()[:12]
    assert back.removed_secrets == [first_secret]
    left = docker("secret", "ls", "--format", "{{.Name}}", "--filter", f"label=com.docker.stack.namespace={name}")
    assert left.stdout.split() == [f"{name}_token_" + hashlib.sha256(b"second token\n").hexdigest()[:12]]
    with urllib.request.urlopen(f"http://127.0.0.1:{stack['port']}/", timeout=5) as resp:
        assert resp.status == 200


DEPLOY_CHILD = """
import json, sys
from pathlib import Path
from pipelines import compose_model
from pipelines.deploy import plan, steps, swarm
from pipelines.errors import PipelineError
from pipelines.result import Context
from pipelines.tools import Toolchain
compose = json.loads(Path(sys.argv[1]).read_text())
images = json.loads(sys.argv[2])
try:
    project = compose_model.parse(compose, source=sys.argv[1])
    swarm.deploy(project, images, stack=sys.argv[3], workdir=Path(sys.argv[4]), tools=Toolchain())
except PipelineError as exc:
    print(exc.render(), flush=True)
    sys.exit(exc.exit_code)
"""


def test_ctrl_c_mid_update_rolls_back(manager: Engine, variants: dict[str, str], stack: dict[str, Any]) -> None:
    """Ctrl-C while Swarm replaces tasks: exit 130, and Swarm is asked to roll back to what served before."""
    name, work, compose, tools = stack["name"], stack["work"], stack["compose"], stack["tools"]
    good1 = {svc: variants["good1"] for svc in ("migrate", "web", "worker")}
    swarm.deploy(_parsed(compose), good1, stack=name, workdir=work / "out", tools=tools, log=lambda _: None)
    (work / "compose.json").write_text(json.dumps(compose))
    good2 = json.dumps({svc: variants["good2"] for svc in ("migrate", "web", "worker")})
    child = subprocess.Popen(
        [sys.executable, "-c", DEPLOY_CHILD, str(work / "compose.json"), good2, name, str(work / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("swarm: phase services"):
            break
    time.sleep(2)  # the stack deploy has run; Swarm is replacing tasks (each needs 3 s to become healthy)
    child.send_signal(signal.SIGINT)
    rest, _ = child.communicate(timeout=60)
    output = "".join(lines) + rest
    assert child.returncode == 130, output
    assert "interrupted while deploying stack" in output
    assert "docker service rollback" in output
    for svc in ("web", "worker"):
        full = f"{name}_{svc}"
        deadline = time.monotonic() + 90
        while _service(manager, full)["UpdateStatus"]["State"] != "rollback_completed":
            assert time.monotonic() < deadline, _service(manager, full)["UpdateStatus"]
            time.sleep(1)
        while (seen := _running_digests(manager, full)) != {variants["good1"].rpartition("@")[2]}:
            assert time.monotonic() < deadline, seen
            time.sleep(1)


def test_failing_job_aborts_before_services_change(
    manager: Engine, variants: dict[str, str], stack: dict[str, Any]
) -> None:
    name, work, tools = stack["name"] + "j", stack["work"], stack["tools"]
    compose = copy.deepcopy(stack["compose"])
    compose["services"]["migrate"]["entrypoint"] = ["/opt/venv/bin/python", "-c", "raise SystemExit(3)"]
    images = {svc: variants["good1"] for svc in ("migrate", "web", "worker")}
    try:
        with pytest.raises(GateFailed, match="one-shot job migrate failed"):
            swarm.deploy(_parsed(compose), images, stack=name, workdir=work / "outj", tools=tools, log=lambda _: None)
        services = docker(
            "service", "ls", "--format", "{{.Name}}", "--filter", f"label=com.docker.stack.namespace={name}"
        )
        assert services.stdout.split() == [f"{name}_migrate"]  # nothing else was created
    finally:
        _remove_stack(name)


def test_rendered_stack_file_is_accepted_by_docker_stack_config(tools: Toolchain, tmp_path: Path) -> None:
    """The CLI that deploys it parses the file (schema 3.9, forbidden properties) without complaint."""
    compose = _recorded("staging", tmp_path)
    out = swarm.render_stack(_parsed(compose), _images(compose), stack="ref")
    for i, (_, names) in enumerate(swarm.phases(out)):
        f = tmp_path / f"phase{i}.yaml"
        f.write_text(swarm.dump(swarm._phase_file(out, names)))
        r = docker("stack", "config", "-c", str(f), check=False)
        assert r.returncode == 0, r.stderr
        assert yaml.safe_load(r.stdout)["services"].keys() == set(names)


# --------------------------------------------------------------------------- real-world Compose files

# Compose files this project wrote, shaped like public projects' (privileged, host paths, healthchecks, limits,
# env files, profiles...); other projects' files are never committed.
SHAPED = sorted(
    [
        *(ROOT / "tests" / "lint_corpus" / "compose").glob("*.yaml"),
        ROOT / "tests" / "lint_corpus" / "unseen" / "compose.yaml",
    ]
)
# Input keys the stack holds under another name.
MOVED = {"tmpfs": "volumes", "cpus": "deploy", "mem_limit": "deploy", "mem_reservation": "deploy",
         "pids_limit": "deploy", "scale": "deploy"}  # fmt: skip


def _realworld(tools: Toolchain, tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in SHAPED:
        rendered = composefile.render(tools, [f], [f"{f.parent.name}/{f.name}"], project_dir=f.parent)
        config = rendered.config
        for key, spec in (config.get("secrets") or {}).items():
            if spec.get("file") and not Path(spec["file"]).is_file():  # not part of the public file
                spec["file"] = str(tmp_path / key)
                Path(spec["file"]).write_text(f"{key}\n")
        out.append((f"{f.parent.name}/{f.name}", config))
    return out


def test_realworld_compose_files_every_dropped_key_noticed(tools: Toolchain, tmp_path: Path) -> None:
    """Compose projects shaped like public ones: each renders (or is refused naming service and key), nothing lost."""
    rendered = refused = 0
    for project, config in _realworld(tools, tmp_path):
        images = {name: f"127.0.0.1:5000/rw/{name}@{DIGEST}1" for name in config["services"]}
        try:
            out = swarm.render_stack(_parsed(config), images, stack="rw")
        except (swarm.SwarmRenderError, compose_model.ComposeShapeError) as exc:
            assert re.search(r"services\.[\w.-]+\.[\w.-]+", exc.what), (project, exc.what)
            refused += 1
            continue
        rendered += 1
        notes = swarm.notices(out)
        for name, spec in config["services"].items():
            svc = out["services"][name]
            for key, value in spec.items():
                if value in (None, [], {}, False) or key in svc or MOVED.get(key) in svc:
                    continue
                assert any(n.startswith(f"services.{name}.{key}") for n in notes), (project, name, key)
            for i, port in enumerate(spec.get("ports") or []):
                if port.get("host_ip") not in (None, "", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
                    assert any(n.startswith(f"services.{name}.ports[{i}]: host_ip") for n in notes), (project, name)
            assert all(p["mode"] == "host" for p in svc.get("ports") or [])
        # The CLI that deploys it accepts every phase file (schema 3.9, no forbidden property).
        for i, (_, names) in enumerate(swarm.phases(out)):
            f = tmp_path / f"{project.replace('/', '-')}-{i}.yaml"
            f.write_text(swarm.dump(swarm._phase_file(out, names)))
            r = docker("stack", "config", "-c", str(f), check=False)
            assert r.returncode == 0, (project, r.stderr)
    assert rendered >= len(SHAPED) - 2 and rendered + refused == len(SHAPED)


# ---- the deploy stage's engine contract: apply(ctx, new, old) ---------------------------------------


def _deployment(compose: dict[str, Any], images: dict[str, str], project: str, rdir: Path) -> plan.Deployment:
    config = copy.deepcopy(compose)
    for name, ref in images.items():
        config["services"][name]["image"] = ref
    rendered = plan.Rendered.parse(config, source="test")
    services = plan.services_of(rendered.project, stateful=(), floor=0.0, image_health={}, source="test")
    rdir.mkdir(parents=True, exist_ok=True)
    return plan.Deployment("test", project, rdir, rdir / "compose.json", rendered, services, "sha256:test")


def test_stack_names_from_project_names() -> None:
    assert swarm.stack_name("Pipelines-Reference_Staging") == "pipelines-reference_staging"
    assert len(swarm.stack_name("x" * 80)) == 30
    with pytest.raises(PipelineError, match="makes no Swarm stack name"):
        swarm.stack_name("---")


def test_apply_restores_the_old_release_when_swarm_rolls_back(
    manager: Engine, variants: dict[str, str], tools: Toolchain, tmp_path: Path, cfg: Any
) -> None:
    """What `pipelines deploy --engine swarm` calls: a failed update leaves the old release serving, exit 1."""
    name = f"swarmapply{uuid.uuid4().hex[:8]}"
    port = _free_port()
    (tmp_path / "compose.yaml").write_text(TEST_COMPOSE.format(project=name, port=port))
    (tmp_path / "token").write_text("token\n")
    compose = composefile.render(tools, [tmp_path / "compose.yaml"], ["compose.yaml"], project_dir=tmp_path).config
    ctx = Context(cfg, tools)
    every = ("migrate", "web", "worker")
    try:
        good = _deployment(compose, dict.fromkeys(every, variants["good1"]), name, tmp_path / "r1")
        done = swarm.apply(ctx, good, None, log=lambda _: None)
        assert {s.service for s in done if s.action in ("converged", "job ran")} == set(every)
        bad = _deployment(compose, dict.fromkeys(every, variants["bad"]), name, tmp_path / "r2")
        with pytest.raises(steps.GateBroken) as err:
            swarm.apply(ctx, bad, good, log=lambda _: None)
        assert err.value.exit_code == 1 and "roll" in err.value.what
        assert [s.action for s in err.value.steps] == ["rolled back by Swarm", "restored"]
        for svc in ("web", "worker"):
            assert _running_digests(manager, f"{name}_{svc}") == {variants["good1"].rpartition("@")[2]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.status == 200
    finally:
        _remove_stack(name)
