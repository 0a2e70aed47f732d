"""The deploy stage: put exactly what passed on an environment, health-gated, with history and rollback.

``run`` deploys, ``run_releases`` lists the history, ``run_rollback`` puts an
earlier release back; each is ``(context, options) -> Result`` like every
stage. What may be deployed and how each service is treated is decided in
:mod:`.plan` (the gate), the history and its lock live in :mod:`.releases`,
and an engine module carries a release out: :mod:`.compose_engine` on one
host; :mod:`.steps` is what every engine reports (``apply``'s contract).
:func:`engine_module` is the one place an engine is chosen.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import cosign
from ..compose_model import Healthcheck, Project
from ..engine import Engine, ImageNotFound
from ..errors import InputError, Interrupted, PipelineError, StageFailed
from ..result import Check, Context, Outcome, Result, Table
from . import plan, releases
from . import steps as steps_mod
from .plan import Deployment, Rendered

ENGINES = ("compose", "swarm")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# A full commit id (SHA-1 or SHA-256 repositories): a prefix could be made to match another commit.
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Options:
    """``pipelines deploy``."""

    env: str | None = None
    engine: str = "compose"
    public_key: str | None = None  # overrides [signing].public_key
    replace_stateful: tuple[str, ...] = ()  # stateful services to replace (stop, start, gate: downtime)
    wait: float | None = None  # seconds to wait for another deploy's lock (default: [deploy].lock_wait)
    project: str | None = None  # Compose project (default: the live release's, else PROJECT-ENV)
    state: Path | None = None  # release history directory (default: [deploy].state)
    extra_files: tuple[Path, ...] = ()  # Compose overlays on top of the environment's files
    expect_commit: str | None = None  # refuse a release of any other commit (what the approvers saw)
    key: str | None = None  # the private key that signs the release record (default: [signing].key)


@dataclass(frozen=True)
class RollbackOptions:
    """``pipelines rollback``."""

    env: str | None = None
    engine: str = "compose"
    public_key: str | None = None  # overrides [signing].public_key
    to: str | None = None  # the release to restore (default: the one before the live one)
    replace_stateful: tuple[str, ...] = ()  # stateful services to replace (stop, start, gate: downtime)
    wait: float | None = None  # seconds to wait for another deploy's lock (default: [deploy].lock_wait)
    state: Path | None = None  # release history directory (default: [deploy].state)


# ---- shared ground -------------------------------------------------------------------------------


def engine_module(name: str) -> steps_mod.DeployEngine:
    """The module that carries a release out on ``name``: the one dispatch point for engines."""
    if name == "compose":
        from . import compose_engine

        return compose_engine
    if name == "swarm":
        from . import swarm

        return swarm
    raise InputError(f"unknown deploy engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")


def store_for(ctx: Context, state_dir: Path | None) -> releases.Store:
    state = state_dir.expanduser().resolve() if state_dir else ctx.cfg.deploy.state
    if state.exists() and not state.is_dir():
        raise InputError(f"the deploy state {state} is not a directory", hint="name a directory for release history")
    return releases.Store(state)


def project_name(ctx: Context, env: str, override: str | None, live: releases.Release | None) -> str:
    name = override or (live.project if live else f"{ctx.cfg.project.name}-{env}".lower())
    name = re.sub(r"[^a-z0-9_-]", "-", name.lower()) if not override else name
    if not _PROJECT.match(name):
        raise InputError(
            f"{name!r} is not a Compose project name",
            hint="lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    return name


def _image_health(ctx: Context, project: Project) -> dict[str, Healthcheck]:
    """The image's own healthcheck, for services whose Compose file sets none."""
    refs = sorted({s.image for s in project if s.healthcheck is None and s.image})
    out: dict[str, Healthcheck] = {}
    if not refs:
        return out
    with Engine.connect(ctx.environ) as engine:
        for ref in refs:
            try:
                info = engine.image(ref)
            except ImageNotFound:
                info = engine.pull(ref)
            if info.healthcheck:
                # The engine's zero is "not set": Docker's default then, as for a Compose healthcheck.
                out[ref] = Healthcheck(
                    test=info.healthcheck,
                    interval=info.health_interval_ns / 1e9 or None,
                    timeout=info.health_timeout_ns / 1e9 or None,
                    retries=info.health_retries or None,
                    start_period=info.health_start_period_ns / 1e9 or None,
                )
    return out


