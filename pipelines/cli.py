"""The ``pipelines`` command: one subcommand per stage.

This is the one boundary where a :class:`PipelineError` becomes a message on
stderr and an exit code: 0 success, 1 the stage said no, 2 it could not run,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import __version__, _proc, bench, build, lint, load, report, scan, smoke, vulndb
from . import config as config_mod
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ConfigError, PipelineError
from .tools import Toolchain

DESCRIPTION = """\
Build, check and ship hardened container images of Python services.

Every stage reads one validated config (pipeline.toml, found in the current
directory or a parent; --config to name another).

stages:
  lint       Hadolint plus the project's Dockerfile and Compose hardening policy
  build      golden base images from Debian packages, then every service, with BuildKit
  scan       Trivy (and Snyk) on the built images; HIGH/CRITICAL gate, waivers, SBOM, SARIF
  vulndb     build an offline vulnerability database from OSV advisories
  smoke      bring an environment's Compose stack up, probe it end to end, tear it down
  config     validate the config and print it resolved, as JSON
  doctor     report the Docker engine, buildx, compose and builder versions
  load       drive the API inside the prod stack with wrk: requests/s, p50/p99, errors
  bench      measure builds and image sizes (--lint, --scan: those stages' speed)

exit codes: 0 ok, 1 the stage failed (build error, gate closed), 2 it could not
run (bad config, missing tool, engine or registry down), 130 interrupted.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pipelines", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"pipelines {__version__}")
    p.add_argument("--config", type=Path, help="pipeline config file (default: nearest pipeline.toml)")
    sub = p.add_subparsers(dest="command", metavar="STAGE", required=True)

    b = sub.add_parser(
        "build",
        help="build base images and services",
        description="Build the golden base images (reused from the lock while their inputs are "
        "unchanged) and then every service, for one environment. Writes "
        "ARTIFACTS/build/ENV.json for later stages.",
    )
    b.add_argument("--env", help="environment from the config (default: the config's default_env)")
    b.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="NAME",
        help="build only these images/services (and the bases they need)",
    )
    b.add_argument("--bases-only", action="store_true", help="build only the golden base images")
    b.add_argument("--rebuild-bases", action="store_true", help="rebuild base images even when the lock matches")
    b.add_argument("--no-cache", action="store_true", help="do not use BuildKit's cache")
    b.add_argument("--parallel", type=int, metavar="N", help="images built at once (default: build.parallel)")
    b.add_argument("--progress", choices=config_mod.PROGRESS_MODES, help="BuildKit progress output")

    li = sub.add_parser(
        "lint",
        help="lint Dockerfiles and Compose files",
        description="Without paths: lint everything the config declares (every image's Dockerfile with the build "
        "args the pipeline passes, every environment's merged Compose config) and write "
        "lint.{json,sarif,junit.xml,md} under ARTIFACTS/lint. With paths: lint those Dockerfiles, Compose files "
        "or directories, with or without a config. Exit 0 clean, 1 findings at or above the threshold, 2 could "
        "not run.",
    )
    li.add_argument("paths", nargs="*", type=Path, help="Dockerfiles, Compose files or directories")
    li.add_argument(
        "--format",
        choices=("table", "json", "sarif", "junit", "markdown"),
        default="table",
        help="report format on stdout (default: table)",
    )
    li.add_argument("--output", type=Path, help="write the report to this file instead of stdout")
    li.add_argument(
        "--threshold",
        choices=("error", "warning", "info", "style"),
        help="lowest severity that fails (default: lint.threshold, else warning)",
    )
    li.add_argument(
        "--profile", choices=("prod", "dev"), help="Dockerfile strictness: prod requires digests on FROM (default)"
    )
    li.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value for a build arg used in FROM, when linting paths",
    )
    li.add_argument("--no-config", action="store_true", help="ignore pipeline.toml even if one is found")

    sm = sub.add_parser(
        "smoke",
        help="bring an environment's stack up and probe it end to end",
        description="Render and validate the environment's Compose config, bring it up under a unique project "
        "name with the images the last build produced, wait for every service to be healthy (one-shot jobs must "
        "exit 0), run the end-to-end probes, and always tear everything down (containers, networks, volumes). "
        "Reports and logs go to ARTIFACTS/smoke/PROJECT/.",
    )
    sm.add_argument("--env", help="environment (default: the config's default_env)")
    sm.add_argument("--keep", action="store_true", help="leave the stack up for debugging")
    sm.add_argument("--project", help="Compose project name (default: pipelines-smoke-ENV-RANDOM)")
    sm.add_argument(
        "--compose-file",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="an extra overlay on top of the environment's files",
    )
    sm.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long the stack may take to become healthy (default: 120)",
    )

    ld = sub.add_parser(
        "load",
        help="load-check the API inside a running stack",
        description="Bring the environment's stack up, seed documents, drive GET /documents/{id} from loopback "
        "with wrk at a fixed concurrency for a bounded time, tear down, and report requests/s, p50/p90/p99 "
        "latency and errors (JSON and Markdown under ARTIFACTS/load). Exit 1 when the targets are missed.",
    )
    ld.add_argument("--env", default="prod", help="environment (default: prod)")
    ld.add_argument("--connections", type=int, default=50, help="concurrent connections (default: 50)")
    ld.add_argument("--duration", type=int, default=10, metavar="SECONDS", help="how long to drive (default: 10)")
    ld.add_argument("--p99-ms", type=float, default=100.0, help="p99 latency target in ms (default: 100)")

    sc = sub.add_parser(
        "scan",
        help="scan built images with Trivy (and Snyk), gate on HIGH/CRITICAL",
        description="Scan every service image the last build of ENV produced (or the local images named) with "
        "one Trivy run each (vulnerabilities, secrets, all packages listed), the Dockerfiles with trivy config, "
        "and Snyk when SNYK_TOKEN and the snyk CLI are present. Fails closed when no vulnerability database can "
        "be had. Writes raw JSON, CycloneDX SBOMs, SARIF per image, JUnit, Markdown and a generated Trivy "
        "ignore file under ARTIFACTS/scan/RUN/. Exit 0 passed, 1 gate failed, 2 could not scan.",
    )
    sc.add_argument("images", nargs="*", help="local image references (default: the images of the last build)")
    sc.add_argument("--env", help="environment: its build and its gate settings (default: default_env)")
    sc.add_argument(
        "--vulndb", type=Path, metavar="PATH", help="use this Trivy DB (a cache dir with db/trivy.db) and nothing else"
    )

    vd = sub.add_parser(
        "vulndb",
        help="build or inspect an offline vulnerability database",
        description="Build a Trivy-compatible vulnerability database from OSV advisories "
        "(air-gapped sites, internal advisories), or show what a database holds.",
    )
    vsub = vd.add_subparsers(dest="vulndb_command", metavar="ACTION", required=True)
    vb = vsub.add_parser(
        "build",
        help="build a DB from OSV JSON files",
        description="Read every *.json OSV advisory under DIR (Debian and PyPI ecosystems) and "
        "write OUT/db/trivy.db and OUT/db/metadata.json; use it with `scan --vulndb OUT`.",
    )
    vb.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR", help="directory of OSV files")
    vb.add_argument("--out", type=Path, required=True, metavar="PATH", help="cache directory to write")
    vi = vsub.add_parser("info", help="show what a DB holds", description="Check a DB and print its metadata.")
    vi.add_argument("path", type=Path, help="cache directory (with db/trivy.db)")

    sub.add_parser(
        "config",
        help="validate the config and print it as JSON",
        description="Validate the config and print the resolved result as JSON; exit 2 when invalid.",
    )
    sub.add_parser(
        "doctor",
        help="check the container toolchain",
        description="Report the versions of the Docker engine, buildx, compose and the active builder; "
        "exit 2 when something the build needs is missing.",
    )

    bn = sub.add_parser(
        "bench",
        help="benchmark builds and image sizes",
        description="Cold build of everything (bases rebuilt, no cache), a no-change rebuild, a "
        "rebuild after a one-line source change, and image sizes; JSON and Markdown results.",
    )
    bn.add_argument("--env", help="environment to build (default: the config's default_env)")
    bn.add_argument("--service", help="service whose source gets the one-line change (default: the first)")
    bn.add_argument("--out", type=Path, help="directory for bench.json and bench.md (default: ARTIFACTS/bench)")
    bn.add_argument("--skip-cold", action="store_true", help="skip the cold build (keep caches and bases)")
    bn.add_argument("--lint", action="store_true", help="benchmark `pipelines lint` over the project instead")
    bn.add_argument("--scan", action="store_true", help="benchmark `pipelines scan` (cold and warm) instead")
    return p


