"""Real engine: build everything, then check the images and containers themselves."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines import config, golden, lockfile, osupdates
from tests.harness import RunLocks, docker, run_cli

SHELLS_AND_PKG_TOOLS = (
    "bin/sh",
    "bin/bash",
    "bin/dash",
    "bin/ash",
    "bin/busybox",
    "bin/apt",
    "bin/apt-get",
    "bin/dpkg",
    "bin/curl",
    "bin/wget",
)
OCI_LABELS = ("title", "version", "created", "revision", "source")


def local_ref(entry: dict[str, Any]) -> str:
    """A reference the engine has locally (pulled when only in the registry)."""
    ref = entry["image_id"] or entry["ref"]
    if docker("image", "inspect", ref, check=False).returncode != 0:
        docker("pull", "-q", entry["ref"], timeout=300)
        ref = entry["ref"]
    return str(ref)


def inspect(ref: str) -> dict[str, Any]:
    return dict(json.loads(docker("image", "inspect", ref).stdout)[0])


def exported_paths(ref: str, *cmd: str) -> set[str]:
    """Every path in the image's filesystem; cmd for images without one (never run)."""
    cid = docker("create", ref, *cmd).stdout.strip()
    try:
        raw = subprocess.run(["docker", "export", cid], capture_output=True, timeout=300, check=True).stdout
    finally:
        docker("rm", "-f", cid)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name.lstrip("./") for m in tar.getmembers()}


def runtime_bases(cfg: config.Config) -> set[str]:
    return {b.name for b in cfg.bases if b.role == "runtime"}


def final_images(built: dict[str, Any], cfg: config.Config) -> dict[str, str]:
    """The distroless images: the golden runtime and every service whose final stage starts from it."""
    bases = runtime_bases(cfg)
    names = [s.name for s in cfg.services if bases & set(s.bases.values())]
    return {n: local_ref(built["images"][n]) for n in [*names, *sorted(bases)]}


def test_every_service_runs_as_a_numeric_non_root_user(built: dict[str, Any], cfg: config.Config) -> None:
    """Including services not built on the runtime (the PostgreSQL image runs as 999)."""
    for s in cfg.services:
        user = inspect(local_ref(built["images"][s.name]))["Config"]["User"]
        uid = user.split(":", 1)[0]
        assert uid.isdigit() and int(uid) != 0, f"{s.name} runs as {user!r}"


def test_bases_are_locked_by_digest(built: dict[str, Any], cfg: config.Config) -> None:
    lock = lockfile.load(cfg.project.lock)
    assert set(lock) == {b.name for b in cfg.bases}
    for name, entry in lock.items():
        assert "@sha256:" in entry.ref, name
        assert built["images"][name]["ref"] == entry.ref


def test_runtime_images_have_no_shell_or_package_manager(built: dict[str, Any], cfg: config.Config) -> None:
    for name, ref in final_images(built, cfg).items():
        paths = exported_paths(ref)
        present = [p for p in SHELLS_AND_PKG_TOOLS if f"usr/{p}" in paths or p in paths]
        assert present == [], f"{name} contains {present}"
        assert not any(p.startswith("var/cache/apt/archives/") and p.endswith(".deb") for p in paths), name
        assert not any(p.startswith("var/lib/apt/lists/") for p in paths), name
        # Scanners need the OS package database to see what is installed.
        assert "var/lib/dpkg/status.d/libc6" in paths, name
        assert "var/lib/dpkg/status.d/python3.11-minimal" in paths, name
        assert "etc/ssl/certs/ca-certificates.crt" in paths and "usr/bin/tini" in paths, name


def test_user_labels_and_healthcheck(built: dict[str, Any], cfg: config.Config) -> None:
    for name, ref in final_images(built, cfg).items():
        c = inspect(ref)["Config"]
        assert c["User"] == "65532:65532", name
        labels = c.get("Labels") or {}
        for key in OCI_LABELS:
            assert labels.get(f"org.opencontainers.image.{key}"), f"{name} lacks label {key}"
        if name in cfg.images and not cfg.images[name].is_base:
            assert labels["org.opencontainers.image.revision"] == built["commit"]
            test = c["Healthcheck"]["Test"]
            assert test[0] == "CMD", f"{name}: healthcheck must be exec form, got {test}"
            assert c["Entrypoint"][:2] == ["/usr/bin/tini", "--"], name