def deployment(
    ctx: Context, env: str, project: str, rdir: Path, file: Path, config: Rendered, source: str
) -> Deployment:
    import hashlib

    services = plan.services_of(
        config.project,
        stateful=ctx.cfg.deploy.stateful,
        floor=float(ctx.cfg.deploy.gate_deadline),
        image_health=_image_health(ctx, config.project),
        source=source,
    )
    return Deployment(env, project, rdir, file, config, services, hashlib.sha256(file.read_bytes()).hexdigest())


def _recorded(ctx: Context, store: releases.Store, env: str, r: releases.Release, public: str) -> Deployment:
    file, config = plan.load_release(store, env, r, public)
    return deployment(ctx, env, r.project, file.parent, file, config, f"{env} release {r.id}")


def expected_commit(value: str | None) -> str | None:
    """``--expect-commit``: a full commit id, lowercased; anything else is exit 2."""
    if value is None:
        return None
    commit = value.strip().lower()
    if not _COMMIT.match(commit):
        raise InputError(
            f"--expect-commit {value!r} is not a full commit id (40 or 64 hex digits)",
            hint='pass the commit the approvers saw, e.g. `--expect-commit "$GITHUB_SHA"` in a workflow',
        )
    return commit


def _record_key(ctx: Context, opts: Options) -> tuple[str, str]:
    """The private key and its password that sign the release record: checked before anything moves."""
    cfg = ctx.cfg
    key = opts.key or cfg.signing.key
    if not key:
        raise InputError(
            f"{cfg.file}: [signing].key is not set and no --key given: a deploy signs its release record",
            hint="set [signing].key (a file outside the project, or env://VAR) or pass --key",
        )
    key = cosign.private_key_location(key, cfg.root)
    cosign.require_env_key(key, ctx.environ, "the private key", "--key")
    if not key.startswith("env://") and not Path(key).is_file():
        raise InputError(f"the private key {key} does not exist", hint="name the signing key's file, or env://VAR")
    password = ctx.environ.get(cfg.signing.password_env)
    if password is None:
        raise InputError(
            f"the private key's password is not in ${cfg.signing.password_env}",
            hint=f"export {cfg.signing.password_env} (never put it in the config or on the command line)",
        )
    return key, password


def rolled_back_since(before: releases.History, after: releases.History) -> list[releases.Release]:
    """Releases rolled back from between two readings of the history (a rollback ran in between)."""
    was = {r.id: r.status for r in before.releases}
    return [r for r in after.releases if r.status == "rolled-back" and was.get(r.id) != "rolled-back"]


def _close_stale(history: releases.History) -> None:
    # We hold the lock: a release still "deploying" belongs to a deploy that died (killed, host rebooted).
    for r in history.releases:
        if r.status == "deploying":
            r.status = "interrupted"
            r.notes.append("its deploy ended without recording an outcome (the process died)")


def _steps_table(steps: list[Any]) -> Table:
    rows = tuple(
        (s.service, s.action, s.image.rsplit("@", 1)[-1][:19] if s.image else "-", s.gate or "-", f"{s.seconds:.1f}s")
        for s in steps
    )
    return Table(("service", "action", "image", "gate", "time"), rows, "rollout")


def _step_checks(steps: list[Any]) -> tuple[Check, ...]:
    return tuple(
        Check(s.action, Outcome.PASS if s.ok else Outcome.FAIL, s.gate or s.detail, s.seconds, s.service, "deploy")
        for s in steps
    )


def _short(ref: str) -> str:
    return ref.rsplit("@", 1)[-1][:19]


# ---- deploy --------------------------------------------------------------------------------------