def _load(args: argparse.Namespace) -> config_mod.Config:
    path = args.config if args.config else config_mod.find_config()
    return config_mod.load(path)


def _run(args: argparse.Namespace) -> int:
    if args.command == "config":
        cfg = _load(args)
        print(json.dumps(_jsonable(cfg), indent=2, default=str))
        return EXIT_OK
    if args.command == "doctor":
        tools = Toolchain()
        for k, v in tools.summary().items():
            print(f"{k:8} {v}")
        tools.require_build()
        tools.compose_version  # noqa: B018 - raises with a hint when missing
        return EXIT_OK
    if args.command == "lint":
        return _lint(args)
    if args.command == "scan":
        cfg = _load(args)
        outcome = scan.run(cfg, Toolchain(), env=args.env, images=args.images, explicit_db=args.vulndb)
        print(f"reports: {outcome.run_dir}", file=sys.stderr)
        return EXIT_FAILED if outcome.failed else EXIT_OK
    if args.command == "vulndb":
        if args.vulndb_command == "build":
            notes: list[str] = []
            if not args.source.is_dir():
                raise ConfigError(str(args.source), "", "is not a directory of OSV files")
            advisories = vulndb.load_osv(args.source, notes=notes)
            info = vulndb.build_db(advisories, args.out, source=str(args.source))
            for n in notes:
                print(f"skipped: {n}", file=sys.stderr)
        else:
            info = vulndb.read_info(scan.as_cache_dir(args.path))
        print(
            f"{info.path}: schema v{info.schema_version}, {info.advisories} advisories, "
            f"updated {info.updated_at:%Y-%m-%d %H:%M} UTC, source {info.source}"
        )
        return EXIT_OK
    if args.command == "load":
        cfg = _load(args)
        load.run(
            cfg,
            load.Options(env=args.env, connections=args.connections, duration_s=args.duration, p99_ms=args.p99_ms),
            Toolchain(),
        )
        return EXIT_OK
    if args.command == "smoke":
        cfg = _load(args)
        smoke.run(
            cfg,
            smoke.Options(
                env=args.env,
                keep=args.keep,
                project=args.project,
                deadline_s=args.deadline,
                extra_files=tuple(p.resolve() for p in args.compose_file),
            ),
            Toolchain(),
        )
        return EXIT_OK
    if args.command == "build":
        cfg = _load(args)
        build.run(
            cfg,
            build.Options(
                env=args.env,
                only=tuple(args.only),
                bases_only=args.bases_only,
                rebuild_bases=args.rebuild_bases,
                no_cache=args.no_cache,
                parallel=args.parallel,
                progress=args.progress,
            ),
            Toolchain(),
        )
        return EXIT_OK
    if args.command == "bench":
        cfg = _load(args)
        if args.lint:
            bench.run_lint(cfg, out=args.out)
            return EXIT_OK
        if args.scan:
            bench.run_scan(cfg, Toolchain(), env=args.env, out=args.out)
            return EXIT_OK
        bench.run(cfg, Toolchain(), env=args.env, service=args.service, out=args.out, skip_cold=args.skip_cold)
        return EXIT_OK
    raise AssertionError(args.command)