def test_runtime_passwd_has_nonroot_65532(built: dict[str, Any]) -> None:
    ref = local_ref(built["images"]["python-runtime"])
    r = docker(
        "run",
        "--rm",
        ref,
        "-c",
        "import pwd,grp,os; u=pwd.getpwnam('nonroot'); "
        "print(u.pw_uid, u.pw_gid, grp.getgrgid(u.pw_gid).gr_name, os.getuid(), "
        "oct(os.stat('/tmp').st_mode & 0o7777))",
    )
    assert r.stdout.split() == ["65532", "65532", "nonroot", "65532", "0o1777"]


def test_builder_and_runtime_carry_the_same_python(built: dict[str, Any]) -> None:
    code = "import sys; print(sys.version_info[0], sys.version_info[1])"
    builder = docker("run", "--rm", local_ref(built["images"]["python-builder"]), "python3", "-c", code).stdout
    runtime = docker("run", "--rm", local_ref(built["images"]["python-runtime"]), "-c", code).stdout
    assert builder.split() == runtime.split() == ["3", "11"]


DROP_LIST = golden.HERE / "python-runtime" / "drop.txt"


def drop_patterns(python: str = "3.11") -> list[str]:
    """The golden runtime's drop.txt as assemble.py reads it for ``python``, without the leading slash."""
    lines = (line.split("#", 1)[0].strip() for line in DROP_LIST.read_text().splitlines())
    return [line.replace("{stdlib}", f"/usr/lib/python{python}").lstrip("/") for line in lines if line]


def dropped_paths(paths: set[str], patterns: list[str]) -> list[str]:
    return sorted(
        p
        for p in paths
        for pat in patterns
        if (p.startswith(pat) if pat.endswith("/") else fnmatch.fnmatchcase(p, pat))
    )


def test_drop_list_is_applied_to_every_runtime_image(built: dict[str, Any], cfg: config.Config) -> None:
    patterns = drop_patterns()
    # The list must name things Debian's Python really installs, or it drops nothing:
    # the builder carries the same packages, complete.
    in_builder = dropped_paths(exported_paths(local_ref(built["images"]["python-builder"]), "true"), patterns)
    for expected in ("usr/lib/python3.11/pydoc_data/", "usr/lib/x86_64-linux-gnu/gconv/", "usr/bin/tini-static"):
        assert any(p.startswith(expected) for p in in_builder), f"{expected} not in the builder: stale drop list?"
    for name, ref in final_images(built, cfg).items():
        left = dropped_paths(exported_paths(ref), patterns)
        assert left == [], f"{name} still contains what drop.txt leaves out: {left[:10]}"


# Standard library modules that cannot import on this platform whatever drop.txt says:
# Windows-only modules, and the dbm back ends whose C modules Debian ships elsewhere
# (python3-gdbm) or assemble.py leaves out with their library (_dbm, Berkeley DB).
STDLIB_NOT_HERE = (
    "asyncio.windows_events",
    "asyncio.windows_utils",
    "encodings.mbcs",
    "encodings.oem",
    "multiprocessing.popen_spawn_win32",
    "dbm.gnu",
    "dbm.ndbm",
)
# Run inside each service image: every module of the service, every standard library
# module and submodule left in the image and every extension module (stdlib and
# site-packages) must import, so a dropped file or library that anything still needs
# fails here (a dropped http.server that xmlrpc.server imports, say).
IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys, sysconfig, pathlib
failed = []
not_here = set(sys.argv[2].split(","))
def attempt(name):
    if name in not_here:
        return
    try:
        importlib.import_module(name)
    except Exception as e:
        failed.append(f"{name}: {type(e).__name__}: {e}")
app = sys.argv[1]
for pkg in pathlib.Path(app).iterdir():
    if (pkg / "__init__.py").is_file():
        attempt(pkg.name)
        for m in pkgutil.walk_packages([str(pkg)], pkg.name + "."):
            if not m.name.endswith("__main__"):
                attempt(m.name)
stdlib = sysconfig.get_paths()["stdlib"]
for m in pkgutil.iter_modules([stdlib + "/lib-dynload"]):
    if not m.name.startswith("_test"):
        attempt(m.name)
for m in pkgutil.walk_packages([stdlib], onerror=lambda name: failed.append(f"{name}: cannot be walked")):
    if m.name.rpartition(".")[2] != "__main__" and m.name not in ("antigravity", "this"):
        attempt(m.name)
