"""Deploy: the gate, the history, the rolling Compose engine, rollback, Ctrl-C and the lock.

The engine tests use the real engine, Compose, cosign and the local registry:
staging is built and pushed, scanned and smoke-tested for real (verdicts the
gate reads; verify's is recorded), signed with a key pair made in a temporary directory,
then deployed under Compose project names of this test run into a temporary
state directory. The api publishes an ephemeral host port
(API_PORT=""), so these stacks collide with nothing. Every container, network
and volume of those projects is removed afterwards.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines import compose_model, config, deploy, manifest, verdicts
from pipelines import cosign as signing  # `cosign` is test_signing's fixture (the binary), imported below
from pipelines.composestack import leftovers
from pipelines.deploy import plan, releases
from pipelines.errors import ConfigError, InputError
from tests.config.test_config import GOOD, project
from tests.harness import ROOT, RunLocks, docker, run_cli, run_cli_outcome
from tests.test_signing import (  # noqa: F401 - cosign, home, keys, pushed_image: fixtures reused
    OTHER_PASSWORD,
    PASSWORD,
    cosign,
    delete_cosign_tags,
    home,
    keys,
    offline_env,
    pushed_image,
)

RECORDED = ROOT / "tests" / "data" / "recorded" / "deploy" / "staging.compose.json"


# ---- unit: durations, deadlines, roles -----------------------------------------------------------


@given(
    h=st.integers(0, 3), m=st.integers(0, 59), s=st.integers(0, 59), ms=st.integers(0, 999)
)  # fmt: skip
def test_compose_durations_parse_as_go_writes_them(h: int, m: int, s: int, ms: int) -> None:
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + f"{s}s" + (f"{ms}ms" if ms else "")
    assert plan.parse_duration(text, where="x") == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


@pytest.mark.parametrize("bad", ["", "10", "s", "10 s", "1x", "-1s", "1s2", True])
def test_bad_durations_are_named(bad: object) -> None:
    if bad == "10":
        assert plan.parse_duration(10, where="x") == 10.0  # a bare number is seconds
        return
    with pytest.raises(InputError, match=r"services\.api\.healthcheck\.interval"):
        plan.parse_duration(bad, where="services.api.healthcheck.interval")


@given(
    interval=st.floats(0.1, 120),
    timeout=st.floats(0.1, 120),
    retries=st.integers(1, 20),
    start=st.floats(0, 600),
    floor=st.floats(0, 3600),
)
def test_gate_deadline_is_never_shorter_than_the_healthcheck_or_the_floor(
    interval: float, timeout: float, retries: int, start: float, floor: float
) -> None:
    h = plan.Health(interval=interval, timeout=timeout, retries=retries, start_period=start)
    d = h.deadline(floor)
    assert d >= start + interval * retries + timeout - 1e-6
    assert d >= floor - 1e-6
    # The floor only ever lengthens it.
    assert h.deadline(0.0) <= d + 1e-6


def test_healthcheck_defaults_are_dockers_and_disable_means_none() -> None:
    def health(spec: dict[str, Any]) -> plan.Health | None:
        return plan.health_of(compose_model.Healthcheck.parse(spec, source="x", path="healthcheck"), where="x")

    assert health({"test": ["CMD", "true"]}) == plan.Health(30.0, 30.0, 3, 0.0)
    assert health({"test": ["CMD", "true"], "interval": "2s", "retries": 5}) == plan.Health(2.0, 30.0, 5, 0.0)
    assert health({"disable": True}) is None
    assert health({"test": ["NONE"]}) is None
    assert plan.health_of(None, where="x") is None


@pytest.mark.parametrize(
    ("ref", "repo"),
    [
        ("127.0.0.1:5000/pipelines/api:git-abc", "127.0.0.1:5000/pipelines/api"),
        ("127.0.0.1:5000/pipelines/api", "127.0.0.1:5000/pipelines/api"),
        ("127.0.0.1:5000/pipelines/api@sha256:" + "a" * 64, "127.0.0.1:5000/pipelines/api"),
        ("registry.example:443/team/worker:1.2@sha256:" + "b" * 64, "registry.example:443/team/worker"),
        ("postgres:16", "postgres"),
    ],
)
def test_services_map_to_built_images_by_repository(ref: str, repo: str) -> None:
    assert plan.repository(ref) == repo
    assert plan.image_name(ref) == repo.rsplit("/", 1)[-1]


def _recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def _parsed(data: dict[str, Any]) -> compose_model.Project:
    return compose_model.parse(data, source="recorded")


def test_roles_come_from_the_compose_file_alone() -> None:
    config_ = _recorded()
    services = plan.services_of(_parsed(config_), stateful=(), floor=0.0, image_health={}, source="recorded")
    by = {s.name: s for s in services}
    order = [s.name for s in services]
    # Dependencies first: whatever the file's order, a service comes after what it depends on.
    for s in services:
        assert all(order.index(d) < order.index(s.name) for d in s.depends), order
    one_shots = {s.name for s in services if s.one_shot}
    waited = {
        d
        for spec in config_["services"].values()
        for d, c in (spec.get("depends_on") or {}).items()
        if c.get("condition") == "service_completed_successfully"
    }
    assert one_shots == waited and one_shots
    with_volumes = {
        n
        for n, spec in config_["services"].items()
        if any(v.get("type") == "volume" for v in spec.get("volumes") or [])
    }
    assert {s.name for s in services if s.stateful} == with_volumes - one_shots
    # An ephemeral published port (API_PORT="") can run twice: no fixed host port.
    assert all(not s.fixed_ports for s in services)
    for s in services:
        hc = config_["services"][s.name].get("healthcheck")
        if hc:
            assert s.health is not None
            own = (
                plan.parse_duration(hc["start_period"], where="")
                + plan.parse_duration(hc["interval"], where="") * hc["retries"]
                + plan.parse_duration(hc["timeout"], where="")
            )
            assert s.deadline >= own
        assert s.image.split("@")[1].startswith("sha256:")
        assert s.built == s.image.split("@")[0].rsplit("/", 1)[1]
    # Listed in [deploy].stateful: stateful whatever its volumes; a fixed host port is seen.
    stateless = next(s.name for s in services if not s.stateful and not s.one_shot)
    config_["services"][stateless]["ports"] = [{"target": 8000, "published": "8000", "host_ip": "127.0.0.1"}]
    marked = plan.services_of(_parsed(config_), stateful=(stateless,), floor=0, image_health={}, source="r")
    again = {s.name: s for s in marked}
    assert again[stateless].stateful == "[deploy].stateful"
    assert again[stateless].fixed_ports == ("8000",)
    with pytest.raises(InputError, match="nosuch"):
        plan.services_of(_parsed(config_), stateful=("nosuch",), floor=0, image_health={}, source="r")
    # A rolled service without any healthcheck cannot be judged: refused at plan time, naming it.
    del config_["services"][stateless]["healthcheck"]
    bare = plan.services_of(_parsed(config_), stateful=(), floor=0, image_health={}, source="recorded")
    with pytest.raises(InputError, match=f"service '{stateless}' has no healthcheck"):
        plan.require_health(bare, (), "recorded")
    assert by  # the original plan had every service


def test_the_release_file_is_the_render_byte_for_byte(tmp_path: Path) -> None:
    """Parsed once into records, the render is still written as Compose printed it: its hash is signed."""
    rendered = plan.Rendered.parse(_recorded(), source="recorded")
    file, digest = plan.write_release_file(tmp_path, rendered)
    assert file.read_bytes() == RECORDED.read_bytes()  # the recorded file is one a deploy wrote
    assert digest == hashlib.sha256(RECORDED.read_bytes()).hexdigest()
    assert plan.Rendered.parse(json.loads(file.read_text()), source="again") == rendered


def test_a_kept_stateful_service_is_the_live_release_s_in_json_and_records(tmp_path: Path) -> None:
    from pipelines.deploy import compose_engine

    live = _recorded()
    wanted = _recorded()
    for name in ("db", API):
        wanted["services"][name]["image"] = wanted["services"][name]["image"].replace("sha256:", "sha256:f", 1)[:-1]
    old, new = plan.Rendered.parse(live, source="live"), plan.Rendered.parse(wanted, source="new")
    assert old.spec("db") != new.spec("db") and old.spec("nosuch") == new.spec("nosuch") == {}
    kept = new.keeping(old, ["db"])
    # What parsing the file with the live spec put in would give, without parsing it again.
    assert kept == plan.Rendered.parse({**wanted, "services": {**wanted["services"], "db": live["services"]["db"]}},
                                       source="kept")  # fmt: skip
    assert kept.spec("db") == old.spec("db") and kept.spec(API) == new.spec(API)
    assert new.keeping(old, []) is new

    def deployment(config: plan.Rendered) -> plan.Deployment:
        services = plan.services_of(config.project, stateful=(), floor=0.0, image_health={}, source="test")
        return plan.Deployment("staging", "p", tmp_path, tmp_path / "compose.json", config, services, "")

    before, after = deployment(old), deployment(kept)
    assert [n for n in kept.project.services if compose_engine.changed(after, before, n)] == [API]
    assert compose_engine.changed(after, None, "db") and not compose_engine.changed(after, before, "nosuch")


# ---- unit: history and lock ----------------------------------------------------------------------


def _release(rid: str, status: str = "live", env: str = "staging") -> releases.Release:
    return releases.Release(
        id=rid, env=env, at=releases.now(), commit="c" * 40, engine="compose", project="p",
        images={"api": "r/api@sha256:" + "a" * 64}, refs={"api": "r/api@sha256:" + "a" * 64},
        image_ids={"api": "sha256:" + "b" * 64}, config_hash="0" * 64, verdicts={"scan": "t"},
        who="me@host", status=status,  # type: ignore[arg-type]
    )  # fmt: skip


@given(st.lists(st.sampled_from(["deploy-ok", "deploy-failed"]), max_size=12))
def test_history_ids_grow_and_exactly_one_release_serves(events: list[str]) -> None:
    h = releases.History(env="staging")
    for e in events:
        r = _release(h.next_id(), "deploying")
        h.releases.append(r)
        if e == "deploy-ok":
            h.make_live(r.id)
        else:
            r.status = "failed"
    numbers = [r.number for r in h.releases]
    assert numbers == list(range(1, len(events) + 1))
    assert sum(r.status == "live" for r in h.releases) == (1 if "deploy-ok" in events else 0)
    oks = [r for r in h.releases if r.status in ("live", "superseded")]
    if len(oks) >= 2:
        assert h.previous_live() == oks[-2]
    else:
        assert h.previous_live() is None


def test_a_release_whose_deploy_died_is_marked_interrupted_by_the_next() -> None:
    from pipelines.deploy import _close_stale

    h = releases.History(env="staging", releases=[_release("r1"), _release("r2", "deploying")])
    _close_stale(h)
    assert [(r.id, r.status) for r in h.releases] == [("r1", "live"), ("r2", "interrupted")]
    assert "died" in h.releases[1].notes[0]


def test_store_round_trips_and_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    store = releases.Store(tmp_path)
    assert store.load("staging").releases == []
    h = releases.History(env="staging", releases=[_release("r1", "superseded"), _release("r2")])
    store.save(h)
    assert store.load("staging") == h
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    store.path("prod").write_text(store.path("staging").read_text())
    with pytest.raises(InputError, match="not 'prod'"):
        store.load("prod")
    bad = h.model_dump()
    bad["releases"][0]["status"] = "live"
    store.path("staging").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="more than one release is marked live"):
        store.load("staging")
    bad["releases"][0]["status"] = "sideways"
    store.path("staging").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"releases\.0\.status"):
        store.load("staging")
    store.path("staging").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        store.load("staging")


def test_lock_serialises_and_names_its_holder_when_the_wait_runs_out(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with releases.locked(tmp_path, "staging", wait_s=5):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(5)
    with (
        pytest.raises(releases.LockTimeout, match="still holds") as exc,
        releases.locked(tmp_path, "staging", wait_s=0.4),
    ):
        pass
    assert f"pid {os.getpid()}" in (exc.value.seen or "")
    threading.Timer(1.0, release.set).start()
    start = time.monotonic()
    with releases.locked(tmp_path, "staging", wait_s=10) as waited:
        assert waited >= 0.8
        assert time.monotonic() - start >= 0.8
    t.join()
    # Another environment has its own lock: no waiting.
    with releases.locked(tmp_path, "staging", wait_s=0) as w1, releases.locked(tmp_path, "prod", wait_s=0) as w2:
        assert w1 == 0 and w2 == 0


# ---- unit: what a deploy is bound to -------------------------------------------------------------

COMMIT = "a1" * 20
OTHER = "b2" * 20


def _demo(tmp_path: Path, *, commit: str = COMMIT, dirty: bool = False) -> tuple[Path, list[str], dict[str, str]]:
    """A project whose prod build is recorded (pushed, by digest), and the deploy flags its key needs.

    Nothing is signed or scanned: what these tests show is refused (or passed) before any of that.
    """
    proj = project(tmp_path / "proj", GOOD)
    cfg_ = config.load(proj)
    web = manifest.BuiltImage(
        name="web", kind="service", ref="127.0.0.1:5000/demo/web@sha256:" + "1" * 64, tags=("prod",),
        image_id="sha256:" + "2" * 64, digest="sha256:" + "1" * 64, seconds=1.0, pushed=True,
    )  # fmt: skip
    manifest.save(
        cfg_.project.artifacts,
        manifest.BuildRecord(
            env="prod",
            commit=commit,
            dirty=dirty,
            builder="b",
            cache="none",
            started=releases.now(),
            seconds=1.0,
            images={"web": web},
        ),
    )
    keys_ = tmp_path / "keys"
    keys_.mkdir()
    (keys_ / "cosign.key").write_text("not used: refused before anything is signed\n")
    (keys_ / "cosign.pub").write_text("not used\n")
    flags = ["--key", str(keys_ / "cosign.key"), "--public-key", str(keys_ / "cosign.pub")]
    return proj, flags, {"COSIGN_PASSWORD": "unused"}


def test_expect_commit_refuses_a_release_of_another_commit_naming_both(tmp_path: Path) -> None:
    proj, flags, env = _demo(tmp_path)
    state = tmp_path / "state"
    base = ["--config", str(proj), "deploy", "--env", "prod", "--state", str(state), *flags]
    r = run_cli_outcome(*base, "--expect-commit", OTHER, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert COMMIT in r.stderr and OTHER in r.stderr and "refusing to deploy 'prod'" in r.stderr, r.stderr
    assert not (state / "prod.json").exists()
    # The same commit (in any case): the deploy goes on to its next gate, the verdicts of this build.
    r = run_cli_outcome(*base, "--expect-commit", COMMIT.upper(), env=env)
    assert r.returncode == 1 and "scan: never ran on this build" in r.stderr, r.stderr
    assert "expected commit" not in r.stderr
    # A prefix, or anything but a full commit id, is not an approval: exit 2 before anything is read.
    for bad in (COMMIT[:12], "main", ""):
        r = run_cli_outcome(*base, "--expect-commit", bad, env=env)
        assert r.returncode == 2 and "is not a full commit id" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_expect_commit_never_matches_a_build_of_a_dirty_tree(tmp_path: Path) -> None:
    proj, flags, env = _demo(tmp_path, dirty=True)
    r = run_cli_outcome("--config", str(proj), "deploy", "--env", "prod", "--state", str(tmp_path / "state"), *flags,
                "--expect-commit", COMMIT, env=env)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert f"{COMMIT}-dirty" in r.stderr and "a build of a dirty tree never matches" in r.stderr


def test_a_deploy_without_the_key_that_signs_its_record_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proj, flags, env = _demo(tmp_path)
    state = tmp_path / "state"
    base = ["--config", str(proj), "deploy", "--env", "prod", "--state", str(state)]
    cases = [
        ([], env, "[signing].key is not set and no --key given: a deploy signs its release record"),
        (["--key", str(tmp_path / "nosuch.key")], env, "nosuch.key does not exist"),
        (["--key", str(proj.parent / "cosign.key")], env, "is inside the project tree"),
        (flags, {"COSIGN_PASSWORD": ""}, None),  # an empty password is a password; refused later, by the gate
        (["--key", "env://PLTEST_NO_SUCH_KEY"], env, "$PLTEST_NO_SUCH_KEY is not set"),
    ]
    for extra, environ, message in cases:
        r = run_cli_outcome(*base, *extra, env=environ)
        if message is None:
            assert r.returncode == 1 and "scan: never ran on this build" in r.stderr, r.stderr
            continue
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    assert not (state / "prod.json").exists()


def _stderr_until(p: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """stderr lines of ``p`` up to the one containing ``needle`` (the test fails if it never comes)."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            if needle in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout):
        p.kill()
        pytest.fail(f"{needle!r} never came; stderr so far:\n{''.join(lines)[-3000:]}")
    return lines


