"""Shared fixtures, and the two tiers of the suite, for every test path (the root conftest.py loads this plugin).

A test that needs the real Docker engine, buildx, Compose against the engine,
the local registry, the internet or root says so by what it asks for: one of
``ENGINE_FIXTURES`` below, directly or through another fixture (a fixture that
needs the engine asks for ``tools``). Collection marks every such test
``engine``; nobody marks one by hand. The unit tier (`./noxw -s unit`) is
``-m "not engine"``: it runs with the Docker socket unreachable and, in this
process, with connections beyond loopback refused (``PIPELINES_TEST_TIER=unit``).

Without the engine (or root) an engine test is skipped on a developer machine
but FAILS under CI=true: there a missing engine means the build was not proven.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from pipelines import config, lockfile, registry
from pipelines.errors import PipelineError
from pipelines.tools import Toolchain

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Data files taken from other projects live beside the repository, never in it (CI has the same folder).
SHARED_TESTDATA = ROOT.parent / "shared" / "testdata"
# The real advisory records tests read there (SOURCES.md in each folder names repository, path and commit).
GHSA_FILES = ("GHSA-jh3w-4vvf-mjgr.json", "GHSA-p44j-xrqg-4xrr.json", "GHSA-v845-jxx5-vc9f.json")
PYPA_FILES = tuple(
    f"PYSEC-{n}.yaml" for n in ("2020-341", "2020-342", "2021-45", "2023-100", "2023-192", "2023-212", "2023-73")
)


def shared_data(rel: str, names: tuple[str, ...] = ()) -> Path:
    """A data file (or a folder holding `names`) under ../shared/testdata.

    Missing: the test is skipped on a developer machine and FAILS under CI=true, naming the file, since CI has
    the folder beside the clone and a silent skip would hide a test that never ran.
    """
    path = SHARED_TESTDATA / rel
    _require_shared([path, *(path / n for n in names)], "test data file", "../shared/testdata")
    return path


def host_file(path: str | Path, why: str = "") -> Path:
    """A file of this Debian host (apt's lists, dpkg's database, a package's docs) that a test reads in place.

    Real Debian data is read where the host keeps it, never copied into the repository. Missing: the test is
    skipped on a developer machine and FAILS under CI=true, naming the file (CI is a Debian 12 host that has run
    `apt-get update`, so it has them). ``why`` says how to get the file.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"host file {p} is missing{f' ({why})' if why else ''}"
        if IN_CI:
            pytest.fail(f"CI=true and {msg}")
        pytest.skip(msg)
    return p


def _require_shared(paths: list[Path], what: str, folder: str) -> None:
    for p in paths:
        if not p.exists():
            msg = f"{what} {p} is missing (shared data folder {folder} beside the repository)"
            if IN_CI:
                pytest.fail(f"CI=true and {msg}")
            pytest.skip(msg)


# The fixtures of this file that need the engine, the registry, the internet or root: a test whose fixture closure
# holds one of them (as defined here, not a module's fixture of the same name) is an `engine` test.
ENGINE_FIXTURES = frozenset({"tools", "built", "container_names", "root", "network"})
# Set by the `unit` Nox session: this process then refuses connections beyond loopback and to a Docker socket.
UNIT_TIER = os.environ.get("PIPELINES_TEST_TIER") == "unit"


def fixtures_of(item: pytest.Item) -> dict[str, str]:
    """Every fixture ``item`` gets, directly or through other fixtures: name -> "module.function" defining it."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # not a test function (a doctest, say): it asks for no fixtures
        return {}
    found: dict[str, str] = {}
    for name in info.names_closure:
        # The last definition is the one the test gets: a module may override a name (test_lint's `tools`
        # needs only the Compose CLI), and then the test does not use this file's fixture.
        defs = info.name2fixturedefs.get(name, ())
        if defs:
            found[name] = f"{defs[-1].func.__module__}.{defs[-1].func.__qualname__}"
    return found


def engine_fixtures(item: pytest.Item) -> list[str]:
    """The engine fixtures of this file that ``item`` uses."""
    return [n for n, where in fixtures_of(item).items() if n in ENGINE_FIXTURES and where == f"{__name__}.{n}"]


# Test modules that run on one xdist worker, whole and in order (`--dist loadgroup`, see
# pytest_xdist_make_scheduler): their engine tests' module fixtures are expensive (a deploy's staging
# release, a swarm, defect images) and would otherwise be made once per worker, or they depend on their order
# in the module. Every other test (pid-named containers, Compose projects, registry repos, free ports) runs
# wherever a worker is free. Keyed by file name, wherever the module sits: names are unique in the suite
# (tests/test_tiers.py checks it, and that each name here is a collected module).
ENGINE_GROUPS = {
    # Swarm init/leave is the engine's global state; its stack, variants and manager are module fixtures.
    "test_swarm": "swarm",
    # Both push and delete cosign signatures in the one local registry, and test_deploy borrows test_signing's
    # key fixtures; the staging release (build, scan, smoke, sign) is made once.
    "test_signing": "signatures",
    "test_deploy": "signatures",
    # test_refresh_bases_... runs last in its module: it replaces the runtime base that earlier tests compare.
    "test_images": "images",
    "test_verify": "verify",
    "test_worker_poison": "worker-poison",
    "test_k8s": "k8s",
    "test_subjects": "subjects",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`, its groups read from ENGINE_GROUPS by module.

    xdist groups by an `@group` suffix it writes into `Item._nodeid`; pytest 9 keeps the id elsewhere, so
    `xdist_group` marks are silently ignored. The scheduler asks this file instead, by the test's module.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroups(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0].rpartition("/")[2].removesuffix(".py")
            group = ENGINE_GROUPS.get(module)
            return f"group:{group}" if group else str(super()._split_scope(nodeid))

    return ModuleGroups(config, log)


# First: `-m` selects on the `engine` mark this sets.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if engine_fixtures(item):
            item.add_marker(pytest.mark.engine)


_DESELECTED = pytest.StashKey[list[pytest.Item]]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED] = [*config.stash.get(_DESELECTED, []), *items]


def _row(item: pytest.Item, selected: bool) -> dict[str, Any]:
    engine = item.get_closest_marker("engine") is not None
    return {"id": item.nodeid, "selected": selected, "engine": engine, "fixtures": fixtures_of(item)}


_SELECTED = pytest.StashKey[list[pytest.Item]]()


def collection_rows(config: pytest.Config) -> list[dict[str, Any]]:
    """Each test this run collected, selected or not, with its `engine` mark and its fixtures (tests/test_tiers.py)."""
    rows = [_row(i, True) for i in config.stash.get(_SELECTED, [])]
    return rows + [_row(i, False) for i in config.stash.get(_DESELECTED, [])]


def pytest_collection_finish(session: pytest.Session) -> None:
    """With PIPELINES_TIER_REPORT set, write :func:`collection_rows` there."""
    session.config.stash[_SELECTED] = list(session.items)
    out = os.environ.get("PIPELINES_TIER_REPORT")
    if out:
        Path(out).write_text(json.dumps(collection_rows(session.config)))


def _loopback(host: object) -> bool:
    if host is None:  # a lookup for binding a listening socket
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return isinstance(host, str) and (host in ("localhost", "::1", "") or host.startswith("127."))


def _refuse_the_network(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook of the unit tier: a connection (or name lookup) beyond loopback, or to a Docker socket, fails."""
    if event == "socket.connect":
        sock, address = args
        if sock.family == socket.AF_UNIX:
            where = address.decode(errors="replace") if isinstance(address, bytes) else str(address)
            if "docker" in where:
                raise ConnectionRefusedError(f"unit tier: {where} is the engine; this test needs an engine fixture")
        elif sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise ConnectionRefusedError(f"unit tier: no network ({address[0]}:{address[1]} refused)")
    elif event == "socket.getaddrinfo" and not _loopback(args[0]):
        raise ConnectionRefusedError(f"unit tier: no network (name lookup of {args[0]!r} refused)")


if UNIT_TIER:
    sys.addaudithook(_refuse_the_network)


# Property tests try each property with its full count of examples in the full suite (CI) and a tenth of it, at
# least ten, in the unit tier, which a developer runs often. A test that sets its own count takes it from
# examples() (tests/test_tiers.py checks that none writes a bare number); the rest get the profile's count.
UNIT_EXAMPLES_SHARE = 10


def examples(n: int) -> int:
    """A property test's ``max_examples``: ``n`` in the full suite, n / UNIT_EXAMPLES_SHARE in the unit tier."""
    return max(10, n // UNIT_EXAMPLES_SHARE) if UNIT_TIER else n


hypothesis.settings.register_profile("unit", max_examples=examples(hypothesis.settings.default.max_examples))
if UNIT_TIER:
    hypothesis.settings.load_profile("unit")


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run the real `pipelines` command in a child process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_in_process(
    *args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `pipelines` command's ``main(argv)`` run in this process, as a child would see it: ``cwd``, the
    environment with ``env`` over it (its own temporary directory too), stdout and stderr captured, its exit code.

    A child costs 0.2-0.3 s of interpreter start and imports; this costs what the command does. Only for tests
    whose subject is what the command decides (messages, exit codes, reports), never the process itself
    (signals, Ctrl-C, stdin, a traceback or hang of the interpreter): those need :func:`run_cli`. Everything
    it changes is put back, and an argparse exit is an exit code, as it is for a child.
    """
    from pipelines import cli  # here: a test module that never runs the command does not import it

    kept_env, kept_cwd, kept_tempdir = dict(os.environ), Path.cwd(), tempfile.tempdir
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        tempfile.tempdir = None  # read TMPDIR again, as a child would
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors (2) and --help/--version (0)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(kept_cwd)
        os.environ.clear()
        os.environ.update(kept_env)
        tempfile.tempdir = kept_tempdir
    return subprocess.CompletedProcess([sys.executable, "-m", "pipelines", *args], code, out.getvalue(), err.getvalue())


def run_cli_outcome(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """The `pipelines` command, for a test of its outcome (exit code, messages, reports), not of its process.

    The full suite runs it as a child (:func:`run_cli`); the unit tier in this process
    (:func:`run_cli_in_process`), sparing a start of 0.2-0.5 s of CPU. A test of what only a process shows
    (signals, stdin, the interpreter's own traceback or exit) uses :func:`run_cli` in every tier.
    """
    if UNIT_TIER:
        return run_cli_in_process(*args, cwd=cwd, env=env)
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="session", autouse=True)
def _deploy_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Release history a test makes without --state goes to a directory of this run, never the host's own."""
    home = tmp_path_factory.mktemp("xdg-state")
    kept = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(home)
    try:
        yield home
    finally:
        if kept is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = kept


@pytest.fixture(scope="session", autouse=True)
def _no_config_overrides() -> Iterator[None]:
    """The tests' configs name their registries and environments: a PIPELINES_REGISTRY (or PIPELINES_ENV, ...)
    of the shell running the suite would otherwise point every test, and every `pipelines` child, elsewhere."""
    names = [n for v in config.VARIABLES for n in (v.name, *v.older)]
    kept = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(kept)


@pytest.fixture(scope="session")
def tools() -> Toolchain:
    t = Toolchain()
    try:
        t.require_build()
        t.compose_version  # noqa: B018
        registry.check(config.load(ROOT / "pipeline.toml").registry.address)
    except PipelineError as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the container toolchain is not usable:\n{exc.render()}")
        pytest.skip(f"container toolchain not usable here: {exc.what}")
    return t


@pytest.fixture(scope="session")
def cfg() -> config.Config:
    return config.load(ROOT / "pipeline.toml")


# Whoever holds several of these took them in this order (a reader of the dev build holds "dev" first), so
# no two holders ever wait for each other.
LOCK_ORDER = ("dev", "reports", "build")


class RunLocks:
    """Locks and build records shared by every process of one test run (the xdist workers and the controller).

    Engine tests run in parallel; what they share beyond their own names is the project's artifacts (the
    `latest` report links, each environment's build record) and the engine's local tags of the dev build.
    A test that changes one of these takes its lock exclusively (the `exclusive` mark, or
    :meth:`exclusive`); the tests that read the dev build hold it shared (`_dev_build_readers`).
    """

    def __init__(self, where: Path) -> None:
        self.where = where
        where.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[None]:
        with (self.where / f"{name}.lock").open("a") as f:
            fcntl.flock(f, mode)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self, *names: str) -> Iterator[None]:
        """Nothing else of this run holds any of ``names``, taken in LOCK_ORDER, so two holders never deadlock."""
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names), key=LOCK_ORDER.index):
                # Writers first: a writer waiting at the turnstile keeps new readers out, so a steady stream
                # of readers on the other workers cannot starve it.
                with self._flock(f"{name}.turnstile", fcntl.LOCK_EX):
                    stack.enter_context(self._flock(name, fcntl.LOCK_EX))
            yield

    @contextlib.contextmanager
    def shared(self, name: str) -> Iterator[None]:
        with self._flock(f"{name}.turnstile", fcntl.LOCK_EX):
            pass
        with self._flock(name, fcntl.LOCK_SH):
            yield

    def once(self, key: str, lock: str, make: Callable[[], tuple[bool, str]]) -> str:
        """``make``'s text, made by the first caller of this run under ``lock`` and read back by every later one.

        ``make`` says whether it worked; a failure is kept too, so the other workers fail at once with its
        message instead of each trying again for as long.
        """
        with self.exclusive(lock):
            done, failed = self.where / f"{key}.done", self.where / f"{key}.failed"
            if failed.exists():
                pytest.fail(f"{key} failed earlier in this run:\n{failed.read_text()}")
            if not done.exists():
                ok, text = make()
                (done if ok else failed).write_text(text)
                if not ok:
                    pytest.fail(f"{key} failed:\n{text}")
            return done.read_text()

    def build(self, cfg: config.Config, env: str) -> dict[str, Any]:
        """``env`` built with the real CLI once per run and content: every later caller gets that build's record.

        Keyed by the build's inputs as they are now (a test that refreshes a base changes the lock), so a
        caller after such a change builds again instead of reading a stale record. One build at a time,
        whatever the environment: they share the base lock and the builder.
        """

        def make() -> tuple[bool, str]:
            r = run_cli("build", "--env", env)
            if r.returncode != 0:
                return False, f"pipelines build --env {env} exited {r.returncode}:\n{r.stderr[-6000:]}"
            return True, (cfg.project.artifacts / "build" / f"{env}.json").read_text()

        record: dict[str, Any] = json.loads(self.once(f"build-{env}-{build_inputs_digest(cfg)[:16]}", "build", make))
        return record


def build_inputs_digest(cfg: config.Config) -> str:
    """What a build reads from the tree: the config, the base and package locks, the images' and services' files.

    Their own tests are not among them: each build context's .dockerignore keeps its tests/ out.
    """
    h = hashlib.sha256()
    files = [ROOT / "pipeline.toml", cfg.project.lock, lockfile.packages_path(cfg.project.lock)]
    for folder in ("images", "services", "compose", "pipelines/golden"):
        top = ROOT / folder
        files += sorted(
            p for p in top.rglob("*") if p.is_file() and not {"__pycache__", "tests"} & set(p.relative_to(top).parts)
        )
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0")
        h.update(f.read_bytes() if f.exists() else b"(none)")
        h.update(b"\0")
    return h.hexdigest()


@pytest.fixture(scope="session")
def locks(tmp_path_factory: pytest.TempPathFactory) -> RunLocks:
    base = tmp_path_factory.getbasetemp()
    # Each xdist worker has a base directory of its own inside the run's: the run's is the one they share.
    return RunLocks((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "run-locks")


@pytest.fixture(scope="session")
def built(tools: Toolchain, cfg: config.Config, locks: RunLocks) -> dict[str, Any]:
    """Build everything for `dev` with the real CLI, once per test run (whatever the number of workers)."""
    with locks.shared("dev"):
        manifest = locks.build(cfg, "dev")
    assert set(manifest["images"]) == set(cfg.images)
    return manifest


@pytest.fixture(autouse=True)
def _dev_build_readers(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that reads the dev build holds it shared; one marked `exclusive` holds what it names alone."""
    mark = request.node.get_closest_marker("exclusive")
    if mark is None and "built" not in request.fixturenames:
        yield
        return
    run_locks: RunLocks = request.getfixturevalue("locks")
    names = set(mark.args) if mark is not None else set()
    with contextlib.ExitStack() as stack:
        # "dev" before any other name, always: the one order every holder takes them in.
        if "built" in request.fixturenames and "dev" not in names:
            stack.enter_context(run_locks.shared("dev"))
        if names:
            stack.enter_context(run_locks.exclusive(*names))
        yield


def compose_toolchain() -> Toolchain:
    """A Toolchain whose `docker compose` works: rendering Compose files needs the CLI, not the engine.

    Missing, it is a failure under CI=true and a skip elsewhere (a unit-tier run on a machine without it).
    """
    t = Toolchain()
    try:
        t.compose_version  # noqa: B018
    except Exception as exc:  # any failure to find compose is reported below
        if IN_CI:
            pytest.fail(f"CI=true and docker compose is not usable: {exc}")
        pytest.skip(f"docker compose not usable: {exc}")
    return t


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="session")
def root() -> None:
    """The test runs something only root may (debootstrap): an `engine`-tier test, never a unit one."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true and the tests do not run as root (the engine tier needs root)")
        pytest.skip("needs root")


@pytest.fixture(scope="session")
def network() -> None:
    """The test reaches the internet (Debian's archive, say): an `engine`-tier test, never a unit one."""


@pytest.fixture
def container_names() -> Iterator[list[str]]:
    """Names of containers a test starts; removed afterwards whatever happened."""
    names: list[str] = []
    yield names
    for n in names:
        docker("rm", "-f", "-v", n, check=False)


def osv_dir(feed: str) -> Path:
    """A folder of OSV test records: `ghsa` and `pypa` (real records, shared) or `debian` (constructed, here)."""
    if feed == "ghsa":
        return shared_data("osv/ghsa", GHSA_FILES)
    if feed == "pypa":
        return shared_data("osv/pypa-3ccb612573e2", PYPA_FILES)
    return ROOT / "tests" / "data" / "osv" / feed


def shared_advisories() -> Path:
    """The PyPA advisory database snapshot the project's scan builds its offline DB from (../shared/advisories)."""
    path = ROOT.parent / "shared" / "advisories" / "pypa-advisory-database"
    _require_shared([path / "vulns", path.parent / "README.md"], "advisory data", "../shared/advisories")
    return path