def run(ctx: Context, opts: Options) -> Result:
    cfg = ctx.cfg
    env = cfg.env(opts.env).name
    engine = engine_module(opts.engine)
    for name in opts.replace_stateful:
        if not name.strip():
            raise InputError("--replace-stateful needs a service name")
    expect = expected_commit(opts.expect_commit)
    plan.require_deployable(cfg, env)
    key, password = _record_key(ctx, opts)
    public = cosign.public_key_for(cfg, opts.public_key)
    store = store_for(ctx, opts.state)
    start = time.monotonic()
    # What the history says before the wait: a rollback while this deploy waited is seen below.
    before = store.load(env)
    wait = cfg.deploy.lock_wait if opts.wait is None else opts.wait

    def waiting(holder: str) -> None:
        ctx.log(f"deploy: waiting for the lock of {env!r} held by another deploy ({holder})")

    with releases.locked(store.state, env, wait_s=wait, on_wait=waiting) as waited:
        if waited:
            ctx.log(f"deploy: waited {waited:.1f} s for another deploy of {env!r} to finish")
        history = store.load(env)
        undone = rolled_back_since(before, history)
        if undone:
            r = undone[-1]
            raise StageFailed(
                f"refusing to deploy {env!r}: it was rolled back from {r.id} to {r.rolled_back_to} "
                "while this deploy waited for the lock",
                seen="\n".join(f"{u.id}: rolled back to {u.rolled_back_to}" for u in undone),
                hint="a rollback is a decision this deploy was made without: run the deploy again if it is "
                "still wanted",
            )
        # The gate (verdicts, signatures) under the lock: a deploy that waited decides on what is there now,
        # e.g. the live release of the environment it promotes from after a rollback there.
        cand = plan.candidate(ctx, env, public, store, expect)
        _close_stale(history)
        live = history.live()
        project = project_name(ctx, env, opts.project, live)
        rid = history.next_id()
        rdir = store.release_dir(env, rid)
        secrets_dir = store.state / env / "secrets"
        config = plan.render(
            ctx, cand, project=project, release_dir=rdir, secrets_dir=secrets_dir, extra_files=opts.extra_files
        )
        old = _recorded(ctx, store, env, live, public) if live and live.project == project else None
        source = f"{env} release {rid}"
        notes: list[str] = []
        if live and live.project != project:
            notes.append(f"the live release {live.id} runs as project {live.project}; this one starts {project} anew")
        services = plan.services_of(
            config.project,
            stateful=cfg.deploy.stateful,
            floor=0.0,
            image_health=_image_health(ctx, config.project),
            source=source,
        )
        stateful = {s.name: s for s in services if s.stateful}
        unknown = [n for n in opts.replace_stateful if n not in stateful]
        if unknown:
            raise InputError(
                f"--replace-stateful {', '.join(unknown)}: not a stateful service of {env!r}",
                hint=f"stateful services: {', '.join(stateful) or 'none'}",
            )
        if old is not None:
            # A stateful service keeps running what it runs unless asked: the release records that truthfully.
            kept: list[str] = []
            for name, s in stateful.items():
                prev = old.service(name)
                if prev and name not in opts.replace_stateful and old.config.spec(name) != config.spec(name):
                    kept.append(name)
                    was, want = _short(prev.image), _short(s.image)
                    what = f"its config changed (image {want} as before)" if was == want else f"{was}, not {want}"
                    notes.append(
                        f"{name} is stateful ({s.stateful}) and keeps running as it is: {what}; "
                        f"`--replace-stateful {name}` replaces it (downtime)"
                    )
            config = config.keeping(old.config, kept)
        file, config_hash = plan.write_release_file(rdir, config)
        new = deployment(ctx, env, project, rdir, file, config, source)
        plan.require_health(new.services, opts.replace_stateful, source)
        plan.require_scalable(new.services, new.compose, source)
        plan.require_readiness(new.services, new.compose, cfg.deploy.readiness, source)
        release = releases.Release(
            id=rid,
            env=env,
            at=releases.now(),
            commit=cand.commit,
            engine=opts.engine,
            project=project,
            images={s.name: s.image for s in new.services},
            refs=dict(cand.refs),
            image_ids=dict(cand.image_ids),
            config_hash=config_hash,
            verdicts=dict(cand.verdicts),
            who=releases.who(ctx.environ),
            status="deploying",
            source=cand.source,
            notes=notes,
        )
        # Signed before anything moves: a release that cannot be signed is never deployed.
        store.seal(release, key, password)
        history.releases.append(release)
        store.save(history)
        ctx.log(f"deploy: {env} {rid} ({cand.source}, commit {cand.commit[:12]}) as project {project}")
        try:
            steps = engine.apply(
                ctx,
                new,
                old,
                replace_stateful=opts.replace_stateful,
                floor=float(cfg.deploy.gate_deadline),
                log=ctx.log,
            )
        except steps_mod.GateBroken as exc:
            release.status = "failed"
            release.rolled_back_to = live.id if live else None
            release.seconds = round(time.monotonic() - start, 2)
            release.notes.append(exc.what)
            store.save(history)
            restored = f"; {live.id} keeps serving" if live else "; its containers were removed"
            return _deploy_result(ctx, env, release, cand, exc.steps, notes, waited, error=exc.what + restored,
                                  evidence=exc.seen or "", rollback_s=exc.rollback_s)  # fmt: skip
        except (steps_mod.DeployInterrupted, Interrupted, KeyboardInterrupt) as exc:
            release.status = "interrupted"
            release.rolled_back_to = live.id if live else None
            release.seconds = round(time.monotonic() - start, 2)
            store.save(history)
            if isinstance(exc, PipelineError):
                raise
            raise Interrupted(f"deploy of {env} {rid} interrupted") from None
        except PipelineError as exc:
            release.status = "failed"
            release.notes.append(exc.what)
            release.seconds = round(time.monotonic() - start, 2)
            store.save(history)
            raise
        release.seconds = round(time.monotonic() - start, 2)
        history.make_live(rid)
        store.save(history)
    return _deploy_result(ctx, env, release, cand, steps, notes, waited)