def test_a_deploy_that_waited_for_the_lock_does_not_undo_a_rollback_made_meanwhile(tmp_path: Path) -> None:
    proj, flags, env = _demo(tmp_path)
    state = tmp_path / "state"
    store = releases.Store(state)
    store.save(
        releases.History(env="prod", releases=[_release("r1", "superseded", "prod"), _release("r2", "live", "prod")])
    )
    argv = [sys.executable, "-m", "pipelines", "--config", str(proj), "deploy", "--env", "prod", "--state", str(state)]
    with releases.locked(state, "prod", wait_s=5):
        p = subprocess.Popen(
            [*argv, *flags, "--wait", "120"], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            seen = _stderr_until(p, "waiting for the lock of 'prod'", timeout=60)
            # While it waits: r2 is rolled back to r1, as `pipelines rollback` records it (it holds this lock).
            h = store.load("prod")
            h.make_live("r1")
            r2 = h.get("r2")
            assert r2 is not None
            r2.status, r2.rolled_back_to = "rolled-back", "r1"
            store.save(h)
        except BaseException:
            p.kill()
            raise
    out, err = p.communicate(timeout=120)
    err = "".join(seen) + err
    assert p.returncode == 1, out[-2000:] + err[-3000:]
    assert "refusing to deploy 'prod': it was rolled back from r2 to r1 while this deploy waited" in err, err
    h = store.load("prod")
    assert [(r.id, r.status) for r in h.releases] == [("r1", "live"), ("r2", "rolled-back")]


# ---- signed release records ----------------------------------------------------------------------


def _release_file(release_dir: Path, compose: dict[str, Any]) -> tuple[Path, str]:
    return plan.write_release_file(release_dir, plan.Rendered.parse(compose, source="test"))


def _sealed(store: releases.Store, private: Path, rid: str, status: str, compose: dict[str, Any]) -> releases.Release:
    """A release recorded as a deploy records it: its Compose file, its hash, its signed statement."""
    store.release_dir("staging", rid).mkdir(parents=True)
    _, digest = _release_file(store.release_dir("staging", rid), compose)
    r = _release(rid, status)
    r.project, r.config_hash, r.refs, r.image_ids, r.images = f"pltest-sealed-{os.getpid()}", digest, {}, {}, {}
    store.seal(r, str(private), PASSWORD)
    return r


def test_a_release_record_changed_together_with_its_hash_is_refused(
    tmp_path: Path,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
) -> None:
    store = releases.Store(tmp_path / "state")
    ours, theirs = keys["ours"], keys["theirs"]
    pub = str(ours.public)
    empty: dict[str, Any] = {"services": {}}
    store.save(releases.History(env="staging", releases=[
        _sealed(store, ours.private, "r1", "superseded", empty), _sealed(store, ours.private, "r2", "live", empty),
    ]))  # fmt: skip
    target = store.load("staging").get("r1")
    assert target is not None
    _, loaded = plan.load_release(store, "staging", target, pub)
    assert compose_model.thaw(loaded.data) == empty  # as the deploy wrote it: trusted
    # Whoever can write the state directory changes the Compose file and the hash ENV.json keeps for it.
    evil = {"services": {"x": {"image": "127.0.0.1:5000/pltest/none@sha256:" + "0" * 64, "privileged": True}}}
    _, forged = _release_file(store.release_dir("staging", "r1"), evil)
    h = store.load("staging")
    rec = h.get("r1")
    assert rec is not None
    rec.config_hash = forged
    store.save(h)
    with pytest.raises(releases.RecordNotTrusted, match=r"differs from its signed statement .* in config_hash"):
        plan.load_release(store, "staging", rec, pub)
    r = run_cli("rollback", "--env", "staging", "--state", str(store.state), "--to", "r1", "--public-key", pub,
                env=offline_env(home))  # fmt: skip
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
    assert "release r1 of 'staging' is not trusted" in r.stderr and "config_hash" in r.stderr, r.stderr
    assert store.load("staging").live() == store.load("staging").get("r2")  # nothing moved
    # ... and the signed statement beside them too: its signature no longer verifies.
    stmt = store.statement_file("staging", "r1")
    data = json.loads(stmt.read_text())
    data["config_hash"] = forged
    stmt.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    with pytest.raises(releases.RecordNotTrusted, match="its signature does not verify"):
        plan.load_release(store, "staging", rec, pub)
    # ... or signed again with a key of their own; or the signature removed.
    store.seal(rec, str(theirs.private), OTHER_PASSWORD)
    with pytest.raises(releases.RecordNotTrusted, match="its signature does not verify"):
        plan.load_release(store, "staging", rec, pub)
    stmt.with_name("release.json.sig").unlink()
    with pytest.raises(releases.RecordNotTrusted, match="is not signed"):
        plan.load_release(store, "staging", rec, pub)


def test_a_compose_file_changed_behind_its_sealed_hash_is_not_trusted(
    tmp_path: Path,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
) -> None:
    store = releases.Store(tmp_path / "state")
    pub = str(keys["ours"].public)
    empty: dict[str, Any] = {"services": {}}
    store.save(releases.History(env="staging", releases=[
        _sealed(store, keys["ours"].private, "r1", "superseded", empty),
        _sealed(store, keys["ours"].private, "r2", "live", empty),
    ]))  # fmt: skip
    target = store.load("staging").get("r1")
    assert target is not None
    assert compose_model.thaw(plan.load_release(store, "staging", target, pub)[1].data) == empty
    # Only the Compose file changes: the history and its signed statement still say the hash the deploy wrote.
    evil = {"services": {"x": {"image": "127.0.0.1:5000/pltest/none@sha256:" + "0" * 64, "privileged": True}}}
    file, _ = _release_file(store.release_dir("staging", "r1"), evil)
    # The same refusal as a tampered record: the state is not trusted (exit 1), not "could not run" (exit 2).
    with pytest.raises(releases.RecordNotTrusted, match="does not match the hash recorded for release r1") as exc:
        plan.load_release(store, "staging", target, pub)
    assert exc.value.exit_code == 1 and str(file) in exc.value.what
    r = run_cli("rollback", "--env", "staging", "--state", str(store.state), "--to", "r1", "--public-key", pub,
                env=offline_env(home))  # fmt: skip
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
    assert "does not match the hash recorded for release r1" in r.stderr, r.stderr
    assert store.load("staging").live() == store.load("staging").get("r2")  # nothing moved


def test_rollback_verifies_every_image_its_compose_file_runs_not_only_its_refs(
    tmp_path: Path,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
    pushed_image: str,  # noqa: F811 - test_signing's fixture
    cfg: config.Config,
) -> None:
    from dataclasses import replace

    store = releases.Store(tmp_path / "state")
    ours = keys["ours"]
    # r1 runs an image its refs do not name (as a stateful service kept from an earlier release does).
    compose = {"services": {"store": {"image": pushed_image}}}
    store.save(releases.History(env="staging", releases=[
        _sealed(store, ours.private, "r1", "superseded", compose),
        _sealed(store, ours.private, "r2", "live", {"services": {}}),
    ]))  # fmt: skip
    r = run_cli("rollback", "--env", "staging", "--state", str(store.state), "--to", "r1",
                "--public-key", str(ours.public), env=offline_env(home))  # fmt: skip
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
    assert "refusing to restore r1 on 'staging'" in r.stderr and pushed_image in r.stderr, r.stderr
    assert "not signed" in r.stderr
    assert store.load("staging").live() == store.load("staging").get("r2")
    # Signed with our key, the same image passes the signature check (attestations aside) ...
    signing.sign(pushed_image, ours.private, PASSWORD)
    bare = replace(cfg, signing=replace(cfg.signing, attest=False))
    checks = plan.verify_release(bare, {}, {}, str(ours.public), refusing="r1", config=_parsed(compose))
    assert [(c.name, c.ok) for c in checks] == [("signature", True)] and "store" in checks[0].group
    # ... and with attestations required it still needs its attested scan verdict and SBOM, for an image ID
    # the history knows.
    with pytest.raises(signing.SignatureError, match="refusing r1") as exc:
        plan.verify_release(cfg, {}, {}, str(ours.public), refusing="refusing r1", config=_parsed(compose))
    assert "cannot be matched to an image ID" in (exc.value.seen or ""), exc.value.seen


# ---- unit: config --------------------------------------------------------------------------------


def _parse(mutate: Any) -> config.Config:
    data = tomllib.loads((ROOT / "pipeline.toml").read_text())
    mutate(data)
    return config.parse(data, ROOT / "pipeline.toml")


def test_deploy_config_and_promotion_are_validated() -> None:
    cfg = _parse(lambda d: None)
    assert cfg.env("prod").promote_from == "staging"
    assert cfg.deploy.state == config.default_state(cfg.project.name)
    cases: list[tuple[Any, str]] = [
        (lambda d: d["deploy"].update(state="artifacts/deploy"), "deploy.state: .*disposable"),
        (lambda d: d["deploy"].update(lock_wait=-1), "deploy.lock_wait: must be"),
        (lambda d: d["deploy"].update(stateful=["db", "db"]), r"deploy.stateful\[1\]"),
        (lambda d: d["deploy"].update(gate_deadlines=5), "deploy.gate_deadlines: unknown key"),
        (lambda d: d["environments"]["prod"].update(promote_from="qa"), "prod.promote_from: names unknown"),
        (lambda d: d["environments"]["staging"].update(promote_from="prod"), "in a circle"),
        (lambda d: d["environments"]["prod"].update(promote_from="prod"), "in a circle"),
    ]
    for mutate, message in cases:
        with pytest.raises(ConfigError, match=message):
            _parse(mutate)


def test_promotion_refuses_images_outside_the_targets_registry() -> None:
    digest = "sha256:" + "a" * 64
    live = {"api": f"127.0.0.1:5000/pipelines/api@{digest}", "proxy": f"127.0.0.1:5000/pipelines/proxy@{digest}"}
    plan.require_same_registry(_parse(lambda d: None), "prod", "staging", "r3", live)
    # staging went live from 127.0.0.1:5000; this run points prod elsewhere: prod would pull from staging's.
    data = tomllib.loads((ROOT / "pipeline.toml").read_text())
    moved = config.parse(data, ROOT / "pipeline.toml", {"PIPELINES_REGISTRY": "registry.example.com"})
    with pytest.raises(InputError) as err:
        plan.require_same_registry(moved, "prod", "staging", "r3", live)
    assert err.value.exit_code == 2
    assert err.value.what == (
        "refusing to promote staging r3 to 'prod': its images are not in the registry of 'prod' "
        "(registry.example.com/pipelines), and promotion copies no image between registries"
    )
    assert err.value.seen == "\n".join(f"{n}: {r}" for n, r in sorted(live.items()))
    assert "PIPELINES_REGISTRY" in (err.value.hint or "")


def test_a_deploy_renders_compose_with_its_environments_registry(tmp_path: Path) -> None:
    from pipelines.result import Context
    from pipelines.tools import Toolchain
    from tests.config.test_config import OWN_REGISTRY

    ctx = Context(config.load(project(tmp_path, OWN_REGISTRY), {}), Toolchain(), environ={})
    prod = plan._compose_env(ctx, "prod", tmp_path / "secrets", "git-0123-prod")
    assert (prod["REGISTRY"], prod["NAMESPACE"]) == ("registry.example.com:5443", "apps")
    dev = plan._compose_env(ctx, "dev", tmp_path / "secrets", "git-0123-dev")
    assert (dev["REGISTRY"], dev["NAMESPACE"]) == ("127.0.0.1:5000", "demo")


def test_release_history_lives_outside_the_project_tree_by_default(tmp_path: Path) -> None:
    cfg_ = _parse(lambda d: None)
    state = cfg_.deploy.state
    # A checkout's clean wipes the project tree (and the change under review can write it): never there.
    assert not state.is_relative_to(ROOT) and state.is_absolute()
    assert state == Path(os.environ["XDG_STATE_HOME"]) / "pipelines" / cfg_.project.name  # conftest isolates it
    assert config.default_state("my app", {"XDG_STATE_HOME": "/srv/state"}) == Path("/srv/state/pipelines/my-app")
    bare = config.default_state("demo", {"HOME": "/home/ci"})
    assert bare == (
        Path("/var/lib/pipelines/demo") if os.geteuid() == 0 else Path("/home/ci/.local/state/pipelines/demo")
    )
    assert config.default_state("demo", {"XDG_STATE_HOME": "relative", "HOME": "/h"}) in (
        Path("/var/lib/pipelines/demo"), Path("/h/.local/state/pipelines/demo")
    )  # fmt: skip
    # Configurable, outside the tree; the old default inside it is refused, naming the key.
    outside = tmp_path / "history"
    assert _parse(lambda d: d["deploy"].update(state=str(outside))).deploy.state == outside.resolve()
    for inside in (".deploy", str(ROOT / "state"), "services/../.deploy"):
        with pytest.raises(ConfigError, match=r"deploy.state: .* is inside the project tree"):
            _parse(lambda d, v=inside: d["deploy"].update(state=v))  # type: ignore[misc]


def test_readiness_config_is_read_and_bad_values_are_named(tmp_path: Path) -> None:
    ready = _parse(lambda d: None).deploy.readiness[API]
    assert (ready.service, ready.port, ready.path, ready.status, dict(ready.json)) == (
        API, 8000, "/ready", 200, {"status": "ready"}
    )  # fmt: skip
    key = f"deploy.readiness.{API}"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"port": 0}, rf"{key}\.port: must be from 1 to 65535"),
        ({"port": 70000}, rf"{key}\.port: must be from 1 to 65535"),
        ({"port": "8000"}, rf"{key}\.port: expected an integer"),
        ({"path": "ready"}, rf"{key}\.path: 'ready' is not a URL path"),
        ({"path": "/re ady"}, rf"{key}\.path: .* is not a URL path"),
        ({"status": 99}, rf"{key}\.status: must be from 100 to 599"),
        ({"json": {"status": ["ready"]}}, rf"{key}\.json\.status: expected a string, number or boolean"),
        ({"timeout": 0}, rf"{key}\.timeout: must be more than 0"),
        ({"paht": "/ready"}, rf"{key}\.paht: unknown key"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message):
            _parse(lambda d, c=change: d["deploy"]["readiness"][API].update(c))  # type: ignore[misc]
    with pytest.raises(ConfigError, match=rf"{key}\.path: is required"):
        _parse(lambda d: d["deploy"]["readiness"][API].pop("path"))
    # Through the command: exit 2, the key named, no traceback.
    bad = project(tmp_path, GOOD + '\n[deploy.readiness.web]\nport = 8000\npath = "ready"\n')
    r = run_cli_outcome("--config", str(bad), "releases", "--env", "prod", "--state", str(tmp_path / "state"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "deploy.readiness.web.path" in r.stderr and "not a URL path" in r.stderr and "Traceback" not in r.stderr


def test_readiness_and_fixed_names_are_checked_at_plan_time() -> None:
    config_ = _recorded()
    services = plan.services_of(_parsed(config_), stateful=(), floor=0.0, image_health={}, source="recorded")
    ready = _parse(lambda d: None).deploy.readiness
    plan.require_readiness(services, _parsed(config_), ready, "recorded")  # the api is on a non-internal network
    job = next(s.name for s in services if s.one_shot)
    inner = next(
        s.name for s in services if not s.one_shot and set(config_["services"][s.name]["networks"]) == {"data"}
    )
    for name, message in ((job, "one-shot job"), (inner, "only on internal networks"), ("nosuch", "does not define")):
        spec = config.Readiness(name, 8000, "/ready")
        with pytest.raises(InputError, match=rf"\[deploy\.readiness\.{name}\].*{message}"):
            plan.require_readiness(services, _parsed(config_), {name: spec}, "recorded")
    # A rolled service cannot keep a fixed container name: two of it run side by side during a deploy.
    plan.require_scalable(services, _parsed(config_), "recorded")
    config_["services"][API]["container_name"] = "the-api"
    with pytest.raises(InputError, match=f"service '{API}' sets container_name 'the-api'"):
        plan.require_scalable(services, _parsed(config_), "recorded")
    stateful = next(s.name for s in services if s.stateful)  # replaced in place: one at a time, a name is fine
    config_["services"][API].pop("container_name")
    config_["services"][stateful]["container_name"] = "the-store"
    plan.require_scalable(services, _parsed(config_), "recorded")


class _Answers(http.server.BaseHTTPRequestHandler):
    replies: ClassVar[list[tuple[int, bytes]]] = []

    def do_GET(self) -> None:
        status, body = self.replies.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_readiness_answers_are_judged_by_status_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.deploy import readiness

    # The operator's HTTP proxy is never used for a container address.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ready"
    spec = config.Readiness(API, 8000, "/ready", 200, {"status": "ready"})
    cases = [
        ((200, b'{"status": "ready"}'), True, "200"),
        ((503, b'{"status": "unavailable", "error": "PoolTimeout"}'), False, "503"),
        ((200, b'{"status": "unavailable"}'), False, 'status is not "ready"'),
        ((200, b"ready"), False, "not JSON"),
        ((200, b'["ready"]'), False, "not a JSON object"),
    ]
    try:
        for reply, ok, seen in cases:
            _Answers.replies.append(reply)
            answer = readiness.ask(url, spec, 2.0)
            assert (answer.ok, seen in answer.seen) == (ok, True), answer
        _Answers.replies.append((204, b""))
        assert readiness.ask(url, config.Readiness(API, 8000, "/ready", 204), 2.0).ok
        _Answers.replies.append((200, b'{"ok": true}'))
        assert not readiness.ask(url, config.Readiness(API, 8000, "/ready", 200, {"ok": 1}), 2.0).ok
    finally:
        server.shutdown()
        server.server_close()
    answer = readiness.ask(url, spec, 1.0)  # nobody listens any more
    assert not answer.ok and "no answer" in answer.seen


# ---- the real thing ------------------------------------------------------------------------------


def purge(project: str) -> None:
    """Every container, network and volume of ``project``, whatever state it was left in."""
    label = f"label=com.docker.compose.project={project}"
    ids = docker("ps", "-aq", "--filter", label).stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    for kind in ("network", "volume"):
        names = docker(kind, "ls", "-q", "--filter", label).stdout.split()
        if names:
            docker(kind, "rm", *names, check=False)


@pytest.fixture(scope="module")
def staging(
    tools: Any,
    cfg: config.Config,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
    locks: RunLocks,
) -> Iterator[manifest.BuildRecord]:
    """staging built and pushed, scanned and smoke-tested for real, then signed: the gate's inputs."""
    t0 = time.monotonic()
    locks.build(cfg, "staging")
    # The real stages: their verdicts, recorded by the CLI for exactly these images, are what deploy trusts.
    for stage in ("scan", "smoke"):
        with locks.exclusive("reports"):
            r = run_cli(stage, "--env", "staging")
        assert r.returncode == 0, f"{stage}:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    record = manifest.load(cfg.project.artifacts, "staging")
    # verify's matrix has timing cells (healthy within the start period) that a loaded 2-core host can miss:
    # not what these tests are about, so its verdict is recorded for these images.
    verdicts.record(
        cfg.project.artifacts, stage="verify", env="staging", passed=True,
        subjects={i.name: i.image_id for i in record.services},
        headline="recorded by tests/test_deploy.py", reports="",
    )  # fmt: skip
    sign(keys, home)
    print(f"staging built, scanned, smoke-tested and signed in {time.monotonic() - t0:.1f} s")
    yield record
    for img in record.services:
        delete_cosign_tags(img.ref)


def sign(pairs: Any, home_dir: Path) -> None:
    ours = pairs["ours"]
    r = run_cli("sign", "--env", "staging", "--key", str(ours.private), "--public-key", str(ours.public),
                env=offline_env(home_dir))  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


class Deployer:
    """Runs `pipelines deploy/releases/rollback` for one project and state directory."""

    def __init__(self, pairs: Any, home_dir: Path, state: Path, project: str) -> None:
        self.public = str(pairs["ours"].public)
        self.private = str(pairs["ours"].private)
        self.home = home_dir
        self.state = state
        self.project = project
        self.timings: list[tuple[str, float]] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {**offline_env(self.home), "API_PORT": "", "LOG_LEVEL": "info", **extra}

    def argv(self, command: str, env_name: str, *args: str) -> list[str]:
        base = [command, "--env", env_name, "--state", str(self.state)]
        if command == "deploy":
            base += ["--public-key", self.public, "--key", self.private, "--project", self.project]
        if command == "rollback" and "--public-key" not in args:
            base += ["--public-key", self.public]
        return [*base, *args]

    def run(
        self, command: str, *args: str, env_name: str = "staging", **extra: str
    ) -> subprocess.CompletedProcess[str]:
        start = time.monotonic()
        r = run_cli(*self.argv(command, env_name, *args), env=self.env(**extra), timeout=600)
        self.timings.append((f"{command} {' '.join(args)}".strip(), round(time.monotonic() - start, 2)))
        return r

    def popen(self, command: str, *args: str, env_name: str = "staging", **extra: str) -> subprocess.Popen[str]:
        full = {**os.environ, **self.env(**extra)}
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines", *self.argv(command, env_name, *args)],
            cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def history(self, env_name: str = "staging") -> dict[str, Any]:
        r = self.run("releases", "--format", "json", env_name=env_name)
        assert r.returncode == 0, r.stderr
        data: dict[str, Any] = json.loads(r.stdout)
        return data

    def containers(self, service: str) -> list[dict[str, Any]]:
        ids = docker(
            "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()  # fmt: skip
        if not ids:
            return []
        data: list[dict[str, Any]] = json.loads(docker("inspect", *ids).stdout)
        return data


def _env_of(container: dict[str, Any]) -> dict[str, str]:
    # An entry without "=" is a name Compose passed through unset (the signing secrets are withheld from
    # Compose): the container does not have it.
    return dict(e.split("=", 1) for e in container["Config"]["Env"] if "=" in e)


@pytest.fixture(scope="module")
def deployer(
    staging: manifest.BuildRecord,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployer]:
    d = Deployer(keys, home, tmp_path_factory.mktemp("deploy-state"), f"pltest-deploy-{secrets.token_hex(3)}")
    try:
        yield d
    finally:
        purge(d.project)
        print(f"deploy timings: {d.timings}")
        assert leftovers(d.project) == {"containers": [], "networks": [], "volumes": []}


OVERLAY_BAD = """\
services:
  {api}:
    healthcheck:
      test: ["CMD", "/opt/venv/bin/python", "-c", "raise SystemExit(1)"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 1s
"""
OVERLAY_SLOW = """\
services:
  {api}:
    healthcheck:
      test: ["CMD", "/opt/venv/bin/python", "-c", "import time; time.sleep(60)"]
      interval: 30s
      timeout: 60s
      retries: 3
      start_period: 60s
"""
API = "api"  # the reference stack's HTTP service: these tests' own knowledge, not the package's


@pytest.fixture
def live(deployer: Deployer) -> str:
    """The release serving now; the first deploy is made here when there is none, so a test can run alone."""
    h = deployer.history()
    if h["live"] is None:
        r = deployer.run("deploy")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        h = deployer.history()
    return str(h["live"])


def test_good_deploy_runs_every_image_by_digest_and_is_listed(
    deployer: Deployer, staging: manifest.BuildRecord, cfg: config.Config
) -> None:
    r = deployer.run("deploy")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "r1 live" in r.stdout
    h = deployer.history()
    assert h["live"] == "r1"
    (rel,) = h["releases"]
    assert rel["status"] == "live" and rel["source"] == "build"
    assert set(rel["verdicts"]) == {"scan", "verify", "smoke"}
    for stage, at in rel["verdicts"].items():
        v = verdicts.load(cfg.project.artifacts, "staging", stage)
        assert v is not None and v.passed and v.at == at
    assert rel["commit"].startswith(staging.commit)
    refs = {i.name: i.ref for i in staging.services}
    assert rel["refs"] == refs
    # Every service runs exactly the digest of the build, and is healthy (or done, for the one-shot job).
    for service, ref in rel["images"].items():
        assert ref in refs.values()
        for c in deployer.containers(service):
            assert c["Config"]["Image"] == ref
            assert c["State"]["Health"]["Status"] == "healthy"
    assert deployer.containers(API)
    table = deployer.run("releases")
    assert table.returncode == 0
    assert "r1" in table.stdout and "live" in table.stdout and refs[API].split("@")[1][:19] in table.stdout


OVERLAY_SECRETS = """\
services:
  {api}:
    environment:
      COSIGN_PASSWORD:
      COSIGN_KEY:
      PLTEST_PASSWORD_SEEN: "${{COSIGN_PASSWORD:-withheld}}"
      PLTEST_KEY_SEEN: "${{COSIGN_KEY:-withheld}}"
"""


def test_the_signing_key_and_password_reach_no_container_nor_the_release_files(
    deployer: Deployer, live: str, tmp_path: Path
) -> None:
    # The deploy signs its record with them; Compose, given them, would pass a bare name on and interpolate ${...}.
    overlay = tmp_path / "secrets.yaml"
    overlay.write_text(OVERLAY_SECRETS.format(api=API))
    key_text = f"pltest-key-{secrets.token_hex(8)}"  # [signing].key is env://COSIGN_KEY; --key (a file) wins
    r = deployer.run("deploy", "--compose-file", str(overlay), COSIGN_KEY=key_text)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert PASSWORD not in r.stdout + r.stderr and key_text not in r.stdout + r.stderr
    (api,) = deployer.containers(API)
    # A name Compose found unset stays bare ("COSIGN_PASSWORD", no "="): the container has no such variable.
    env = dict(e.split("=", 1) for e in api["Config"]["Env"] if "=" in e)
    assert env["PLTEST_PASSWORD_SEEN"] == "withheld" and env["PLTEST_KEY_SEEN"] == "withheld", env
    assert "COSIGN_PASSWORD" not in env and "COSIGN_KEY" not in env, env
    code = "import os; print(repr(os.environ.get('COSIGN_PASSWORD')), repr(os.environ.get('COSIGN_KEY')))"
    seen = docker("exec", api["Id"], "/opt/venv/bin/python", "-c", code).stdout.split()
    assert seen == ["None", "None"], seen
    inspected = json.dumps(api)
    assert PASSWORD not in inspected and key_text not in inspected
    live_now = deployer.history()["live"]
    assert live_now != live
    files = [p for p in deployer.state.rglob("*") if p.is_file()]
    composed = [p for p in files if p.name == "compose.json"]
    assert composed, files
    assert "PLTEST_PASSWORD_SEEN" in "".join(p.read_text() for p in composed)  # the overlay was rendered
    for p in files:
        data = p.read_bytes()
        assert PASSWORD.encode() not in data and key_text.encode() not in data, p
    # A rollback brings that release back from its compose.json, whose bare names Compose resolves again.
    r = deployer.run("deploy", COSIGN_KEY=key_text)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = deployer.run("rollback", "--to", live_now, COSIGN_KEY=key_text)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (api,) = deployer.containers(API)
    assert "PLTEST_PASSWORD_SEEN=withheld" in api["Config"]["Env"], api["Config"]["Env"]
    assert PASSWORD not in json.dumps(api) and key_text not in json.dumps(api)
    seen = docker("exec", api["Id"], "/opt/venv/bin/python", "-c", code).stdout.split()
    assert seen == ["None", "None"], seen


def test_a_release_that_fails_its_health_gate_is_rolled_back(deployer: Deployer, live: str, tmp_path: Path) -> None:
    before = deployer.containers(API)
    assert before, "needs the first deploy"
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(OVERLAY_BAD.format(api=API))
    start = time.monotonic()
    r = deployer.run("deploy", "--compose-file", str(overlay))
    took = time.monotonic() - start
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"failed its gate and was rolled back to {live}" in r.stdout
    assert "unhealthy" in r.stdout
    # The old container never stopped serving; the failed one is gone.
    after = deployer.containers(API)
    assert [c["Id"] for c in after] == [c["Id"] for c in before]
    assert after[0]["State"]["Health"]["Status"] == "healthy"
    h = deployer.history()
    assert h["live"] == live
    failed = h["releases"][0]
    assert (failed["status"], failed["rolled_back_to"]) == ("failed", live)
    assert releases.Release.model_validate(failed).number > int(live[1:])
    print(f"failed deploy and automatic rollback: {took:.1f} s")


OVERLAY_UNREADY = """\
services:
  {api}:
    environment:
      PGHOST: no-such-db-host
"""


def test_a_release_that_is_live_but_never_ready_is_rolled_back(deployer: Deployer, live: str, tmp_path: Path) -> None:
    before = deployer.containers(API)
    assert before, "needs the first deploy"
    overlay = tmp_path / "unready.yaml"
    overlay.write_text(OVERLAY_UNREADY.format(api=API))
    start = time.monotonic()
    r = deployer.run("deploy", "--compose-file", str(overlay))
    took = time.monotonic() - start
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"failed its gate and was rolled back to {live}" in r.stdout
    # Live (the engine's health passed) but never ready: its database is not there.
    assert "healthy in" in r.stdout and "not ready after" in r.stdout, r.stdout[-3000:]
    after = deployer.containers(API)
    assert [c["Id"] for c in after] == [c["Id"] for c in before]
    assert after[0]["State"]["Health"]["Status"] == "healthy"
    assert _env_of(after[0])["PGHOST"] != "no-such-db-host"
    h = deployer.history()
    assert h["live"] == live
    assert (h["releases"][0]["status"], h["releases"][0]["rolled_back_to"]) == ("failed", live)
    print(f"live-but-unready deploy and automatic rollback: {took:.1f} s")


def test_rollback_two_steps_restores_that_release_config(
    deployer: Deployer,
    live: str,
    keys: Any,  # noqa: F811 - test_signing's fixture
) -> None:
    (before,) = deployer.containers(API)
    ids = {}
    for level in ("debug", "warning"):
        r = deployer.run("deploy", LOG_LEVEL=level)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert f"{API} rolled" in r.stdout
        assert "ready in" in r.stdout  # the gate asked the readiness route too
        assert _env_of(deployer.containers(API)[0])["LOG_LEVEL"] == level
        ids[level] = deployer.history()["live"]
    first, second = ids["debug"], ids["warning"]
    assert int(second[1:]) > int(first[1:]) > int(live[1:])
    # The release to restore is verified again: under another key its record (signed by our key) is not
    # trusted, so it is refused and nothing moves; its images would be next (see the compose-images test).
    r = deployer.run("rollback", "--to", live, "--public-key", str(keys["theirs"].public))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"release {live} of 'staging' is not trusted" in r.stderr and "does not verify" in r.stderr, r.stderr
    assert deployer.history()["live"] == second
    start = time.monotonic()
    r = deployer.run("rollback", "--to", live)
    took = time.monotonic() - start
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "signatures verified" in r.stderr
    (api,) = deployer.containers(API)
    assert _env_of(api)["LOG_LEVEL"] == _env_of(before)["LOG_LEVEL"]
    assert api["State"]["Health"]["Status"] == "healthy"
    h = deployer.history()
    status = {x["id"]: (x["status"], x["rolled_back_to"]) for x in h["releases"]}
    assert h["live"] == live
    assert status[second] == ("rolled-back", live)
    assert status[first] == ("superseded", None)
    # A release that never served cannot be restored; a release that is not there is named.
    bad = next((x["id"] for x in h["releases"] if x["status"] in ("failed", "interrupted")), None)
    if bad is not None:  # the failed-gate test before this one left one
        r = deployer.run("rollback", "--to", bad)
        assert r.returncode == 2 and "never served" in r.stderr
    r = deployer.run("rollback", "--to", "r99")
    assert r.returncode == 2 and "no release 'r99'" in r.stderr
    print(f"rollback two steps: {took:.1f} s")


def test_ctrl_c_mid_deploy_leaves_the_previous_release_serving(deployer: Deployer, live: str, tmp_path: Path) -> None:
    before = deployer.containers(API)
    overlay = tmp_path / "slow.yaml"
    overlay.write_text(OVERLAY_SLOW.format(api=API))
    p = deployer.popen("deploy", "--compose-file", str(overlay))
    try:
        deadline = time.monotonic() + 120
        while len(deployer.containers(API)) < 2:  # the new container beside the old one
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no second api container appeared"
            time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out[-2000:] + err[-3000:]
    assert "previous release keeps serving" in err
    after = deployer.containers(API)
    assert [c["Id"] for c in after] == [c["Id"] for c in before]
    assert after[0]["State"]["Health"]["Status"] == "healthy"
    h = deployer.history()
    assert h["live"] == live
    assert h["releases"][0]["status"] == "interrupted"


def test_two_deploys_of_one_environment_at_once_are_serialised(deployer: Deployer, live: str) -> None:
    before = deployer.history()["releases"][0]["id"]
    procs = [deployer.popen("deploy", LOG_LEVEL=level) for level in ("debug", "warning")]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, out[-2000:] + err[-3000:]
    waited = [err for _, err in results if "waited" in err]
    assert len(waited) == 1, [e[-500:] for _, e in results]
    h = deployer.history()
    n = releases.Release.model_validate(h["releases"][1]).number
    assert n == int(before[1:]) + 1
    new = h["releases"][:2]
    assert {x["status"] for x in new} == {"live", "superseded"}
    assert sum(x["status"] == "live" for x in h["releases"]) == 1
    # What serves is what the history says: the later deploy's config.
    live = next(x for x in new if x["status"] == "live")
    (api,) = deployer.containers(API)
    level = _env_of(api)["LOG_LEVEL"]
    file = deployer.state / "staging" / live["id"] / "compose.json"
    assert json.loads(file.read_text())["services"][API]["environment"]["LOG_LEVEL"] == level


STATEFUL = "ingestion"  # the reference service with a named volume


def test_a_stateful_service_keeps_running_unless_it_is_named_for_replacement(deployer: Deployer, live: str) -> None:
    (kept,) = deployer.containers(STATEFUL)
    level = _env_of(kept)["LOG_LEVEL"]
    want = "error" if level != "error" else "critical"
    r = deployer.run("deploy", LOG_LEVEL=want)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{STATEFUL} is stateful (named volume" in r.stdout and f"--replace-stateful {STATEFUL}" in r.stdout
    (same,) = deployer.containers(STATEFUL)
    assert same["Id"] == kept["Id"] and _env_of(same)["LOG_LEVEL"] == level
    assert _env_of(deployer.containers(API)[0])["LOG_LEVEL"] == want  # the stateless service did move
    # What the release records is what runs: the kept service's old config.
    live = deployer.history()["releases"][0]
    rendered = json.loads((deployer.state / "staging" / live["id"] / "compose.json").read_text())
    assert rendered["services"][STATEFUL]["environment"]["LOG_LEVEL"] == level

    r = deployer.run("deploy", "--replace-stateful", API, LOG_LEVEL=want)
    assert r.returncode == 2 and "not a stateful service" in r.stderr, r.stderr[-2000:]
    r = deployer.run("deploy", "--replace-stateful", STATEFUL, LOG_LEVEL=want)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{STATEFUL} replaced in place" in r.stdout  # the headline says what moved
    (replaced,) = deployer.containers(STATEFUL)
    assert replaced["Id"] != kept["Id"] and _env_of(replaced)["LOG_LEVEL"] == want
    assert replaced["State"]["Health"]["Status"] == "healthy"
    # Its data volume is the same one: replaced, never recreated empty.
    assert {m["Name"] for m in replaced["Mounts"] if m["Type"] == "volume"} == {
        m["Name"] for m in kept["Mounts"] if m["Type"] == "volume"
    }


def test_an_unsigned_image_is_refused(
    deployer: Deployer,
    live: str,
    staging: manifest.BuildRecord,
    keys: Any,  # noqa: F811 - test_signing's fixture
    home: Path,  # noqa: F811 - test_signing's fixture
) -> None:
    before = deployer.history()
    victim = next(i for i in staging.services if i.name == API)
    delete_cosign_tags(victim.ref)
    try:
        r = deployer.run("deploy")
        assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
        assert "refusing" in r.stderr and victim.ref in r.stderr and "not signed" in r.stderr
    finally:
        sign(keys, home)
    assert deployer.history() == before  # nothing recorded, nothing touched


def test_a_digest_without_a_passing_scan_is_refused(
    deployer: Deployer, live: str, staging: manifest.BuildRecord, cfg: config.Config
) -> None:
    file = verdicts.path(cfg.project.artifacts, "staging", "scan")
    kept = file.read_bytes()
    before = deployer.history()
    other = {i.name: i.image_id for i in staging.services} | {API: "sha256:" + "0" * 64}
    try:
        verdicts.record(cfg.project.artifacts, stage="scan", env="staging", passed=True, subjects=other,
                        headline="a scan of another build", reports="")  # fmt: skip
        r = deployer.run("deploy")
        assert r.returncode == 1, r.stderr[-3000:]
        assert "scan: passed at" in r.stderr and f"for other images than this build's ({API})" in r.stderr
        file.unlink()
        r = deployer.run("deploy")
        assert r.returncode == 1 and "scan: never ran on this build" in r.stderr
    finally:
        file.write_bytes(kept)
    assert deployer.history() == before


def test_prod_is_promoted_from_staging_without_a_build(deployer: Deployer, live: str, cfg: config.Config) -> None:
    prod = Deployer.__new__(Deployer)
    prod.__dict__.update(deployer.__dict__, project=f"{deployer.project}-prod", timings=[])
    empty = Deployer.__new__(Deployer)
    empty.__dict__.update(prod.__dict__, state=deployer.state / "empty")
    record = manifest.path(cfg.project.artifacts, "prod")
    aside = record.with_suffix(".json.aside-test-deploy")
    if record.exists():
        record.replace(aside)
    try:
        # No live staging release (an empty history): nothing to promote.
        r = empty.run("deploy", env_name="prod")
        assert r.returncode == 1 and "has no live release" in r.stderr, r.stderr[-2000:]
        r = prod.run("deploy", env_name="prod")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    finally:
        if aside.exists():
            aside.replace(record)
        purge(prod.project)
    staging_live = next(x for x in deployer.history()["releases"] if x["status"] == "live")
    (rel,) = deployer.history("prod")["releases"]
    assert rel["status"] == "live"
    assert rel["refs"] == staging_live["refs"]
    assert rel["source"] == f"promoted from staging {staging_live['id']}"
    assert rel["verdicts"]["promotion"] == rel["source"]


def _prod(deployer: Deployer, suffix: str) -> Deployer:
    """prod (promoted from staging) under a project of its own, in the same state directory."""
    prod = Deployer.__new__(Deployer)
    prod.__dict__.update(deployer.__dict__, project=f"{deployer.project}-{suffix}", timings=[])
    return prod


def test_a_deploy_that_waited_for_the_lock_promotes_what_is_live_after_a_rollback_meanwhile(
    deployer: Deployer, live: str
) -> None:
    r = deployer.run("deploy", LOG_LEVEL="debug")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    newer = deployer.history()["live"]
    assert newer != live
    prod = _prod(deployer, "waited")
    try:
        # prod's lock is held (as by another prod deploy); the prod deploy waits for it ...
        with releases.locked(deployer.state, "prod", wait_s=5):
            p = prod.popen("deploy", env_name="prod")
            try:
                seen = _stderr_until(p, "waiting for the lock of 'prod'", timeout=120)
                # ... while staging, the release it promotes, is rolled back (a real rollback, staging's lock).
                r = deployer.run("rollback", "--to", live)
                assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            except BaseException:
                p.kill()
                raise
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:] + "".join(seen) + err[-3000:]
    finally:
        purge(prod.project)
    assert deployer.history()["live"] == live
    rel = prod.history("prod")["releases"][0]  # newest first
    # What staging runs now, not what it ran when the waiting deploy started.
    assert rel["status"] == "live" and rel["source"] == f"promoted from staging {live}", rel


def test_prod_deploys_only_the_commit_it_was_approved_for(deployer: Deployer, live: str) -> None:
    staging_live = next(x for x in deployer.history()["releases"] if x["status"] == "live")
    commit = staging_live["commit"]
    prod = _prod(deployer, "approved")
    before = prod.history("prod")
    try:
        r = prod.run("deploy", "--expect-commit", OTHER, env_name="prod")
        assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]
        assert commit in r.stderr and OTHER in r.stderr and f"promoted from staging {staging_live['id']}" in r.stderr
        assert prod.history("prod") == before  # nothing recorded, nothing moved
        r = prod.run("deploy", "--expect-commit", commit.removesuffix("-dirty"), env_name="prod")
        if commit.endswith("-dirty"):  # staging was built from a tree with uncommitted changes: never approved
            assert r.returncode == 1 and "a build of a dirty tree never matches" in r.stderr, r.stderr[-3000:]
        else:
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            rel = prod.history("prod")["releases"][0]
            assert (rel["status"], rel["commit"]) == ("live", commit)
    finally:
        purge(prod.project)


def test_push_false_and_unknown_engines_are_refused_before_anything_runs(tmp_path: Path) -> None:
    r = run_cli_outcome("deploy", "--env", "dev", "--state", str(tmp_path))
    assert r.returncode == 2 and "push = false" in r.stderr, r.stderr
    r = run_cli_outcome("deploy", "--env", "staging", "--engine", "nomad", "--state", str(tmp_path))
    assert r.returncode == 2 and "nomad" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert deploy.engine_module("swarm").__name__ == "pipelines.deploy.swarm"  # the stage's other engine
    r = run_cli_outcome("rollback", "--env", "staging", "--state", str(tmp_path))
    assert r.returncode == 2 and "no live release" in r.stderr, r.stderr
    r = run_cli_outcome("releases", "--env", "staging", "--state", str(tmp_path), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["releases"] == []
    assert not (tmp_path / "staging.json").exists()