for name in not_here:  # each must be present and fail to import, or leave the list
    present = False
    try:
        present = importlib.util.find_spec(name) is not None
        importlib.import_module(name)
    except ImportError:
        if present:
            continue
    failed.append(f"{name}: missing, or imports after all: take it off STDLIB_NOT_HERE")
site = sysconfig.get_paths()["purelib"]
for so in pathlib.Path(site).rglob("*.cpython-*.so"):
    rel = so.relative_to(site).with_suffix("").with_suffix("")
    attempt(".".join(rel.parts))
print(len(sys.modules))
print("\\n".join(failed), file=sys.stderr)
sys.exit(1 if failed else 0)
"""


@pytest.mark.parametrize("service", ["api", "ingestion"])
def test_service_and_stdlib_modules_import_in_the_runtime(built: dict[str, Any], service: str) -> None:
    ref = local_ref(built["images"][service])
    r = docker(
        "run", "--rm", "--entrypoint", "/opt/venv/bin/python", ref, "-c", IMPORT_ALL, "/opt/app",
        ",".join(STDLIB_NOT_HERE), check=False,
    )  # fmt: skip
    assert r.returncode == 0, f"{service}: imports fail in the runtime image:\n{r.stderr[-4000:]}"
    # Proof the walk imported something substantial, not an empty tree.
    assert int(r.stdout.split()[-1]) > 300, r.stdout


# Run inside a service image after the exercise: every module loaded from the standard
# library, the virtualenv or the service without bytecode beside it. The runtime user
# cannot write bytecode, so each of these would be compiled from source in every process.
WITHOUT_BYTECODE = """
import importlib.util, os, sys, sysconfig
roots = (sysconfig.get_paths()["stdlib"] + "/", sysconfig.get_paths()["purelib"] + "/", "/opt/app/")
files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
files = [f for f in files if f.endswith(".py") and f.startswith(roots)]
missing = sorted(f for f in files if not os.path.exists(importlib.util.cache_from_source(f)))
print(json.dumps({"checks": checks, "loaded": len(files), "without_bytecode": missing}))
"""
# The api, serving: uvicorn in-process, the routes and their error paths with the
# database out of reach (PGHOST names nothing), the healthcheck's own code, the migrate
# job's module. Prints each route's status.
API_EXERCISE = """
import json, threading, time, urllib.error, urllib.request
import uvicorn
import api.migrate
from api import healthcheck
server = uvicorn.Server(uvicorn.Config("api.app:create_app", factory=True, host="127.0.0.1", port=8000,
                                       log_level="warning", timeout_graceful_shutdown=1))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
deadline = time.monotonic() + 30
while not server.started and time.monotonic() < deadline:
    time.sleep(0.05)