def _deploy_result(
    ctx: Context,
    env: str,
    release: releases.Release,
    cand: plan.Candidate,
    steps: list[Any],
    notes: list[str],
    waited: float,
    *,
    error: str = "",
    evidence: str = "",
    rollback_s: float | None = None,
) -> Result:
    switched = [s for s in steps if s.action in ("created", "rolled", "replaced in place")]
    if error:
        headline = f"{env} {release.id} failed its gate and was rolled back" + (
            f" to {release.rolled_back_to}" if release.rolled_back_to else ""
        )
    elif not switched:
        headline = f"{env} {release.id} live: nothing changed ({len(steps)} services as they were)"
    else:
        headline = f"{env} {release.id} live in {release.seconds:.1f} s: " + ", ".join(
            f"{s.service} {s.action}" for s in switched
        )
    return Result(
        stage="deploy",
        headline=headline,
        checks=(*cand.checks, *_step_checks(steps)),
        notices=(
            f"{release.source}, commit {release.commit[:12]}, project {release.project}, engine {release.engine}",
            *notes,
            *((f"waited {waited:.1f} s for another deploy of {env}",) if waited else ()),
            *((f"evidence:\n{evidence}",) if evidence else ()),
        ),
        tables=(_steps_table(steps),),
        timings={
            "deploy": release.seconds,
            "lock wait": waited,
            **{f"{s.service} {s.action}": s.seconds for s in steps},
            # From the failed gate's verdict to the previous release alone serving, as the engine measured it.
            **({"rollback": rollback_s} if rollback_s is not None else {}),
        },
        data={"env": env, "release": release.model_dump()},
        error=error,
        out_dir=ctx.artifacts / "deploy" / f"{ctx.stamp()}-{env}",
    )


# ---- releases ------------------------------------------------------------------------------------


def run_releases(ctx: Context, opts: releases.ReleasesOptions) -> Result:
    env = ctx.cfg.env(opts.env).name
    history = store_for(ctx, opts.state).load(env)
    shown = list(reversed(history.releases))
    if opts.limit:
        shown = shown[: opts.limit]
    rows = tuple(
        (
            r.id,
            r.status + (f" -> {r.rolled_back_to}" if r.rolled_back_to else ""),
            r.at,
            r.commit[:12],
            "\n".join(f"{s} {ref.rsplit('@', 1)[-1][:19]}" for s, ref in sorted(r.images.items())),
            r.config_hash[:12],
            r.source,
            r.who,
        )
        for r in shown
    )
    live = history.live()
    headline = (
        f"{env}: {len(history.releases)} release(s); live: {live.id} since {live.at}"
        if live
        else f"{env}: {len(history.releases)} release(s), none live"
    )
    return Result(
        stage="releases",
        headline=headline,
        tables=(Table(("id", "status", "at", "commit", "images", "config", "source", "who"), rows, "releases"),),
        data={"env": env, "live": live.id if live else None, "releases": [r.model_dump() for r in shown]},
    )


