"""The verify stage: the hardening matrix, computed from the images themselves.

One row per image, one column per check, every cell ``pass``, ``fail``,
``waived`` or ``n/a`` with the value read and the call that read it. The
facts come from three places only:

- inspection: ``docker image inspect`` and ``docker history --no-trunc``;
- the image's flattened filesystem (``docker export`` of a created, never
  started container): modes, owners and types of every entry;
- one throwaway container per image, started with the hardening every
  environment uses (read-only root with a tmpfs /tmp, cap_drop ALL,
  no-new-privileges, memory and PID limits, no network): the kernel's view of
  its PID 1 (``/proc/PID/status`` on the engine host), its health, and how
  long ``docker stop`` takes.

Secrets in layers are Trivy's secret scanner's result for exactly this image
ID (cached per ID under ARTIFACTS/verify/secrets/, and read back only when it
names that ID). A Trivy run that exits non-zero, or reports another image, is
an error (exit 2), never a pass. A throwaway container run
whose cells all passed is reused for the same image ID, the same run
settings, [verify] config, package version and code (ARTIFACTS/verify/runs/);
the report's first line names the images whose run was reused. What applies depends on
the image's role (see :data:`ROLE_RULES`): a build-time base (the debootstrap
rootfs, the builder) is where apt, a shell and compilers belong by design, so
those cells are ``n/a`` with the reason, never a silent pass.

The package, by what each module holds: :mod:`.specs` (the columns, roles
and thresholds), :mod:`.targets` (what is examined), :mod:`.parse` (text read
from images and containers), :mod:`.filesystem` (what names in an image mean),
:mod:`.limits` and :mod:`.containers` (the throwaway container run),
:mod:`.secrets` (secrets in config and layers), :mod:`.cache` (what is kept
between runs), :mod:`.checks` (the cells), :mod:`.tables` (the matrix and
``--explain``); this module gathers each image's facts and runs the stage.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

from .. import report, waivers
from ..config import Config
from ..engine import Engine, load_client
from ..errors import InputError
from ..findings import Finding, Rule, Severity
from ..result import Check, Context, Outcome, Result, Table
from .cache import (
    RUN_CELLS,
    cached_tree,
    image_tree,
    load_run,
    run_key,
    save_run,
    tree_entry_matters,
    tree_from_record,
    tree_summary,
)
from .checks import (
    Facts,
    apply_waivers,
    cells,
    check_appfiles,
    check_base,
    check_buildtools,
    check_healthcheck,
    check_healthy,
    check_labels,
    check_privs,
    check_python,
    check_readonly,
    check_secrets,
    check_setuid,
    check_shell,
    check_sigterm,
    check_size,
    check_user,
    check_world_writable,
)
from .containers import RunFacts, health_deadline, host_status, run_container
from .filesystem import executables, python_minors
from .limits import Limits, compose_services, limits_for, repository
from .parse import ProcStatus, arg_defaults, empty_passwords, expand, from_lines, parse_passwd, parse_status, parse_user
from .secrets import (
    FINGERPRINT_HEX,
    cached_layer_secrets,
    layer_secrets,
    read_layer_secrets,
    scan_stage_secrets,
    secrets_in_config,
    trivy_secrets,
)
from .specs import CHECKS, DOCKLE, ROLE_RULES, SPECS, STAYS_HEALTHY_S, TOOL, Role, Spec
from .tables import explain, matrix
from .targets import Options, Target, targets

__all__ = [
    "CHECKS",
    "DOCKLE",
    "FINGERPRINT_HEX",
    "ROLE_RULES",
    "RUN_CELLS",
    "SPECS",
    "Facts",
    "Limits",
    "Options",
    "ProcStatus",
    "Role",
    "RunFacts",
    "Spec",
    "Target",
    "apply_waivers",
    "arg_defaults",
    "cached_layer_secrets",
    "cached_tree",
    "cells",
    "check_appfiles",
    "check_base",
    "check_buildtools",
    "check_healthcheck",
    "check_healthy",
    "check_labels",
    "check_privs",
    "check_python",
    "check_readonly",
    "check_secrets",
    "check_setuid",
    "check_shell",
    "check_sigterm",
    "check_size",
    "check_user",
    "check_world_writable",
    "compose_services",
    "empty_passwords",
    "executables",
    "expand",
    "explain",
    "from_lines",
    "gather",
    "health_deadline",
    "host_status",
    "image_tree",
    "layer_secrets",
    "limits_for",
    "load_run",
    "matrix",
    "parse_passwd",
    "parse_status",
    "parse_user",
    "python_minors",
    "read_layer_secrets",
    "repository",
    "run",
    "run_container",
    "run_key",
    "save_run",
    "scan_stage_secrets",
    "secrets_in_config",
    "targets",
    "tree_entry_matters",
    "tree_from_record",
    "tree_summary",
    "trivy_secrets",
]


def gather(engine: Engine, cfg: Config, t: Target, limits: Limits, *, fresh: bool = False) -> Facts:
    seconds: dict[str, float] = {}
    start = time.monotonic()
    info = engine.image(t.ref)
    history = engine.history(t.ref)
    seconds["inspect"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    tree = image_tree(engine, cfg, info)
    seconds["filesystem"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    run, key, reused = None, "", ""
    if t.role.runs:
        key = run_key(cfg, t, info, limits)
        found = None if fresh else load_run(cfg.project.artifacts, key)
        if found is not None:
            run, reused = found
        else:
            run = run_container(engine, cfg, t, info, limits)
    seconds["container"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    secrets = layer_secrets(cfg, t, info)
    seconds["secrets"] = round(time.monotonic() - start, 2)
    return Facts(t, info, history, tree, run, secrets, seconds, t.name in cfg.verify.stack_only, key, reused)


def _app_time(run: RunFacts | None) -> float:
    if run is None or run.healthy_after is None:
        return 0.0
    return run.healthy_after + STAYS_HEALTHY_S + (run.stop_s or 0.0)


def run(ctx: Context, opts: Options) -> Result:
    if opts.explain:
        return explain()
    cfg = ctx.cfg
    env = cfg.env(opts.env)
    # The environment's own limits, as its Compose files give them to each service: `docker compose
    # config` mostly waits, so it runs while the build record and the ledger are read. An error of
    # those is the one reported, whatever the render does.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose")
    rendering = background.submit(compose_services, ctx, env.name)
    try:
        tgts = targets(cfg, opts)
        if not tgts:
            raise InputError(
                f"the build of {env.name!r} recorded no image to verify",
                hint=f"run `pipelines build --env {env.name}`",
            )
        ledger, problems = waivers.load_ledger(
            cfg.lint.waivers,
            display=report.display_path(cfg.lint.waivers, cfg.root),
            max_days=cfg.lint.waiver_max_days,
            today=dt.date.today(),
        )
        load_client()  # the engine client's imports, while Compose still renders
    except Exception:
        # This error is the one reported; the render is let finish (it cleans up its temp files).
        rendering.exception()
        raise
    finally:
        background.shutdown(wait=False)
    services = rendering.result()
    mine = [w for w in ledger if all(r.startswith("VFY-") for r in w.rules)]
    out_dir = cfg.project.artifacts / "verify" / f"{ctx.stamp()}-{env.name}"
    facts: list[Facts] = []
    timings: dict[str, float] = {}
    with ctx.engine() as engine:
        # Every image by ID before any is examined: a tag moved since the build stops the run (exit 2)
        # before it judges anything.
        tgts = [t.pinned(engine) for t in tgts]
        for t in tgts:
            start = time.monotonic()
            ctx.log(f"verify: {t.name} ({t.named} = {t.ref}) as {t.role.name}")
            facts.append(gather(engine, cfg, t, limits_for(cfg, env.name, t, services), fresh=opts.fresh))
            timings[t.name] = round(time.monotonic() - start, 3)  # ms: a warm image takes a few
    # Only a run that read every image gets a directory.
    out_dir.mkdir(parents=True, exist_ok=True)
    # artifacts/verify/latest: the newest run's reports (CI uploads its SARIF from there).
    latest = out_dir.parent / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out_dir.name)
    pythons = {f.target.name: python_minors(f.tree) for f in facts if f.target.image is not None}
    checks: list[Check] = []
    for f in facts:
        own = cells(f, cfg, pythons)
        # Judged before waivers: a waived run cell is still a failed run, and runs again next time.
        passed = all(c.outcome in (Outcome.PASS, Outcome.NA) for c in own if c.name in RUN_CELLS)
        if f.run is not None and f.run_key and not f.run_reused and not f.run.problem and passed:
            save_run(cfg.project.artifacts, f.run_key, f.run)
        checks += apply_waivers(own, mine)
    reused = [f.target.name for f in facts if f.run_reused]
    notices = [
        f"verify {env.name}: {len(tgts)} images x {len(CHECKS)} checks; containers run read-only, cap_drop ALL, "
        f"no-new-privileges, no network, with the memory/PID/CPU limits and tmpfs mounts of {env.name}'s Compose "
        f"service for the image (else [verify]: {cfg.verify.memory_mb} MB, {cfg.verify.pids} PIDs, 1 CPU)"
    ]
    notices += [f"waiver ledger: {p.message}" for p in problems]
    if not opts.images:
        # Stale means "matched nothing in the whole build": a run on named images sees only part of it.
        notices += [f"waiver ledger: {s.message}" for s in waivers.stale(mine)]
    failed = [c for c in checks if c.outcome is Outcome.FAIL]
    waived = [c for c in checks if c.outcome is Outcome.WAIVED]
    worst = [c for c in checks if c.outcome in (Outcome.FAIL, Outcome.WAIVED)]
    tables = [matrix([t.name for t in tgts], checks)]
    if worst:
        tables.append(
            Table(
                ("image", "check", "result", "value read", "how it was read"),
                tuple((c.group, c.name, c.outcome.value, c.detail, c.evidence) for c in worst),
                "failed and waived cells",
            )
        )
    headline = (
        f"verify {env.name}: {'FAILED' if failed or problems else 'passed'}: {len(tgts)} images, "
        f"{len(checks)} cells: {sum(c.outcome is Outcome.PASS for c in checks)} pass, {len(failed)} fail, "
        f"{len(waived)} waived, {sum(c.outcome is Outcome.NA for c in checks)} n/a"
    )
    if reused:
        headline += (
            f"; container runs reused (unchanged image ID and config, passed before): {', '.join(reused)}"
            " (--fresh runs them again)"
        )
    gated = tuple(p for p in problems if p.severity >= Severity.ERROR)
    record = tgts[0].record
    # The IDs examined (each proven to be the record's before it was): what the verdict is about.
    examined = {f.target.name: f.info.id for f in facts}
    services_built = {b.name for b in record.services} if not opts.images and record is not None else set()
    judged = {n: i for n, i in examined.items() if n in services_built}
    # Failed and waived cells are also findings, so SARIF carries them (one run per image).
    cell_findings = tuple(
        Finding(
            TOOL,
            c.name,
            Severity.ERROR,
            f"{c.group}: {SPECS[c.name].title}: {c.detail}",
            c.group,
            hint=f"evidence: {c.evidence}",
            waived_by="waiver ledger (see evidence)" if c.outcome is Outcome.WAIVED else "",
            waiver_reason=c.detail if c.outcome is Outcome.WAIVED else "",
            extra=(("image", c.group),),
        )
        for c in worst
    )
    return Result(
        stage="verify",
        headline=headline,
        findings=(*problems, *cell_findings),
        rules={
            TOOL: {
                s.id: Rule(
                    s.id, Severity.ERROR, s.title, s.title, f"see `pipelines verify --explain` ({s.column})", TOOL
                )
                for s in CHECKS
            }
        },
        gated=gated,
        checks=tuple(checks),
        notices=tuple(notices),
        tables=tuple(tables),
        timings=timings,
        data={
            "env": env.name,
            "images": [
                {
                    "name": f.target.name,
                    "ref": f.target.named or f.target.ref,
                    "image_id": f.info.id,
                    "role": f.target.role.name,
                    "seconds": timings[f.target.name],
                    # The image's own part of that: start-up to healthy, watched staying healthy, stop.
                    "app_start_s": round(_app_time(f.run), 2),
                    "phases_s": f.seconds,
                    "run_reused_from": f.run_reused,
                }
                for f in facts
            ],
            "columns": [s.__dict__ for s in CHECKS],
            "dockle": [dict(zip(("id", "title", "covered_by"), d, strict=True)) for d in DOCKLE],
        },
        files=tuple(t.name for t in tgts),
        out_dir=out_dir,
        # The recorded build as a whole was judged: its verdict is recorded for exactly these images (deploy's gate).
        env=env.name if judged else "",
        subjects=judged,
    )