def _lint(args: argparse.Namespace) -> int:
    cfg = None
    if not args.no_config:
        try:
            cfg = _load(args)
        except ConfigError as exc:
            # Linting named paths works without a config; a broken config still is an error.
            if args.paths and args.config is None and exc.problem.startswith("not found"):
                cfg = None
            else:
                raise
    if not args.paths and cfg is None:
        raise ConfigError(
            config_mod.DEFAULT_FILE,
            "",
            "not found, and no paths given",
            hint="name files or directories to lint, or run from a project with pipeline.toml",
        )
    root = cfg.root if cfg is not None else Path.cwd()
    settings = lint.settings_from_config(cfg, root, threshold=args.threshold, profile=args.profile)
    build_args = dict(a.split("=", 1) for a in args.build_arg if "=" in a)
    if args.paths:
        dockerfiles, composes = lint.targets_from_paths(args.paths, root, settings.profile, build_args)
    else:
        assert cfg is not None
        dockerfiles, composes = lint.targets_from_config(cfg)
    res = lint.run(dockerfiles, composes, settings, Toolchain())
    if cfg is not None and not args.paths:
        out_dir = cfg.project.artifacts / "lint"
        lint.write_all(res, out_dir)
        report.step_summary(lint.markdown(res))
    lint.emit(res, args.format, args.output)
    return EXIT_FAILED if res.failed else EXIT_OK


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
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except PipelineError as exc:
        print(exc.render(), file=sys.stderr)
        if exc.exit_code == EXIT_INTERRUPTED:
            _proc.stop_all()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: stopping child processes", file=sys.stderr)
        _proc.stop_all()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
