"""Each command as an adapter: parsed flags in, the stage's ``run(context, options)`` called, a Result out.

Adapters print nothing: the boundary renders what they return. ``guarded`` turns an error a stage raises
once its config is read into that stage's Result, so its reports are written like any other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from .. import _proc, result
from .. import config as config_mod
from ..errors import ConfigError, ConfigNotFound, InputError, Interrupted, PipelineError, ToolNotFound
from ..result import Context, Result, Table
from ..tools import Toolchain


def _load(args: argparse.Namespace, *, withhold: bool = True) -> config_mod.Config:
    """The project's config; from here on no child of this command inherits its signing secrets.

    The key's and the password's variables reach cosign only, given explicitly when it signs: Compose
    would interpolate them into containers and rendered files, and no other tool needs them.
    ``withhold=False``: the benchmark, whose children are whole pipeline runs that sign and deploy.
    """
    path = args.config if args.config else config_mod.find_config()
    cfg = config_mod.load(path)
    if withhold:
        _proc.withhold(cfg.signing.secret_variables(getattr(args, "key", None)))
    return cfg


# The context of the command running now: where its reports go when its stage stops on an error.
_MADE: list[Context] = []


def _context(args: argparse.Namespace, tools: Toolchain | None = None) -> Context:
    ctx = Context(_load(args), tools or Toolchain())
    _MADE.append(ctx)
    return ctx


def _probing(*names: str) -> Toolchain:
    """A toolchain already asking the stage's first tool probes while the stage imports and reads its config."""
    tools = Toolchain()
    tools.prefetch(*names)
    return tools


def _stage_config(args: argparse.Namespace) -> tuple[Context | None, Result]:
    try:
        cfg = _load(args)
    except ConfigError as exc:
        # An invalid config is this command's finding: reported in the chosen format, exit 2.
        return None, result.from_error("config", exc)
    # What the PIPELINES_* variables may change, as it took effect: a CI's log shows where its images go.
    rows = tuple((s.key, s.value or "(none)", s.source) for s in cfg.settings)
    return Context(cfg, Toolchain()), Result(
        stage="config",
        headline=f"{cfg.file}: valid",
        notices=tuple(cfg.golden_notices()),
        tables=(Table(("setting", "value", "source"), rows, title="registry and environment"), _images_table(cfg)),
        data={"config": _jsonable(cfg)},
        out_dir=cfg.project.artifacts / "config",
    )


def _images_table(cfg: config_mod.Config) -> Table:
    """Each image, and what defines it: a golden image of the package (by name) or the project's own files."""
    from .. import report

    rows = []
    for img in cfg.images.values():
        if img.context is not None:
            source = report.display_path(img.context, cfg.root)
        else:
            source = f"debootstrap {img.suite} ({img.variant})"
        bases = ", ".join(f"{arg}={base}" for arg, base in img.bases.items())
        python = img.python or "-"
        if img.python_requested and img.python_requested != img.python:
            python += f" ({img.python_requested} requested)"
        debian = f"{img.debian_suite} ({img.debian_status})" if img.debian_status else img.debian_suite or "-"
        rows.append(
            (img.name, "base" if img.is_base else "service", img.golden or "-", source, bases or "-", python, debian)
        )
    return Table(("image", "kind", "golden", "definition", "bases", "python", "debian"), tuple(rows), title="images")