checks = {}
for path in ("/health", "/ready", "/documents", "/documents?limit=0", "/documents/a-1", "/search",
             "/search?q=x", "/metrics", "/nowhere"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000" + path, timeout=10) as resp:
            checks[path] = resp.status
    except urllib.error.HTTPError as exc:
        checks[path] = exc.code
for name, body in (("POST /documents", {"title": "t", "body": "text", "tags": ["x"]}),
                   ("POST /documents (invalid)", {"body": ""})):
    req = urllib.request.Request("http://127.0.0.1:8000/documents", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            checks[name] = resp.status
    except urllib.error.HTTPError as exc:
        checks[name] = exc.code
checks["healthcheck"] = healthcheck.main()
server.should_exit = True
thread.join(10)
"""
API_EXPECTED = {
    "/health": 200,
    "/ready": 503,
    "/documents": 503,
    "/documents?limit=0": 422,
    "/documents/a-1": 503,
    "/search": 422,
    "/search?q=x": 503,
    "/metrics": 404,  # no credentials configured: off
    "/nowhere": 404,
    "POST /documents": 503,
    "POST /documents (invalid)": 422,
    "healthcheck": 0,
}
# The ingestion worker's code that needs no database (importing __main__ would start it):
# documents parsed and refused, a database that does not answer, the healthcheck's
# verdict on a worker that never beat.
INGESTION_EXERCISE = """
import json
from ingestion import documents, healthcheck, settings, worker
checks = {}
checks["valid"] = documents.parse(json.dumps({"id": "a-1", "body": "text", "tags": ["t"]}), 1000).id
checks["invalid"] = 0
for line in ('{"body": ', b'{"body": "caf' + bytes([0xE9]) + b'"}', '{"body": NaN}', '{"id": 5, "body": "b"}'):
    try:
        documents.parse(line, 1000)
    except documents.Invalid:
        checks["invalid"] += 1
s = settings.Settings.from_env()
checks["db"] = worker.Worker(s).healthy_db()
checks["health"] = healthcheck.check(s, 0.0) is not None
"""


@pytest.mark.parametrize("service", ["api", "ingestion"])
def test_a_working_service_loads_nothing_without_bytecode(built: dict[str, Any], service: str) -> None:
    """What each service imports doing its work has bytecode: precompile.txt (stdlib), the
    api's bytecode.txt (its virtualenv), pip's (ingestion's virtualenv)."""
    ref = local_ref(built["images"][service])
    script = (API_EXERCISE if service == "api" else INGESTION_EXERCISE) + WITHOUT_BYTECODE
    r = docker(
        "run", "--rm", *HARDENED, "--tmpfs", "/tmp", "-e", "PGHOST=nowhere.invalid", "-e", "PGCONNECT_TIMEOUT=1",
        "--entrypoint", "/opt/venv/bin/python", ref, "-c", script, check=False, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.splitlines()[-1])
    if service == "api":
        assert out["checks"] == API_EXPECTED, out["checks"]
    else:
        assert out["checks"] == {"valid": "a-1", "invalid": 4, "db": False, "health": True}, out["checks"]
    assert out["loaded"] > 200, out
    assert out["without_bytecode"] == [], f"{service} loads these from source: {out['without_bytecode']}"


API_PRUNE = Path(__file__).resolve().parent.parent / "services" / "api" / "prune.txt"
# Inside the api image: the site-packages paths matching each prune.txt pattern, and
# those of the needs= modules that can be found.
PRUNED = """
import fnmatch, importlib.util, json, pathlib, sys, sysconfig
site = pathlib.Path(sysconfig.get_paths()["purelib"])
files = [str(p.relative_to(site)) for p in site.rglob("*")]
left = {}
for pat in json.loads(sys.argv[1]):
    hits = [f for f in files if (f.startswith(pat) if pat.endswith("/") else fnmatch.fnmatchcase(f, pat))]
    if hits:
        left[pat] = hits[:5]
found = [m for m in json.loads(sys.argv[2]) if importlib.util.find_spec(m) is not None]
print(json.dumps({"left": left, "found": found, "files": len(files)}))
"""


def test_api_venv_prune_list_is_applied_and_its_reasons_hold(built: dict[str, Any]) -> None:
    patterns: list[str] = []
    needs: list[str] = []
    for raw in API_PRUNE.read_text().splitlines():
        words = raw.split("#", 1)[0].split()
        if words:
            patterns.append(words[0])
            needs += [w.removeprefix("needs=") for w in words[1:]]
    assert "pydantic/v1/" in patterns and len(needs) > 10, (patterns, needs)
    ref = local_ref(built["images"]["api"])
    r = docker("run", "--rm", "--entrypoint", "/opt/venv/bin/python", ref, "-c", PRUNED,
               json.dumps(patterns), json.dumps(needs))  # fmt: skip
    out = json.loads(r.stdout)
    assert out["files"] > 500, out
    assert out["left"] == {}, f"prune.txt patterns still in the api image: {out['left']}"
    # The modules pruned for want of these cannot have imported in this image anyway.
    assert out["found"] == [], f"installed after all, so what prune.txt removed may be needed: {out['found']}"


PRECOMPILE_LIST = DROP_LIST.parent / "precompile.txt"
# In the runtime: import the listed modules, then name every stdlib module loaded
# without bytecode beside it (the runtime user cannot write any, so it compiled
# from source).
FROM_SOURCE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = [m for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
stdlib = [m for m in loaded if m.__file__.startswith("/usr/lib/python3.11/") and m.__file__.endswith(".py")
          and m.__spec__.origin != "frozen"]  # the interpreter's own startup modules are frozen into it
print(len(stdlib))
print(" ".join(sorted(m.__name__ for m in stdlib if not (m.__spec__.cached and m.__spec__.has_location
      and __import__("os").path.exists(m.__spec__.cached)))))
"""


def test_runtime_carries_bytecode_for_the_precompiled_stdlib(built: dict[str, Any]) -> None:
    modules = [
        line.split("#", 1)[0].strip()
        for line in PRECOMPILE_LIST.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert len(modules) > 20
    ref = local_ref(built["images"]["python-runtime"])
    r = docker("run", "--rm", "--read-only", ref, "-c", FROM_SOURCE, *modules, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    count, _, uncached = r.stdout.partition("\n")
    assert int(count) > 100, r.stdout
    assert uncached.split() == [], f"stdlib modules without bytecode in the runtime: {uncached.strip()}"


# The API's liveness needs nothing else; ingestion's health needs its database, so it is
# checked in the running stack (tests/stack/test_smoke.py).
@pytest.mark.parametrize("service", ["api"])
def test_container_turns_healthy_and_stops_within_2s(
    built: dict[str, Any], container_names: list[str], service: str
) -> None:
    ref = local_ref(built["images"][service])
    name = f"pipelines-test-{service}-{os.getpid()}"
    container_names.append(name)
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--health-interval=1s",
        "--health-start-period=1s",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        ref,
    )
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(0.5)
    logs = docker("logs", name, check=False)
    assert status == "healthy", f"{service} is {status!r}; logs:\n{logs.stdout}{logs.stderr}"
    start = time.monotonic()
    docker("stop", "--time", "10", name)
    took = time.monotonic() - start
    state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
    assert took < 2.0, f"docker stop took {took:.1f}s: SIGTERM did not reach the app"
    assert state["ExitCode"] in (0, 143), state


def test_ca_bundle_never_lands_in_a_layer(built: dict[str, Any], tmp_path: Path) -> None:
    bundle = next(
        (
            Path(os.environ[v])
            for v in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
            if os.environ.get(v) and Path(os.environ[v]).is_file()
        ),
        None,
    )
    if bundle is None:
        pytest.fail("no CA bundle in PIP_CERT/SSL_CERT_FILE/REQUESTS_CA_BUNDLE: the secret path was not exercised")
    wanted = hashlib.sha256(bundle.read_bytes()).hexdigest()
    for service in ("api", "ingestion"):
        raw = subprocess.run(
            ["docker", "save", local_ref(built["images"][service])], capture_output=True, timeout=300, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
            for member in outer.getmembers():
                if not member.name.endswith("layer.tar"):
                    continue
                layer = outer.extractfile(member)
                assert layer is not None
                with tarfile.open(fileobj=io.BytesIO(layer.read())) as inner:
                    for m in inner.getmembers():
                        assert "run/secrets" not in m.name, f"{service}: {m.name} in a layer"
                        if m.isfile() and m.size == bundle.stat().st_size:
                            f = inner.extractfile(m)
                            assert f is not None
                            assert hashlib.sha256(f.read()).hexdigest() != wanted, f"{service}: {m.name} is the bundle"


@pytest.mark.exclusive("dev")  # the rebuild moves dev's local tags
def test_rebuild_without_changes_reuses_bases(built: dict[str, Any], cfg: config.Config, locks: RunLocks) -> None:
    with locks.exclusive("build"):
        r = run_cli("build", "--env", "dev")
    assert r.returncode == 0, r.stderr[-4000:]
    again = json.loads((cfg.project.artifacts / "build" / "dev.json").read_text())
    for b in cfg.bases:
        assert again["images"][b.name]["reused"] is True, b.name
        assert again["images"][b.name]["ref"] == built["images"][b.name]["ref"]


def _tiny_project(tmp_path: Path, dockerfile: str, registry: str = "127.0.0.1:5000") -> Path:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    path = tmp_path / "pipeline.toml"
    path.write_text(
        textwrap.dedent(f"""
        [project]
        name = "tiny"
        [registry]
        address = "{registry}"
        namespace = "pipelines-tests"
        [services.broken]
        context = "svc"
        [environments.dev]
    """)
    )
    return path


def test_failing_dockerfile_names_the_image_and_file(tools: object, tmp_path: Path) -> None:
    path = _tiny_project(tmp_path, "FROM scratch\nCOPY missing-file /x\n")
    r = run_cli("--config", str(path), "build")
    assert r.returncode == 1, r.stderr
    assert "error: build of broken failed" in r.stderr
    assert str(tmp_path / "svc" / "Dockerfile") in r.stderr
    assert "missing-file" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_registry_is_a_clear_error(tools: object, tmp_path: Path) -> None:
    path = _tiny_project(tmp_path, "FROM scratch\n", registry="127.0.0.1:9")
    r = run_cli("--config", str(path), "build")
    assert r.returncode == 2
    assert "error: the registry 127.0.0.1:9 does not answer" in r.stderr
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- Debian security updates


def _security_suite(cfg: config.Config) -> osupdates.Suite:
    suites = osupdates.security_suites(cfg.images.values())
    assert len(suites) == 1, suites
    return suites[0]


def test_golden_bases_have_no_pending_security_updates(
    built: dict[str, Any], cfg: config.Config, tmp_path: Path
) -> None:
    # A cache of its own: the index is fetched now, so "none pending" is against today's archive.
    refs = {b.name: local_ref(built["images"][b.name]) for b in cfg.bases}
    res = osupdates.check_images(refs, _security_suite(cfg), tmp_path, timeout=120)
    assert res.index.origin == "download"
    assert res.index.packages, "the security suite index lists nothing"
    for name in refs:
        assert res.packages[name] > 0, f"{name}: no OS packages read"
    assert res.pending == [], "\n".join(f"{p.image}: {p.package} {p.installed} -> {p.fixed}" for p in res.pending)


def test_package_lock_lists_what_each_locked_base_contains(built: dict[str, Any], cfg: config.Config) -> None:
    locked = lockfile.load(cfg.project.lock)
    packages = lockfile.load_packages(lockfile.packages_path(cfg.project.lock))
    for b in cfg.bases:
        entry = packages[b.name]
        assert entry.ref == locked[b.name].ref == built["images"][b.name]["ref"]
        assert entry.packages == osupdates.lock_entries(osupdates.image_packages(entry.ref)), b.name
    assert "libc6" in packages["debian"].packages


@pytest.mark.exclusive("reports")  # it reads the scan's report through the `latest` link
def test_an_out_of_date_package_is_a_gating_finding_with_cve_ids(
    built: dict[str, Any], cfg: config.Config, tmp_path: Path
) -> None:
    rootfs = next(b.name for b in cfg.bases if b.kind == "rootfs")
    release = cfg.images[rootfs].suite
    tag = f"{cfg.registry.address}/pipelines-tests/os-updates-old:{os.getpid()}"
    # libssl3 from the release suite, while the security suite has a newer one: deliberately out of date.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {built['images'][rootfs]['ref']}\n"
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends --allow-downgrades libssl3/{release} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )
    docker("buildx", "build", "--load", "--tag", tag, str(tmp_path), timeout=600)
    try:
        res = osupdates.check_images({"old-openssl": tag}, _security_suite(cfg), tmp_path / "cache", timeout=120)
        found = {p.package: p for p in res.pending}
        assert set(found) == {"libssl3"}, found
        p = found["libssl3"]
        assert osupdates.is_newer(p.fixed, p.installed)
        assert p.cves, f"no CVE ids read from {p.changelog}"
        assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", c) for c in p.cves)
        assert p.changelog.startswith(("http://", "https://")) and p.changelog.endswith(".deb")

        r = run_cli("scan", "--env", "dev", tag)
        assert r.returncode == 1, r.stderr[-3000:]
        assert "libssl3" in r.stdout and p.fixed in r.stdout
        assert f"OS updates index: {_security_suite(cfg).suite}" in r.stdout
        scan_json = json.loads((cfg.project.artifacts / "scan" / "latest" / "scan.json").read_text())
        [finding] = [f for f in scan_json["findings"] if f["tool"] == osupdates.TOOL]
        assert finding["gated"] is True
        assert finding["extra"]["cves"] == ",".join(p.cves)
        assert finding["extra"]["installed"] == p.installed
    finally:
        docker("image", "rm", "-f", tag, check=False)


def test_image_without_dpkg_data_is_named_not_passed(built: dict[str, Any], cfg: config.Config, tmp_path: Path) -> None:
    tag = f"{cfg.registry.address}/pipelines-tests/os-updates-scratch:{os.getpid()}"
    (tmp_path / "hello.txt").write_text("no packages here\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    docker("buildx", "build", "--load", "--tag", tag, str(tmp_path), timeout=300)
    try:
        suite = _security_suite(cfg)
        with pytest.raises(osupdates.NoDpkgData, match="none of the images has a dpkg database"):
            osupdates.check_images({"scratch": tag}, suite, tmp_path / "cache", timeout=120)
        runtime = local_ref(built["images"][sorted(runtime_bases(cfg))[0]])
        res = osupdates.check_images({"scratch": tag, "runtime": runtime}, suite, tmp_path / "cache", timeout=120)
        assert res.no_dpkg == ["scratch"] and res.packages["runtime"] > 0
        assert "NOT checked (no dpkg database): scratch" in res.statement()
    finally:
        docker("image", "rm", "-f", tag, check=False)


@pytest.mark.exclusive("dev")  # it replaces the runtime base and moves every dev tag on it
def test_refresh_bases_rebuilds_only_the_base_with_updates(
    built: dict[str, Any], cfg: config.Config, locks: RunLocks
) -> None:
    """Runs last: it replaces the runtime base. The lock says the runtime has an older libssl3 than the archive's."""
    runtime = sorted(runtime_bases(cfg))[0]
    path = lockfile.packages_path(cfg.project.lock)
    packages = lockfile.load_packages(path)
    current = packages[runtime].packages["libssl3"]["version"]
    older = "3.0.20-1~deb12u2"
    assert osupdates.is_newer(current, older)
    packages[runtime].packages["libssl3"]["version"] = older
    lockfile.save_packages(path, packages)

    with locks.exclusive("build"):
        r = run_cli("build", "--env", "dev", "--refresh-bases")
    assert r.returncode == 0, r.stderr[-6000:]
    assert f"[refresh] {runtime}: 1 security updates (rebuilt without cache): libssl3 {older} -> " in r.stderr
    assert f"~ libssl3 {older} -> {current}" in r.stderr  # the package lock's diff
    again = json.loads((cfg.project.artifacts / "build" / "dev.json").read_text())
    assert again["images"][runtime]["reused"] is False
    for b in cfg.bases:
        if b.name != runtime and runtime not in b.bases.values():
            assert again["images"][b.name]["reused"] is True, b.name
    after = lockfile.load_packages(path)[runtime]
    assert after.ref == again["images"][runtime]["ref"]
    assert after.packages["libssl3"]["version"] == current


# --------------------------------------------------------------------------- the front door (images/proxy)


def test_proxy_image_holds_haproxy_and_no_shell(built: dict[str, Any]) -> None:
    ref = local_ref(built["images"]["proxy"])
    c = inspect(ref)["Config"]
    uid, _, gid = c["User"].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, c["User"]
    assert c["Healthcheck"]["Test"][0] == "CMD", c["Healthcheck"]
    assert c["StopSignal"] == "SIGUSR1"
    paths = exported_paths(ref)
    for tool in SHELLS_AND_PKG_TOOLS:
        assert f"usr/{tool}" not in paths and tool not in paths, tool
    assert {"usr/sbin/haproxy", "etc/haproxy/haproxy.cfg", "usr/bin/nc.openbsd", "etc/os-release"} <= paths
    # Scanners see every OS package through its dpkg status file.
    status = {p.rpartition("/")[2] for p in paths if p.startswith("var/lib/dpkg/status.d/") and "." not in p[23:]}
    assert {"haproxy", "libc6", "libssl3", "netcat-openbsd", "base-files"} <= status, status
    r = docker("run", "--rm", "--entrypoint", "/usr/sbin/haproxy", ref, "-c", "-f", "/etc/haproxy/haproxy.cfg")
    assert "Configuration file is valid" in r.stdout + r.stderr


def _wait_health(name: str, deadline_s: float = 60) -> str:
    end = time.monotonic() + deadline_s
    status = ""
    while time.monotonic() < end:
        status = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(0.5)
    return status


def _get(port: str, path: str) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _eventually(port: str, path: str, status: int, deadline_s: float = 30) -> tuple[int, bytes]:
    end = time.monotonic() + deadline_s
    got: tuple[int, bytes] = (0, b"")
    while time.monotonic() < end:
        try:
            got = _get(port, path)
        except OSError as exc:
            got = (0, str(exc).encode())
        if got[0] == status:
            break
        time.sleep(0.5)
    return got


HARDENED = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


def test_proxy_routes_to_a_ready_api_and_holds_back_one_that_is_not(
    built: dict[str, Any], container_names: list[str]
) -> None:
    """A real api container behind the proxy, both hardened as in compose.prod.yaml.

    The api has no database here: its liveness (/health) answers, its readiness (/ready)
    does not. A proxy that checks /health routes to it; one that checks /ready (the
    stack's setting) sends it nothing and answers 503 itself.
    """
    proxy = local_ref(built["images"]["proxy"])
    api = local_ref(built["images"]["api"])
    tag = f"pipelines-test-proxy-{os.getpid()}"
    network = tag
    docker("network", "create", network)
    try:
        container_names.extend([f"{tag}-api", f"{tag}-live", f"{tag}-ready"])
        docker("run", "-d", "--name", f"{tag}-api", "--network", network, "--network-alias", "api", *HARDENED,
               "--tmpfs", "/tmp", "-e", "PGHOST=nowhere.invalid", api)  # fmt: skip
        for name, ready_path in ((f"{tag}-live", "/health"), (f"{tag}-ready", "/ready")):
            docker("run", "-d", "--name", name, "--network", network, *HARDENED, "-p", "127.0.0.1::8080",
                   "-e", f"READY_PATH={ready_path}", proxy)  # fmt: skip
        assert _wait_health(f"{tag}-api") == "healthy"
        for name in (f"{tag}-live", f"{tag}-ready"):
            status = _wait_health(name)
            logs = docker("logs", name, check=False)
            assert status == "healthy", f"{name} is {status!r}:\n{logs.stdout}{logs.stderr}"
            # Numeric non-root, effectively: the host's view of PID 1.
            top = docker("top", name, "-o", "pid,uid,comm").stdout.splitlines()[1].split()
            assert top[1] == "10080" and top[2] == "haproxy", top

        live = docker("port", f"{tag}-live", "8080").stdout.strip().rpartition(":")[2]
        status, body = _eventually(live, "/health", 200)
        assert status == 200 and json.loads(body) == {"status": "ok"}, body
        assert _get(live, "/.proxy/alive")[0] == 200

        ready = docker("port", f"{tag}-ready", "8080").stdout.strip().rpartition(":")[2]
        seen = {_get(ready, "/health")[0] for _ in range(10)}
        assert seen == {503}, seen  # the api answers /health, but it is not ready: no traffic
        assert _get(ready, "/.proxy/alive")[0] == 200

        start = time.monotonic()
        docker("stop", "--time", "10", f"{tag}-live")
        took = time.monotonic() - start
        code = docker("inspect", "--format", "{{.State.ExitCode}}", f"{tag}-live").stdout.strip()
        assert took < 2.0 and code == "0", (took, code)
    finally:
        for n in container_names:
            docker("rm", "-f", n, check=False)
        docker("network", "rm", network, check=False)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_api_drains_on_sigpwr_then_stops(built: dict[str, Any], container_names: list[str], workers: str) -> None:
    """compose.prod.yaml stops the api with SIGPWR: /ready says "draining" while it still serves, then it exits."""
    api = local_ref(built["images"]["api"])
    name = f"pipelines-test-drain-{os.getpid()}-{workers}"
    container_names.append(name)
    docker("run", "-d", "--name", name, *HARDENED, "--tmpfs", "/tmp", "-p", "127.0.0.1::8000",
           "-e", "PGHOST=nowhere.invalid", "-e", "API_DRAIN_S=2", "-e", f"API_WORKERS={workers}", api)  # fmt: skip
    assert _wait_health(name) == "healthy"
    port = docker("port", name, "8000").stdout.strip().splitlines()[0].rpartition(":")[2]
    status, body = _get(port, "/ready")
    assert status == 503 and json.loads(body)["status"] == "unavailable", body  # no database here
    start = time.monotonic()
    docker("kill", "--signal", "SIGPWR", name)
    body = b""
    while time.monotonic() - start < 1.5 and b"draining" not in body:
        status, body = _get(port, "/ready")
    assert status == 503 and json.loads(body) == {"status": "draining"}, body
    assert _get(port, "/health")[0] == 200  # still serving while it drains
    docker("wait", name, timeout=30)
    took = time.monotonic() - start
    state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
    assert 1.8 <= took <= 8.0, took  # the 2 s drain, then a shutdown of at most ~1 s (more on a busy host)
    assert state["ExitCode"] in (0, 143), state  # the SIGTERM shutdown after the drain