# ---- rollback ------------------------------------------------------------------------------------


def run_rollback(ctx: Context, opts: RollbackOptions) -> Result:
    env = ctx.cfg.env(opts.env).name
    engine = engine_module(opts.engine)
    store = store_for(ctx, opts.state)
    start = time.monotonic()
    wait = ctx.cfg.deploy.lock_wait if opts.wait is None else opts.wait
    with releases.locked(store.state, env, wait_s=wait) as waited:
        history = store.load(env)
        _close_stale(history)
        live = history.live()
        if live is None:
            raise InputError(f"{env!r} has no live release to roll back from", hint=f"`pipelines releases --env {env}`")
        if opts.to:
            target = history.get(opts.to)
            if target is None:
                raise InputError(
                    f"{env!r} has no release {opts.to!r}",
                    hint=f"releases: {', '.join(r.id for r in history.releases)}",
                )
        else:
            target = history.previous_live()
            if target is None:
                raise InputError(f"{env!r} has no release before {live.id} that served", hint="name one with --to")
        if target.id == live.id:
            raise InputError(f"{target.id} is already live on {env!r}")
        if target.status not in ("superseded", "rolled-back"):
            raise InputError(
                f"{target.id} never served on {env!r} (it is {target.status}); only a release that passed its "
                "gate can be restored",
                hint=f"`pipelines releases --env {env}` lists the releases that served",
            )
        if target.project != live.project:
            raise InputError(f"{target.id} ran as project {target.project}, the live release as {live.project}")
        public = cosign.public_key_for(ctx.cfg, opts.public_key)
        # The target's record and Compose file first (its signed statement), then every image its services run.
        file, config = plan.load_release(store, env, target, public)
        known = {ref: r.image_ids.get(name, "") for r in history.releases for name, ref in r.refs.items()}
        signed = plan.verify_release(
            ctx.cfg,
            target.refs,
            target.image_ids,
            public,
            refusing=f"refusing to restore {target.id} on {env!r}",
            # A release put back is held to what the environment requires today, coverage included.
            require_full_coverage=ctx.cfg.env(env).require_full_coverage,
            config=config.project,
            known_ids=known,
        )
        old = _recorded(ctx, store, env, live, public)
        new = deployment(ctx, env, target.project, file.parent, file, config, f"{env} release {target.id}")
        ctx.log(f"rollback: {env} {live.id} -> {target.id} (project {live.project}); signatures verified")
        try:
            steps = engine.apply(ctx, new, old, replace_stateful=opts.replace_stateful,
                                 floor=float(ctx.cfg.deploy.gate_deadline), log=ctx.log)  # fmt: skip
        except steps_mod.GateBroken as exc:
            seconds = round(time.monotonic() - start, 2)
            return Result(
                stage="rollback",
                headline=f"rollback of {env} to {target.id} failed its gate; {live.id} keeps serving",
                checks=(*signed, *_step_checks(exc.steps)),
                tables=(_steps_table(exc.steps),),
                timings={"rollback": seconds},
                error=exc.what,
                notices=(f"evidence:\n{exc.seen}",) if exc.seen else (),
                data={"env": env, "from": live.id, "to": target.id},
            )
        seconds = round(time.monotonic() - start, 2)
        history.make_live(target.id)
        live.status = "rolled-back"
        live.rolled_back_to = target.id
        target.notes.append(f"restored at {releases.now()} by {releases.who(ctx.environ)} (rollback from {live.id})")
        store.save(history)
    return Result(
        stage="rollback",
        headline=f"{env}: rolled back from {live.id} to {target.id} in {seconds:.1f} s",
        checks=(*signed, *_step_checks(steps)),
        tables=(_steps_table(steps),),
        notices=(f"{target.id}: {target.source}, commit {target.commit[:12]}, at {target.at}",)
        + ((f"waited {waited:.1f} s for another deploy of {env}",) if waited else ()),
        timings={"rollback": seconds},
        data={"env": env, "from": live.id, "to": target.id, "release": target.model_dump()},
        out_dir=ctx.artifacts / "deploy" / f"{ctx.stamp()}-{env}-rollback",
    )