def _stage_init(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import adopt  # imported per command: `pipelines --help` stays fast

    # No config yet (init writes it), so no artifacts directory: the report goes to stdout or --output only.
    return None, adopt.run(adopt.Options(directory=args.directory, force=args.force, dry_run=args.dry_run))


def _stage_harden(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import harden  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    try:
        res = harden.run(ctx, harden.Options(services=tuple(args.services), dry_run=args.dry_run))
    except PipelineError as exc:
        if not args.dry_run:
            raise
        # A dry run writes nothing, not even the report of why it stopped.
        return None, result.from_error("harden", exc)
    # A dry run writes nothing, not even its reports.
    return ctx, res if args.dry_run else replace(res, out_dir=ctx.artifacts / "harden" / ctx.stamp())


def _stage_doctor(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from ..result import Check, Outcome

    tools = Toolchain()
    summary = tools.summary()
    problem: PipelineError | None = None
    try:
        tools.require_build()
        tools.compose_version  # noqa: B018 - raises with a hint when missing
    except ToolNotFound as exc:
        problem = exc
    # What the build needs fails the run; a builder that does not answer is reported only.
    checks = tuple(
        Check(k, Outcome.NA if k == "builder" else Outcome.FAIL, v.removeprefix("unavailable: "), group="toolchain")
        if v.startswith("unavailable: ")
        else Check(k, Outcome.PASS, v, group="toolchain")
        for k, v in summary.items()
    )
    try:
        out_dir: Path | None = _load(args).project.artifacts / "doctor"
    except ConfigError:
        out_dir = None  # the toolchain can be checked before there is a project
    res = Result(
        stage="doctor",
        headline="toolchain: " + ("ready" if problem is None else f"not ready: {problem.what}"),
        checks=checks,
        tables=(Table(("tool", "version"), tuple(summary.items())),),
        data={"tools": summary},
        out_dir=out_dir,
    )
    if problem is not None:
        res = replace(res, error=problem.render().removeprefix("error: "), could_not_run=True)
    return None, res


def _stage_vulndb(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import scan  # imported per command: `pipelines --help` stays fast
    from ..scan import vulndb
    from ..scan.vulndb import oci as vulndb_oci

    if args.vulndb_command == "bundle":
        prov = vulndb.Provenance(args.name, args.repository, args.commit, args.date, args.license, tuple(args.covers))
        records = vulndb.write_bundle(args.source, args.out, prov)
        return None, Result(
            stage="vulndb",
            headline=f"{args.out}: {records} OSV records from {prov.line()}",
            data={"bundle": str(args.out), "records": records, "provenance": prov.line()},
            artifacts=(args.out,),
        )
    if args.vulndb_command == "push":
        ref, digest = vulndb_oci.push(scan.as_cache_dir(args.path), args.to)
        return None, Result(stage="vulndb", headline=f"pushed {ref}@{digest}", data={"ref": ref, "digest": digest})
    notes: list[str] = []  # what was left out or merged: progress on stderr, and in the JSON
    if args.vulndb_command == "build":
        defaults = vulndb.parse_default_severity(args.default_severity, where="--default-severity")
        advisories = vulndb.load_osv(args.source, notes=notes, default_severity=defaults)
        skipped = list(vulndb.iter_notes(notes))
        if not advisories:
            # One error that says why, with what was skipped as its evidence.
            raise InputError(
                f"{args.source}: no advisories Trivy can use (every record was withdrawn, for another "
                "ecosystem, or could not be compared)",
                seen="\n".join(skipped[:20]) or None,
                hint="an empty database would pass every scan; check the directory",
            )
        notes = [f"skipped: {note}" for note in skipped]
        merged: list[str] = []
        info = vulndb.build_db(
            advisories, args.out, source=args.name or str(args.source), covers=args.covers, notes=merged
        )
        # Records of one ID that disagree, Debian entries without a fix.
        notes += [note if note.startswith("warning: ") else f"note: {note}" for note in merged]
        if not info.covers:
            notes.append(
                "note: no --covers: the data declares no ecosystem it covers, so every scan against it "
                "reports COVERAGE LIMITED"
            )
        for note in notes:
            print(note, file=sys.stderr)
    else:
        info = vulndb.read_info(scan.as_cache_dir(args.path))
    newest = f"{info.newest_advisory:%Y-%m-%d}" if info.newest_advisory else "not recorded"
    notices: tuple[str, ...] = ()
    if info.defaulted:
        notices = (
            "rated by the default severity (the records rate nothing): "
            + ", ".join(f"{k} {v}" for k, v in info.defaulted.items()),
        )
    return None, Result(
        stage="vulndb",
        headline=f"{info.path}: schema v{info.schema_version}, {info.advisories} advisories "
        f"({', '.join(f'{k} {v}' for k, v in info.ecosystems.items()) or 'none'}), newest advisory {newest}, "
        f"written {info.updated_at:%Y-%m-%d %H:%M} UTC, source {info.source}; "
        f"declares it covers: {', '.join(info.covers) or 'nothing'}",
        notices=notices,
        data={
            "path": str(info.path),
            "schema_version": info.schema_version,
            "advisories": info.advisories,
            "ecosystems": dict(info.ecosystems),
            "newest_advisory": newest,
            "updated_at": f"{info.updated_at:%Y-%m-%dT%H:%M:%SZ}",
            "source": info.source,
            "covers": list(info.covers),
            "defaulted": dict(info.defaulted),
            "notes": notes,
        },
    )


def _stage_bench(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import bench  # imported per command: `pipelines --help` stays fast

    if args.runs is not None and not args.pipeline:
        raise InputError("--runs applies to `pipelines bench --pipeline` only", hint="add --pipeline or drop --runs")
    if (args.lint_corpus is None) != (args.corpus_manifest is None):
        raise InputError(
            "--lint-corpus CHECKOUTS and --corpus-manifest FILE go together",
            hint="e.g. --lint-corpus /tmp/checkouts --corpus-manifest tests/bench/realworld/manifest.tsv",
        )
    kinds = {"lint-corpus": args.lint_corpus is not None, "lint": args.lint, "scan": args.scan}
    kinds |= {"verify": args.verify, "fleet": args.fleet, "pipeline": args.pipeline, "deploy": args.deploy}
    kind = next((k for k, chosen in kinds.items() if chosen), "build")
    opts = bench.Options(
        kind=kind,
        env=args.env,
        service=args.service,
        out=args.out,
        skip_cold=args.skip_cold,
        runs=args.runs or 3,
        checkouts=args.lint_corpus,
        manifest=args.corpus_manifest,
    )
    if kind == "lint-corpus":
        # A corpus of other projects' files: no pipeline config involved.
        return None, bench.run(None, opts)
    # Its children are pipeline runs that sign and deploy, each withholding the signing secrets itself.
    ctx = Context(_load(args, withhold=False), Toolchain())
    return ctx, bench.run(ctx, opts)


def _stage_render(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import k8s  # imported per command: `pipelines --help` stays fast
    from ..result import Check, Outcome

    ctx = _context(args)
    versions = tuple(v if v.count(".") >= 2 else f"{v}.0" for v in args.k8s_version) or k8s.K8S_VERSIONS
    done = k8s.run(
        ctx.cfg,
        ctx.tools,
        env=args.env,
        out=args.out,
        versions=versions,
        check_schemas=not args.no_validate,
        extra_files=tuple(p.resolve() for p in args.compose_file),
    )
    checked = ", ".join(v.rsplit(".", 1)[0] for v in done.versions) or "not validated (--no-validate)"
    checks = [Check("restricted Pod Security Standard", Outcome.PASS, f"{len(done.objects)} objects", group="k8s")]
    checks += [Check(f"schemas of Kubernetes {v.rsplit('.', 1)[0]}", Outcome.PASS, group="k8s") for v in done.versions]
    return ctx, Result(
        stage="render",
        headline=f"{done.env}: {len(done.objects)} objects in {done.files[0].parent} "
        f"({', '.join(p.name for p in done.files)}); restricted profile: pass; schemas: {checked}; "
        f"{done.seconds:.2f}s",
        checks=tuple(checks),
        artifacts=tuple(done.files),
        timings={"render": round(done.seconds, 3)},
        data={"target": args.target, "env": done.env, "objects": len(done.objects)},
        # Not beside the manifests: a directory of manifests is applied whole (kubectl apply -f DIR).
        out_dir=ctx.artifacts / "render" / f"{ctx.stamp()}-{done.env}",
    )


def _stage_build(args: argparse.Namespace) -> tuple[Context | None, Result]:
    tools = _probing("engine_version", "buildx_version", "builder")
    from .. import build  # imported per command: `pipelines --help` stays fast

    ctx = _context(args, tools)
    return ctx, build.run(
        ctx,
        build.Options(
            env=args.env,
            only=tuple(args.only),
            bases_only=args.bases_only,
            rebuild_bases=args.rebuild_bases,
            refresh_bases=args.refresh_bases,
            no_cache=args.no_cache,
            parallel=args.parallel,
            progress=args.progress,
        ),
    )


def _stage_scan(args: argparse.Namespace) -> tuple[Context | None, Result]:
    tools = _probing("engine_version")
    from .. import scan  # imported per command: `pipelines --help` stays fast

    ctx = _context(args, tools)
    return ctx, scan.run(ctx, scan.Options(env=args.env, images=tuple(args.images), vulndb=args.vulndb))


def _stage_verify(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import verify  # imported per command: `pipelines --help` stays fast

    opts = verify.Options(images=tuple(args.images), env=args.env, explain=args.explain, fresh=args.fresh)
    ctx = _context(args)
    return ctx, verify.run(ctx, opts)


def _stage_smoke(args: argparse.Namespace) -> tuple[Context | None, Result]:
    tools = _probing("compose_version", "engine_version")
    from ..stack import smoke  # imported per command: `pipelines --help` stays fast

    ctx = _context(args, tools)
    return ctx, smoke.run(
        ctx,
        smoke.Options(
            env=args.env,
            keep=args.keep,
            project=args.project,
            deadline_s=args.deadline,
            extra_files=tuple(p.resolve() for p in args.compose_file),
        ),
    )


def _stage_load(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from ..stack import load  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    # Load checks a production-like stack: prod unless --env or PIPELINES_ENV names another.
    named = ctx.cfg.setting("default_env")
    env = args.env or (ctx.cfg.default_env if named and named.source == "PIPELINES_ENV" else "prod")
    return ctx, load.run(
        ctx,
        load.Options(env=env, connections=args.connections, duration_s=args.duration, p99_ms=args.p99_ms),
    )


def _stage_lint(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import lint  # imported per command: `pipelines --help` stays fast

    if args.no_config and args.config is not None:
        raise InputError(
            f"--config {args.config} and --no-config contradict each other",
            hint="drop --no-config to lint with that config, or --config to lint without one",
        )
    cfg = None
    if not args.no_config:
        try:
            cfg = _load(args)
        except ConfigNotFound:
            # Linting named paths works without a config; a broken config still is an error.
            if not args.paths or args.config is not None:
                raise
    if not args.paths and cfg is None:
        raise ConfigError(
            config_mod.DEFAULT_FILE,
            "",
            "not found, and no paths given",
            hint="name files or directories to lint, or run from a project with pipeline.toml",
        )
    opts = lint.Options(
        paths=tuple(args.paths),
        threshold=args.threshold,
        profile=args.profile,
        build_args=tuple(args.build_arg),
        env_file=args.env_file,
    )
    if cfg is None:
        return None, lint.run(None, opts)
    ctx = Context(cfg, Toolchain())
    _MADE.append(ctx)
    return ctx, lint.run(ctx, opts)


def _stage_baseline(args: argparse.Namespace) -> tuple[Context | None, Result]:
    import datetime as dt

    from .. import baseline, lint, report  # imported per command: `pipelines --help` stays fast

    cfg = _load(args)
    if cfg.lint.baseline is None:
        raise ConfigError(str(cfg.file), "lint.baseline", "no baseline file is configured")
    ctx = Context(cfg, Toolchain())
    _MADE.append(ctx)
    runs = {"lint": lint.run(ctx, lint.Options())}
    if args.scan:
        from .. import scan

        runs["scan"] = scan.run(ctx, scan.Options(env=args.env, images=(), vulndb=None))
    for stage, res in runs.items():
        # A baseline of a partial run would accept less than is there and look complete.
        if res.unusable or res.error:
            why = "; ".join([*res.unusable, res.error] if res.error else res.unusable)
            raise InputError(
                f"{stage} could not examine everything, so no baseline was written: {why}",
                hint=f"fix what `pipelines {stage}` reports as unusable, then record the baseline",
            )
    today = dt.date.today()
    display = report.display_path(cfg.lint.baseline, cfg.root)
    previous = baseline.load(cfg.lint.baseline, display)
    written = baseline.write(
        cfg.lint.baseline,
        {stage: res.findings for stage, res in runs.items()},
        today=today,
        days=args.days or cfg.lint.baseline_days,
        previous=previous,
    )
    counts: dict[tuple[str, str], int] = {}
    for e in written.entries:
        counts[(e.stage, e.rule)] = counts.get((e.stage, e.rule), 0) + 1
    rows = tuple((stage, rule, str(n)) for (stage, rule), n in sorted(counts.items()))
    kept = written.by_fingerprint()
    dropped = len([e for e in previous.entries if e.fingerprint not in kept]) if previous else 0
    return ctx, Result(
        stage="baseline",
        headline=f"{display}: {sum(e.count for e in written.entries)} findings accepted in {len(written.entries)} "
        "entries ("
        + ", ".join(f"{stage} {sum(e.count for e in written.entries if e.stage == stage)}" for stage in runs)
        + f"); new ones until {today + dt.timedelta(days=args.days or cfg.lint.baseline_days)}"
        + (f"; {dropped} gone, dropped" if dropped else ""),
        tables=(Table(("stage", "rule", "findings"), rows, "accepted"),),
        data={"file": display, "entries": [e.to_json() for e in written.entries]},
        artifacts=(cfg.lint.baseline,),
        out_dir=cfg.project.artifacts / "baseline",
    )


def _stage_keys(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import cosign  # imported per command: `pipelines --help` stays fast

    password_env, cfg = "COSIGN_PASSWORD", None
    try:
        cfg = _load(args)
        password_env = cfg.signing.password_env
        _MADE.append(Context(cfg, Toolchain()))
    except ConfigError as exc:
        # Keys can be made before there is a project; a broken config still is an error.
        if args.config is not None or not exc.problem.startswith("not found"):
            raise
    out = args.out.expanduser().resolve()
    if cfg is not None:
        cosign.private_key_location(str(out / "cosign.key"), cfg.root)
    pair = cosign.generate_keys(out, os.environ.get(password_env, ""))
    rows = (
        ("private", str(pair.private), f"encrypted with ${password_env}; keep it out of the repository"),
        ("public", str(pair.public), "set [signing].public_key; it may be committed"),
    )
    return (Context(cfg, Toolchain()) if cfg is not None else None), Result(
        stage="keys",
        headline=f"cosign key pair written to {out}",
        tables=(Table(("key", "file", "what to do with it"), rows),),
        artifacts=(pair.private, pair.public),
        data={"private_key": str(pair.private), "public_key": str(pair.public), "password_env": password_env},
        out_dir=cfg.project.artifacts / "keys" if cfg is not None else None,
    )


def _stage_sign(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import signing  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    return ctx, signing.run_sign(ctx, signing.Options(env=args.env, key=args.key, public_key=args.public_key))


def _stage_verify_signatures(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import signing  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    return ctx, signing.run_verify(ctx, signing.Options(env=args.env, public_key=args.public_key))


def _stage_deploy(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import deploy  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    opts = deploy.Options(
        env=args.env,
        state=args.state,
        engine=args.engine,
        wait=args.wait,
        replace_stateful=tuple(args.replace_stateful),
        public_key=args.public_key,
        project=args.project,
        extra_files=tuple(p.resolve() for p in args.compose_file),
        expect_commit=args.expect_commit,
        key=args.key,
    )
    return ctx, deploy.run(ctx, opts)


def _stage_rollback(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import deploy  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    opts = deploy.RollbackOptions(
        env=args.env,
        state=args.state,
        engine=args.engine,
        wait=args.wait,
        replace_stateful=tuple(args.replace_stateful),
        public_key=args.public_key,
        to=args.to,
    )
    return ctx, deploy.run_rollback(ctx, opts)


def _stage_releases(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .. import deploy  # imported per command: `pipelines --help` stays fast
    from ..deploy import releases

    ctx = _context(args)
    return ctx, deploy.run_releases(ctx, releases.ReleasesOptions(env=args.env, state=args.state, limit=args.limit))


STAGES: dict[str, Callable[[argparse.Namespace], tuple[Context | None, Result]]] = {
    "bench": _stage_bench,
    "config": _stage_config,
    "init": _stage_init,
    "harden": _stage_harden,
    "baseline": _stage_baseline,
    "vulndb": _stage_vulndb,
    "doctor": _stage_doctor,
    "keys": _stage_keys,
    "render": _stage_render,
    "build": _stage_build,
    "lint": _stage_lint,
    "scan": _stage_scan,
    "verify": _stage_verify,
    "smoke": _stage_smoke,
    "load": _stage_load,
    "sign": _stage_sign,
    "verify-signatures": _stage_verify_signatures,
    "deploy": _stage_deploy,
    "releases": _stage_releases,
    "rollback": _stage_rollback,
}


def guarded(args: argparse.Namespace) -> tuple[Context | None, Result]:
    """Run the stage; one that stops on an error still has a Result, so its reports are written.

    Errors before the stage has its config (a missing or invalid pipeline.toml, a contradictory flag)
    are raised as they are: there is no artifacts directory to report into yet.
    """
    _MADE.clear()
    try:
        return STAGES[args.command](args)
    except Interrupted:
        raise
    except PipelineError as exc:
        if not _MADE:
            raise
        ctx = _MADE[-1]
        return ctx, result.from_error(args.command, exc, out_dir=ctx.artifacts / args.command / f"{ctx.stamp()}-error")
    finally:
        _MADE.clear()


def _jsonable(obj: object) -> object:
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):  # frozen mappings (MappingProxyType) too
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bytes):  # a request body: shown as written when it is text
        return obj.decode("utf-8", errors="backslashreplace")
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)  # enums, dates, severities: as the user writes them
