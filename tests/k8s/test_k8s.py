"""`pipelines render k8s`: manifests of the reference stack, held to the restricted Pod Security Standard.

The engine tests render the real builds of prod and staging (images by digest,
users and healthchecks read from the images) and judge the output with tools
that are not the renderer: kubernetes-validate's bundled schemas, the
restricted-profile check, and the build record and images themselves.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipelines import compose_model, config, k8s, manifest
from tests.harness import ROOT, RunLocks, docker, run_cli, run_cli_outcome, shared_data

VERSIONS = ("1.30.0", "1.33.0")
SOURCE_KINDS = ("compose ", "image ", "build record ", "default")


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "Job")}


# --------------------------------------------------------------------------- no engine needed


def restricted_pod(**container_sc: Any) -> dict[str, Any]:
    sc = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc.update(container_sc)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x", "securityContext": sc}]},
    }


def test_restricted_check_accepts_a_compliant_pod() -> None:
    assert k8s.restricted_violations([restricted_pod()]) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation is not false"),
        ({"capabilities": {"drop": ["NET_RAW"]}}, "capabilities.drop does not contain ALL"),
        ({"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, "capabilities.add has ['SYS_ADMIN']"),
        ({"runAsNonRoot": False}, "runAsNonRoot is not true"),
        ({"runAsUser": 0}, "runAsUser is 0"),
        ({"seccompProfile": {"type": "Unconfined"}}, "seccompProfile is not RuntimeDefault"),
        ({"privileged": True}, "privileged is true"),
        ({"procMount": "Unmasked"}, "procMount is Unmasked"),
    ],
)
def test_restricted_check_names_each_broken_control(change: dict[str, Any], expected: str) -> None:
    bad = k8s.restricted_violations([restricted_pod(**change)])
    assert any(expected in b for b in bad), bad


def test_restricted_check_pod_level_rules() -> None:
    pod = restricted_pod()
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80}]
    pod["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"host": "10.0.0.1", "port": 80}}
    bad = k8s.restricted_violations([pod])
    assert any("livenessProbe.httpGet.host is set" in b for b in bad)
    assert any("hostNetwork" in b for b in bad)
    assert any("['hostPath']" in b for b in bad)
    assert any("hostPort 80" in b for b in bad)


def test_durations_sizes_and_cpus() -> None:
    assert k8s._duration_ns("1m30s", "s", "k") == 90 * 10**9
    assert k8s._duration_ns("500ms", "s", "k") == 5 * 10**8
    assert k8s._seconds(5 * 10**8) == 1  # rounded up: never stricter than Compose
    assert k8s._quantity(k8s._bytes("256m", "s", "k")) == "256Mi"
    assert k8s._quantity(268435456) == "256Mi"
    assert k8s._cpu(1, "s", "k") == "1"
    assert k8s._cpu("0.25", "s", "k") == "250m"
    with pytest.raises(k8s.RenderError, match=r"services\.s\.k: '2 sec' is not a duration"):
        k8s._duration_ns("2 sec", "s", "k")


def test_deploy_resources_win_and_reservations_become_requests() -> None:
    spec = {
        "cpus": 2,
        "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "128M"}, "reservations": {"memory": "64M"}}},
    }
    res, src = k8s._resources("w", compose_model.parse({"services": {"w": spec}}, source="t").services["w"])
    assert res == {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "64Mi"}}
    assert src["limits.cpu"] == "compose services.w.deploy.resources.limits.cpus"
    assert src["requests.memory"] == "compose services.w.deploy.resources.reservations.memory"
    res, src = k8s._resources("w", compose_model.Service("w"))
    assert res["limits"] == {"cpu": "1", "memory": "256Mi"} and src["limits.memory"] == "default limits.memory"


def test_schema_errors_name_the_object_and_field() -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w"},
        "spec": {"replicas": "one", "selector": {}, "template": {"spec": {"containers": []}}},
    }
    errors = k8s.validate([bad], VERSIONS)
    assert any(e.startswith("Deployment/w: spec.replicas: ") and "(Kubernetes 1.30.0)" in e for e in errors), errors
    assert any("(Kubernetes 1.33.0)" in e for e in errors)
    unknown = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "colour": "red"}}
    assert k8s.validate([unknown], VERSIONS), "strict schemas refuse unknown fields"


# --------------------------------------------------------------------------- real builds


@pytest.fixture(scope="module")
def built_envs(built: dict[str, Any], locks: RunLocks) -> dict[str, manifest.BuildRecord]:
    cfg = config.load(ROOT / "pipeline.toml")
    out: dict[str, manifest.BuildRecord] = {}
    for env in ("prod", "staging"):
        out[env] = manifest.BuildRecord.model_validate(locks.build(cfg, env))
    return out


@pytest.fixture(scope="module")
def rendered(built_envs: dict[str, manifest.BuildRecord], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for env in built_envs:
        d = tmp_path_factory.mktemp(f"k8s-{env}")
        started = time.monotonic()
        r = run_cli("render", "k8s", "--env", env, "--out", str(d))
        seconds = time.monotonic() - started
        assert r.returncode == 0, r.stderr[-4000:]
        print(f"render k8s --env {env}: {r.stdout.strip()} (process wall time {seconds:.2f}s)")
        out[env] = d
    return out


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_manifests_validate_against_two_kubernetes_versions(rendered: dict[str, Path], env: str) -> None:
    docs = load_docs(rendered[env] / k8s.MANIFESTS) + load_docs(rendered[env] / k8s.SECRETS)
    assert len(docs) >= 10
    for d in docs:
        for v in VERSIONS:
            # strict: a field the schema does not know is an error too
            assert kubernetes_validate.validate(d, v, strict=True) == v.rsplit(".", 1)[0]


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_every_pod_meets_the_restricted_profile(rendered: dict[str, Path], env: str) -> None:
    docs = load_docs(rendered[env] / k8s.MANIFESTS)
    wl = workloads(docs)
    assert set(wl) == {"db", "migrate", "api", "ingestion", "proxy"}
    assert k8s.restricted_violations(docs) == []
    for name, d in wl.items():
        spec = pod_spec(d)
        assert spec["automountServiceAccountToken"] is False
        c = spec["containers"][0]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert c["resources"]["limits"]["cpu"] == "1"
        assert c["resources"]["limits"]["memory"] == {"db": "512Mi", "proxy": "64Mi"}.get(name, "256Mi")
        assert c["resources"]["requests"] == c["resources"]["limits"]
        # Every path Compose mounted as tmpfs is writable in the pod, and /tmp always is.
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts
    ns = next(d for d in docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {m["mountPath"] for m in wl["db"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]} >= {
        "/var/run/postgresql",
        "/var/lib/postgresql/data",
        "/run/secrets",
    }


def test_images_by_digest_and_users_from_the_images(
    rendered: dict[str, Path], built_envs: dict[str, manifest.BuildRecord]
) -> None:
    record = built_envs["prod"]
    refs = {i.ref for i in record.services}
    for name, d in workloads(load_docs(rendered["prod"] / k8s.MANIFESTS)).items():
        c = pod_spec(d)["containers"][0]
        assert "@sha256:" in c["image"] and c["image"] in refs, c["image"]
        # The numeric user is what the image itself says, read here with the docker CLI.
        local = next(i.local_ref for i in record.services if i.ref == c["image"])
        user = docker("image", "inspect", "--format", "{{.Config.User}}", local).stdout.strip()
        uid, gid = (int(x) for x in user.split(":"))
        assert uid != 0
        assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (uid, gid), name
        assert pod_spec(d)["securityContext"]["runAsUser"] == uid


def test_compose_shapes_become_the_right_objects(rendered: dict[str, Path]) -> None:
    docs = load_docs(rendered["prod"] / k8s.MANIFESTS)
    wl = workloads(docs)
    # migrate is what others wait for with service_completed_successfully: a Job, no probes.
    assert wl["migrate"]["kind"] == "Job"
    job_c = pod_spec(wl["migrate"])["containers"][0]
    assert job_c["command"][-2:] == ["-m", "api.migrate"]
    assert "livenessProbe" not in job_c
    # Compose's healthcheck wins over the image's (interval 2s, retries 5 vs the image's 5s / 3).
    api = pod_spec(wl["api"])["containers"][0]
    assert api["livenessProbe"]["exec"]["command"] == ["/opt/venv/bin/python", "-m", "api.healthcheck"]
    assert api["livenessProbe"]["periodSeconds"] == 2
    assert api["livenessProbe"]["failureThreshold"] == 5
    assert api["startupProbe"]["failureThreshold"] == 10 + 5  # start_period 20s / 2s, then the retries
    env = {e["name"]: e["value"] for e in api["env"]}
    assert env["METRICS_PASSWORD_FILE"] == "/run/secrets/metrics_password"
    projected = next(v for v in pod_spec(wl["api"])["volumes"] if v["name"] == "secrets")["projected"]
    assert sorted(s["secret"]["items"][0]["path"] for s in projected["sources"]) == [
        "db_password",
        "metrics_password",
        "metrics_user",
    ]
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    # proxy publishes 8080; api's and db's images expose 8000 and 5432, reached by their Compose names.
    assert set(services) == {"api", "db", "proxy"}
    assert services["proxy"]["spec"]["ports"][0]["port"] == 8080
    assert services["db"]["spec"]["ports"][0]["port"] == 5432
    pvcs = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert pvcs == {"pgdata", "ingest"}
    secrets = load_docs(rendered["prod"] / k8s.SECRETS)
    assert {s["metadata"]["name"] for s in secrets} == {"db-password", "metrics-user", "metrics-password"}
    # Placeholders only: no value is ever rendered.
    assert all("data" not in s and "stringData" not in s for s in secrets)


def test_staging_ships_its_seed_mount_as_a_configmap(rendered: dict[str, Path]) -> None:
    docs = load_docs(rendered["staging"] / k8s.MANIFESTS)
    cms = [d for d in docs if d["kind"] == "ConfigMap"]
    assert [c["metadata"]["name"] for c in cms] == ["ingestion-seed"]
    assert cms[0]["data"]["staging.jsonl"] == (ROOT / "compose" / "seed" / "staging.jsonl").read_text()
    ing = pod_spec(workloads(docs)["ingestion"])
    env = {e["name"]: e["value"] for e in ing["containers"][0]["env"]}
    assert env["INGEST_SEED_FILE"] == "/seed/staging.jsonl"


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_every_field_is_traceable(rendered: dict[str, Path], env: str) -> None:
    docs = load_docs(rendered[env] / k8s.MANIFESTS) + load_docs(rendered[env] / k8s.SECRETS)
    prov = json.loads((rendered[env] / k8s.PROVENANCE).read_text())
    assert set(prov["defaults"]) == set(k8s.DEFAULTS)
    for d in docs:
        key = f"{d['kind']}/{d['metadata']['name']}"
        assert d["metadata"]["annotations"][k8s.SOURCE_ANNOTATION], key
        sources = prov["objects"][key]
        for entry in sources.values():
            for src in entry.split("; "):
                assert src.startswith(SOURCE_KINDS), (key, src)
                if src.startswith("default "):
                    # a named default: one of the table's names
                    assert src.split()[1] in k8s.DEFAULTS, (key, src)
        for path in k8s.field_paths(d):
            assert any(path == p or path.startswith((p + ".", p + "[")) for p in sources), (key, path)


def test_output_is_byte_identical_across_processes(rendered: dict[str, Path], cfg: config.Config) -> None:
    # Another process, the default output directory (ARTIFACTS/k8s/ENV): the same bytes.
    r = run_cli("render", "k8s", "--env", "prod")
    assert r.returncode == 0, r.stderr[-4000:]
    default = cfg.project.artifacts / "k8s" / "prod"
    for name in (k8s.MANIFESTS, k8s.SECRETS, k8s.PROVENANCE):
        assert (default / name).read_bytes() == (rendered["prod"] / name).read_bytes(), name


def test_not_pushed_env_says_which_reference_it_uses(built_envs: dict[str, Any], tmp_path: Path) -> None:
    r = run_cli("render", "k8s", "--env", "dev", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-4000:]
    api = workloads(load_docs(tmp_path / k8s.MANIFESTS))["api"]
    note = api["metadata"]["annotations"][k8s.IMAGE_REF_ANNOTATION]
    assert "not pushed" in note and "@sha256:" not in pod_spec(api)["containers"][0]["image"]


BAD_OVERLAYS = [
    ("services:\n  api:\n    cap_add: [SYS_ADMIN]\n", "services.api.cap_add", "SYS_ADMIN"),
    (
        'services:\n  api:\n    healthcheck:\n      test: "/opt/venv/bin/python -m api.healthcheck"\n',
        "services.api.healthcheck.test",
        "CMD-SHELL",
    ),
    ('services:\n  ingestion:\n    user: "0:0"\n', "services.ingestion.user", "root"),
    ('services:\n  api:\n    user: "app"\n', "services.api.user", "not numeric"),
    ('services:\n  api:\n    user: "1000"\n', "services.api.user", "names no group"),
    ("services:\n  db:\n    privileged: true\n", "services.db.privileged", "restricted profile"),
    ("services:\n  api:\n    volumes:\n      - ./seed:/seed\n", "services.api.volumes[0]", "writable"),
    (
        "services:\n  ingestion:\n    environment:\n      TOKEN_FILE: /run/secrets/metrics_user\n",
        "services.ingestion.environment.TOKEN_FILE",
        "mounts no such secret",
    ),
]


@pytest.mark.parametrize(("overlay", "where", "what"), BAD_OVERLAYS, ids=[w for _, w, _ in BAD_OVERLAYS])
def test_bad_compose_input_exits_2_naming_service_and_key(
    built_envs: dict[str, Any], tmp_path: Path, overlay: str, where: str, what: str
) -> None:
    # Relative paths resolve against the project directory (compose/), wherever the overlay lies.
    f = tmp_path / "overlay.yaml"
    f.write_text(overlay)
    out = tmp_path / "out"
    r = run_cli("render", "k8s", "--env", "prod", "--compose-file", str(f), "--out", str(out))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert where in r.stderr and what in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / k8s.MANIFESTS).exists()


def test_unwritable_output_exits_2(built_envs: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run_cli("render", "k8s", "--env", "prod", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "--out" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_unknown_environment_and_missing_overlay_exit_2(tmp_path: Path) -> None:
    r = run_cli_outcome("render", "k8s", "--env", "nope", "--out", str(tmp_path))
    assert r.returncode == 2 and "environments.nope" in r.stderr, r.stderr
    missing = tmp_path / "missing.yaml"
    r = run_cli_outcome("render", "k8s", "--env", "prod", "--compose-file", str(missing), "--out", str(tmp_path))
    assert r.returncode == 2 and "missing.yaml" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_validator_ships_the_versions_we_name() -> None:
    assert {v for v in VERSIONS} <= set(kubernetes_validate.utils.all_versions())
    assert set(k8s.K8S_VERSIONS) <= set(kubernetes_validate.utils.all_versions())


# --------------------------------------------------------------------------- recorded inputs, golden output

DATA = Path(__file__).parent / "data" / "k8s"
TAG = "git-0123456789ab"


def _parsed(compose: dict[str, Any]) -> compose_model.Project:
    return compose_model.parse(compose, source="prod.compose.json")


def recorded_inputs() -> tuple[config.Config, manifest.BuildRecord, dict[str, Any], dict[str, Any]]:
    from pipelines.engine import ImageInfo

    cfg = config.load(ROOT / "pipeline.toml")
    compose = json.loads((DATA / "prod.compose.json").read_text())
    images: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    for name in ("api", "ingestion", "postgres"):
        tag = f"127.0.0.1:5000/pipelines/{name}:{TAG}"
        inspect = json.loads((DATA / f"{name}.inspect.json").read_text())
        digest = "sha256:" + name.encode().hex().ljust(64, "0")  # fixed: the golden file must not move
        images[name] = manifest.BuiltImage(
            name=name,
            kind="service",
            ref=f"127.0.0.1:5000/pipelines/{name}@{digest}",
            tags=(tag,),
            image_id=str(inspect["Id"]),
            digest=digest,
            seconds=1.0,
            pushed=True,
        )
        infos[tag] = ImageInfo.from_inspect(inspect)
    record = manifest.BuildRecord(
        env="prod",
        commit="0123456789ab" + "0" * 28,
        dirty=False,
        builder="recorded",
        cache="inline",
        started="2026-01-01T00:00:00Z",
        seconds=1.0,
        images=images,
    )
    return cfg, record, compose, infos


def test_recorded_prod_matches_the_golden_manifests() -> None:
    cfg, record, compose, infos = recorded_inputs()
    objects = k8s.render(cfg, "prod", record, _parsed(compose), infos)
    again = k8s.render(cfg, "prod", record, _parsed(json.loads(json.dumps(compose))), infos)
    assert [k8s.dump(objects, f) for f in (k8s.MANIFESTS, k8s.SECRETS)] == [
        k8s.dump(again, f) for f in (k8s.MANIFESTS, k8s.SECRETS)
    ]
    assert k8s.provenance(objects) == k8s.provenance(again)
    assert k8s.restricted_violations(o.body for o in objects) == []
    assert k8s.validate((o.body for o in objects), VERSIONS) == []
    assert {o.key: k8s.untraced(o) for o in objects} == {o.key: [] for o in objects}
    for f in (k8s.MANIFESTS, k8s.SECRETS):
        golden = DATA / f"prod.{f}"
        text = k8s.dump(objects, f)
        if os.environ.get("PIPELINES_REGEN_GOLDEN") == "1":
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden} differs (PIPELINES_REGEN_GOLDEN=1 rewrites it; review the diff)"


def test_recorded_shell_healthcheck_in_the_image_is_refused() -> None:
    from pipelines.engine import ImageInfo

    cfg, record, compose, infos = recorded_inputs()
    del compose["services"]["ingestion"]["healthcheck"]  # the image's own healthcheck applies
    tag = f"127.0.0.1:5000/pipelines/ingestion:{TAG}"
    raw = json.loads(json.dumps(dict(infos[tag].raw)))
    raw["Config"]["Healthcheck"]["Test"] = ["CMD-SHELL", "python -m ingestion.healthcheck"]
    infos[tag] = ImageInfo.from_inspect(raw)
    with pytest.raises(k8s.RenderError, match=r"services\.ingestion\.image: a shell-form healthcheck"):
        k8s.render(cfg, "prod", record, _parsed(compose), infos)


def test_compose_healthcheck_fields_merge_over_the_images() -> None:
    cfg, record, compose, infos = recorded_inputs()
    # Only the retries from Compose: the command and interval stay the image's (5s, retries 3 there).
    compose["services"]["ingestion"]["healthcheck"] = {"retries": 7}
    objects = {o.key: o for o in k8s.render(cfg, "prod", record, _parsed(compose), infos)}
    c = objects["Deployment/ingestion"].body["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["exec"]["command"] == ["/opt/venv/bin/python", "-m", "ingestion.healthcheck"]
    assert (c["livenessProbe"]["periodSeconds"], c["livenessProbe"]["failureThreshold"]) == (5, 7)
    assert c["startupProbe"]["failureThreshold"] == 2 + 7  # the image's start period, 10s / 5s
    compose["services"]["ingestion"]["healthcheck"] = {"disable": True}
    objects = {o.key: o for o in k8s.render(cfg, "prod", record, _parsed(compose), infos)}
    c = objects["Deployment/ingestion"].body["spec"]["template"]["spec"]["containers"][0]
    assert "livenessProbe" not in c and "readinessProbe" not in c


# Kubernetes' own Pod Security Admission test pods, in ../shared/testdata/k8s-psa (SOURCES.md there).
PSA_PODS = [
    *(f"fail/v1.19-{n}.yaml" for n in ("hostnamespaces1", "hostpathvolumes0", "hostports0", "privileged0", "sysctls0")),
    *(
        f"fail/v1.25-{n}.yaml"
        for n in (
            "capabilities_restricted0",
            "capabilities_restricted1",
            "capabilities_restricted2",
            "procmount1",
            "restrictedvolumes16",
            "runasnonroot3",
            "runasuser0",
            "seccompprofile_restricted2",
        )
    ),
    *(f"pass/v1.25-{n}.yaml" for n in ("base", "selinuxoptions0", "sysctls1")),
]
# What each Kubernetes fixture's name stands for, as this check words it.
PSA_EXPECTED = {
    "capabilities_restricted": "capabilities.drop does not contain ALL",
    "runasuser": "runAsUser is 0",
    "seccompprofile_restricted": "seccompProfile is not RuntimeDefault",
    "procmount": "procMount is Unmasked",
    "restrictedvolumes": "has type ['portworxVolume']",
    "runasnonroot": "runAsNonRoot is not true",
    "hostpathvolumes": "has type ['hostPath']",
    "sysctls": "sysctls othersysctl is not a safe sysctl",
    "hostports": "hostPort 12345",
    "privileged": "privileged is true",
    "hostnamespaces": "spec.hostNetwork is true",
}


@pytest.mark.parametrize("name", PSA_PODS)
def test_restricted_check_agrees_with_kubernetes_fixtures(name: str) -> None:
    path = shared_data(f"k8s-psa/{name}")
    pod = yaml.safe_load(path.read_text())
    bad = k8s.restricted_violations([pod])
    if path.parent.name == "pass":
        assert bad == []
        return
    control = path.stem.split("-", 1)[1].rstrip("0123456789")
    assert any(PSA_EXPECTED[control] in b for b in bad), bad
