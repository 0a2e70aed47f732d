"""The ``pipelines`` command: one subcommand per stage.

This is the one boundary where results and errors become output and exit
codes: 0 success, 1 the stage said no, 2 it could not run, 3 a bug in the
pipeline (the traceback goes to a log file, never to the user as a verdict),
130 interrupted. Stages return a :class:`~pipelines.result.Result`; the
renderer writes it in every format and this module decides the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from . import __version__, _proc, inputs, render, report, result
from . import config as config_mod
from .errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    ConfigNotFound,
    InputError,
    Interrupted,
    PipelineError,
    ToolNotFound,
)
from .result import Context, Result
from .tools import Toolchain

DESCRIPTION = """\
Build, check and ship hardened container images of Python services.

Every stage reads one validated config (pipeline.toml, found in the current
directory or a parent; --config to name another).

stages:
  lint       Hadolint plus the project's Dockerfile and Compose hardening policy
  build      golden base images from Debian packages, then every service, with BuildKit
  scan       Trivy (and Snyk) on the built images; HIGH/CRITICAL gate, waivers, SBOM, SARIF
  verify     the hardening matrix: every image's user, privileges, files, health, secrets, base
  vulndb     build an offline vulnerability database from OSV advisories
  smoke      bring an environment's Compose stack up, probe it end to end, tear it down
  config     validate the config and print it resolved, as JSON
  doctor     report the Docker engine, buildx, compose and builder versions
  load       drive the [load] service inside a stack with wrk: requests/s, p50/p99, errors
  bench      measure builds and image sizes (--lint, --scan, --verify: those stages' speed; --deploy: zero downtime)
  sign       sign the scanned images of an environment with cosign (offline, key-based)
  verify-signatures  check every image of an environment against the public key
  keys       generate a cosign key pair (outside the project)
  render     render k8s: Kubernetes manifests of an environment (restricted Pod Security Standard)
  deploy     roll an environment's verified, signed images out, health-gated, with automatic rollback
  releases   list an environment's release history
  rollback   put an earlier release of an environment back

exit codes: 0 ok, 1 the stage failed (build error, gate closed), 2 it could not
run (bad config or input, missing tool, engine or registry down), 3 a bug in
pipelines itself (details in ARTIFACTS/logs/crash-*.log), 130 interrupted.
"""


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse turns the error into exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _overlay_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compose-file",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="an extra overlay on top of the environment's files",
    )


def _report_flags(p: argparse.ArgumentParser, default_format: str = "table") -> None:
    p.add_argument(
        "--format",
        choices=render.FORMATS,
        default=default_format,
        help=f"report format on stdout (default: {default_format}); every format is also written under ARTIFACTS",
    )
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE instead of stdout")


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
    b.add_argument(
        "--refresh-bases",
        action="store_true",
        help="rebuild the bases and services with pending Debian security updates (and what is built on them)",
    )
    b.add_argument("--no-cache", action="store_true", help="do not use BuildKit's cache")
    b.add_argument("--parallel", type=int, metavar="N", help="images built at once (default: build.parallel)")
    b.add_argument("--progress", choices=config_mod.PROGRESS_MODES, help="BuildKit progress output")
    _report_flags(b)

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
    _report_flags(li)
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
    li.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="variables for Compose files, as `docker compose --env-file` (default: the .env beside each file)",
    )

    sm = sub.add_parser(
        "smoke",
        help="bring an environment's stack up and probe it end to end",
        description="Render and validate the environment's Compose config, bring it up under a unique project "
        "name with the images the last build produced and fresh secrets, wait for every service to be healthy "
        "(one-shot jobs must exit 0), run the HTTP probes of [[smoke.probes]] and the project's own pytest suite "
        "([smoke].suite, with the pipelines.testing plugin), and always tear everything down (containers, "
        "networks, volumes). Reports and logs go to ARTIFACTS/smoke/PROJECT/.",
    )
    sm.add_argument("--env", help="environment (default: the config's default_env)")
    sm.add_argument("--keep", action="store_true", help="leave the stack up for debugging")
    sm.add_argument("--project", help="Compose project name (default: pipelines-smoke-ENV-RANDOM)")
    _overlay_flag(sm)
    sm.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="how long the stack may take to become healthy (default: [smoke].deadline, else 120)",
    )
    _report_flags(sm)

    ld = sub.add_parser(
        "load",
        help="load-check the API inside a running stack",
        description="Bring the environment's stack up, run the project's seed test ([load].seed) if any, drive "
        "the paths of [load] (and those the seed handed over) on the [load].service from loopback with wrk at a "
        "fixed concurrency for a bounded time, tear down, and report requests/s, p50/p90/p99 latency and errors "
        "(reports under ARTIFACTS/load). Exit 1 when the targets are missed.",
    )
    ld.add_argument("--env", default="prod", help="environment (default: prod)")
    ld.add_argument("--connections", type=int, help="concurrent connections (default: [load].connections)")
    ld.add_argument("--duration", type=int, metavar="SECONDS", help="how long to drive (default: [load].duration)")
    ld.add_argument("--p99-ms", type=float, help="p99 latency target in ms (default: [load].p99_ms)")
    _report_flags(ld)

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
    _report_flags(sc)

    ve = sub.add_parser(
        "verify",
        help="prove the hardening of every built image, cell by cell",
        description="For every image of the last build of ENV (or the local images named), one row of the "
        "hardening matrix: numeric non-root user (also PID 1's effective IDs), no capabilities, NoNewPrivs, "
        "seccomp, no shell or package manager in runtime images, no compilers or VCS clients, no setuid or "
        "world-writable files, application files not writable by the runtime user, an exec-form healthcheck "
        "that turns healthy within its start period with a read-only root, a stop within 2 s of SIGTERM, no "
        "secrets in ENV, labels, history or layers, bases pinned by digest, OCI labels, the size budget and one "
        "Python minor version in builder and runtime. Each cell is pass, fail, waived or n/a with the value "
        "read and how. Reports under ARTIFACTS/verify/RUN/. Exit 0 passed, 1 an unwaived fail, 2 could not run.",
    )
    ve.add_argument("images", nargs="*", help="local image references (default: the images of the last build)")
    ve.add_argument("--env", help="environment whose build is verified (default: default_env)")
    ve.add_argument("--explain", action="store_true", help="list the checks, roles and the Dockle mapping, run nothing")
    ve.add_argument(
        "--fresh",
        action="store_true",
        help="run every throwaway container again (default: a run whose cells passed is reused for the same image "
        "ID, run settings, [verify] config, package version and code; the headline names such images)",
    )
    _report_flags(ve)

    vd = sub.add_parser(
        "vulndb",
        help="build or inspect an offline vulnerability database",
        description="Build a Trivy-compatible vulnerability database from OSV advisories "
        "(air-gapped sites, internal advisories), or show what a database holds.",
    )
    vsub = vd.add_subparsers(dest="vulndb_command", metavar="ACTION", required=True)
    vb = vsub.add_parser(
        "build",
        help="build a DB from OSV files (JSON or YAML)",
        description="Read every OSV advisory (*.json, *.yaml, *.yml) under DIR (Debian and PyPI ecosystems) "
        "and write OUT/db/trivy.db and OUT/db/metadata.json; use it with `scan --vulndb OUT`. A directory "
        "that yields no advisory is an error.",
    )
    vb.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR", help="directory of OSV files")
    vb.add_argument("--out", type=Path, required=True, metavar="PATH", help="cache directory to write")
    vb.add_argument(
        "--default-severity",
        action="append",
        default=[],
        metavar="ECOSYSTEM=LEVEL",
        help="severity of records that rate nothing, per ecosystem (Debian, PyPI; default HIGH); repeatable",
    )
    vb.add_argument("--name", metavar="TEXT", help="how reports name this data (default: the directory)")
    vb.add_argument(
        "--covers",
        action="append",
        default=[],
        metavar="ECOSYSTEM",
        help="an ecosystem the advisories cover in full (PyPI, Debian:12); repeatable. Scans count only "
        "declared ecosystems as covered: one advisory for an ecosystem is not coverage of it",
    )
    vi = vsub.add_parser("info", help="show what a DB holds", description="Check a DB and print its metadata.")
    vi.add_argument("path", type=Path, help="cache directory (with db/trivy.db)")
    vp = vsub.add_parser(
        "push",
        help="publish a DB to a registry as Trivy's OCI artifact",
        description="Publish the DB under PATH as the OCI artifact Trivy downloads (one db.tar.gz layer), "
        "so scans can pull it with scan.db_repositories (Trivy's --db-repository). Plain HTTP for "
        "loopback registries, HTTPS otherwise; anonymous push only.",
    )
    vp.add_argument("path", type=Path, help="cache directory (with db/trivy.db)")
    vp.add_argument("--to", required=True, metavar="REGISTRY/REPO[:TAG]", help="where to publish (tag default: 2)")
    vbu = vsub.add_parser(
        "bundle",
        help="pack OSV files into an offline bundle",
        description="Validate every OSV file under DIR and pack them, unchanged, with their provenance into "
        "one gzip'd JSON file, to move a snapshot around (the scan reads an OSV directory: scan.offline_advisories).",
    )
    vbu.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR", help="directory of OSV files")
    vbu.add_argument("--out", type=Path, required=True, metavar="FILE", help="bundle file to write")
    for flag, what in (
        ("--name", "the data's name"),
        ("--repository", "where it comes from"),
        ("--commit", "the source commit"),
        ("--date", "the commit's date (YYYY-MM-DD)"),
        ("--license", "its license"),
    ):
        vbu.add_argument(flag, required=True, help=what)
    vbu.add_argument(
        "--covers",
        action="append",
        default=[],
        metavar="ECOSYSTEM",
        help="an ecosystem the data covers in full (PyPI, Debian:12); repeatable; recorded in the provenance",
    )

    cf = sub.add_parser(
        "config",
        help="validate the config and print it as JSON",
        description="Validate the config and print the resolved result as JSON (its `config` key); exit 2 when "
        "invalid.",
    )
    _report_flags(cf, "json")
    dr = sub.add_parser(
        "doctor",
        help="check the container toolchain",
        description="Report the versions of the Docker engine, buildx, compose and the active builder; "
        "exit 2 when something the build needs is missing.",
    )
    _report_flags(dr)

    bn = sub.add_parser(
        "bench",
        help="benchmark builds and image sizes",
        description="Cold build of everything (bases rebuilt, no cache), a no-change rebuild, a "
        "rebuild after a one-line source change, and image sizes; JSON and Markdown results.",
    )
    bn.add_argument("--env", help="environment to build (default: the config's default_env)")
    bn.add_argument("--service", help="service whose source gets the one-line change (default: the first)")
    bn.add_argument(
        "--out",
        type=Path,
        help="directory for NAME.json and NAME.md (bench.json, lint.json, ...; default: ARTIFACTS/bench); every "
        "report format under OUT/reports/NAME",
    )
    bn.add_argument("--skip-cold", action="store_true", help="skip the cold build (keep caches and bases)")
    bn.add_argument("--lint", action="store_true", help="benchmark `pipelines lint` over the project instead")
    bn.add_argument(
        "--lint-corpus",
        type=Path,
        metavar="CHECKOUTS",
        help="lint the real-world corpus listed by --corpus-manifest, read from CHECKOUTS/OWNER/NAME (checked out "
        "beforehand at the listed commits; nothing is fetched) and report tracebacks, refused files, time per "
        "file, precision and recall against the labels beside the manifest",
    )
    bn.add_argument(
        "--corpus-manifest",
        type=Path,
        metavar="FILE",
        help="the corpus's manifest (name, repository, path, commit, files beside; labels.tsv beside it)",
    )
    bn.add_argument("--scan", action="store_true", help="benchmark `pipelines scan` (cold and warm) instead")
    bn.add_argument("--verify", action="store_true", help="benchmark `pipelines verify` per image (cold and warm)")
    bn.add_argument(
        "--pipeline",
        action="store_true",
        help="nox's own cost: `./noxw -s lint` vs its commands, `./noxw -s build scan verify smoke` vs its tools "
        "(and smoke's up to all healthy)",
    )
    bn.add_argument(
        "--runs",
        type=_positive_int,
        metavar="N",
        help="with --pipeline: how many times each is run; checks judge the median (default: 3)",
    )
    bn.add_argument(
        "--fleet", action="store_true", help="cold builds of 1, 2, 5 and 10 copies of a service: one bake vs one each"
    )
    bn.add_argument(
        "--deploy",
        action="store_true",
        help="constant load on the [bench.deploy] front door during a good and a bad `pipelines deploy`: "
        "failed requests, deploy time, gate verdict to rollback",
    )
    _report_flags(bn)
    _signing_parsers(sub)

    rd = sub.add_parser(
        "render",
        help="render an environment for another platform (k8s: Kubernetes manifests)",
        description="k8s: turn the environment's merged Compose config, its recorded build (images by digest when "
        "pushed) and the images' own config (numeric user, healthcheck, ports) into Kubernetes manifests held to "
        "the restricted Pod Security Standard: manifests.yaml, secrets.yaml (no values) and provenance.json "
        "(where every field came from). Byte-identical for identical input; validated offline against the "
        "schemas of several Kubernetes versions. Exit 2 on what cannot be rendered, naming service and key.",
    )
    rd.add_argument("target", choices=("k8s",), help="what to render")
    rd.add_argument("--env", help="environment (default: the config's default_env)")
    rd.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: ARTIFACTS/k8s/ENV)")
    rd.add_argument(
        "--k8s-version",
        action="append",
        default=[],
        metavar="X.Y",
        help="validate against this Kubernetes version's schemas; repeatable (default: 1.30 and 1.33)",
    )
    rd.add_argument("--no-validate", action="store_true", help="skip the offline schema validation")
    _report_flags(rd)
    _overlay_flag(rd)
    _deploy_parsers(sub)
    return p


def _deploy_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dp = sub.add_parser(
        "deploy",
        help="roll an environment's images out, health-gated, with automatic rollback",
        description="Deploy the images of ENV's recorded build by digest, only when its scan, verify and smoke "
        "verdicts passed for exactly those images and every image's signature verifies (an environment with "
        "promote_from deploys the live release of that environment instead). One-shot jobs run first; each "
        "changed service is rolled (new containers beside the old, health-gated, then the old stopped); stateful "
        "services are kept unless --replace-stateful names them. A failed gate restores the previous release "
        "(exit 1); Ctrl-C does the same (exit 130). One deploy per environment at a time: a second one waits, "
        "then decides what to deploy. The release record is signed with the signing key ([signing].key).",
    )
    rs = sub.add_parser(
        "releases",
        help="list an environment's release history",
        description="The releases of ENV, newest first: id, status, when, commit, images by digest, config hash, "
        "where they came from and who deployed them.",
    )
    rb = sub.add_parser(
        "rollback",
        help="put an earlier release back",
        description="Restore an earlier release of ENV (default: the one that served before the live one) with "
        "the same health-gated rollout; the restored release's recorded Compose file is used as it was. Its "
        "images' signatures are verified again first (refused, exit 1, when they no longer hold).",
    )
    for p in (dp, rs, rb):
        p.add_argument("--env", help="environment (default: the config's default_env)")
        p.add_argument("--state", type=Path, metavar="DIR", help="release history directory (default: [deploy].state)")
        _report_flags(p)
    for p in (dp, rb):
        p.add_argument("--engine", choices=("compose", "swarm"), default="compose", help="where (default: compose)")
        p.add_argument("--wait", type=float, metavar="SECONDS", help="how long to wait for another deploy's lock")
        p.add_argument(
            "--replace-stateful",
            action="append",
            default=[],
            metavar="SERVICE",
            help="replace this stateful service too (stop, start, health gate: downtime); repeatable",
        )
    for p in (dp, rb):
        p.add_argument(
            "--public-key", metavar="PUB", help="public key file or env://VAR (default: [signing].public_key)"
        )
    dp.add_argument("--project", help="Compose project name (default: the live release's, else PROJECT-ENV)")
    dp.add_argument(
        "--expect-commit",
        metavar="SHA",
        help="the full commit the release must be of (what the approvers saw); another commit is refused (exit 1)",
    )
    dp.add_argument(
        "--key",
        metavar="KEY",
        help="private key that signs the release record: file or env://VAR (default: [signing].key)",
    )
    _overlay_flag(dp)
    rb.add_argument("--to", metavar="RELEASE", help="the release to restore, e.g. r3")
    rs.add_argument("--limit", type=int, default=0, metavar="N", help="show only the newest N releases")


def _signing_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sg = sub.add_parser(
        "sign",
        help="sign an environment's scanned images with cosign",
        description="Sign every service image of ENV's recorded (pushed) build by digest with the cosign key of "
        "[signing].key, offline (no transparency log), and attach the scan verdict and the CycloneDX SBOM as "
        "signed attestations. Refused (exit 1) unless the last scan passed for exactly these images. The key's "
        "password is read from [signing].password_env (default COSIGN_PASSWORD).",
    )
    vs = sub.add_parser(
        "verify-signatures",
        help="verify every image of an environment against the public key",
        description="Check each service image of ENV's recorded build: a signature by the key of "
        "[signing].public_key and (with [signing].attest) a passing scan verdict and an SBOM attested with it. "
        "Exit 1 names every unsigned or wrongly signed image; 2 when the registry does not answer.",
    )
    sg.add_argument("--key", metavar="KEY", help="private key file or env://VAR (default: [signing].key)")
    for p in (sg, vs):
        p.add_argument("--env", help="environment (default: the config's default_env)")
        p.add_argument(
            "--public-key", metavar="PUB", help="public key file or env://VAR (default: [signing].public_key)"
        )
        _report_flags(p)
    ks = sub.add_parser("keys", help="manage cosign keys", description="Generate cosign key pairs.")
    ksub = ks.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    kg = ksub.add_parser(
        "generate",
        help="generate a cosign key pair",
        description="Write DIR/cosign.key (encrypted with the password in [signing].password_env, default "
        "COSIGN_PASSWORD; mode 0600) and DIR/cosign.pub. DIR must be outside the project tree: a private key "
        "never lives in the repository.",
    )
    kg.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="directory for the pair (outside the project)"
    )
    _report_flags(kg)


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
    return Context(cfg, Toolchain()), Result(
        stage="config",
        headline=f"{cfg.file}: valid",
        data={"config": _jsonable(cfg)},
        out_dir=cfg.project.artifacts / "config",
    )


def _stage_doctor(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from .result import Check, Outcome, Table

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


def _cmd_vulndb(args: argparse.Namespace) -> int:
    from . import scan  # imported per command: `pipelines --help` stays fast
    from .scan import vulndb, vulndb_oci

    if args.vulndb_command == "bundle":
        prov = vulndb.Provenance(args.name, args.repository, args.commit, args.date, args.license, tuple(args.covers))
        records = vulndb.write_bundle(args.source, args.out, prov)
        print(f"{args.out}: {records} OSV records from {prov.line()}")
        return EXIT_OK
    if args.vulndb_command == "push":
        ref, digest = vulndb_oci.push(scan.as_cache_dir(args.path), args.to)
        print(f"pushed {ref}@{digest}")
        return EXIT_OK
    if args.vulndb_command == "build":
        notes: list[str] = []
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
        for note in skipped:
            print(f"skipped: {note}", file=sys.stderr)
        merged: list[str] = []
        info = vulndb.build_db(
            advisories, args.out, source=args.name or str(args.source), covers=args.covers, notes=merged
        )
        for note in merged:  # records of one ID that disagree, Debian entries without a fix
            print(note if note.startswith("warning: ") else f"note: {note}", file=sys.stderr)
        if not info.covers:
            print(
                "note: no --covers: the data declares no ecosystem it covers, so every scan against it "
                "reports COVERAGE LIMITED",
                file=sys.stderr,
            )
    else:
        info = vulndb.read_info(scan.as_cache_dir(args.path))
    newest = f"{info.newest_advisory:%Y-%m-%d}" if info.newest_advisory else "not recorded"
    print(
        f"{info.path}: schema v{info.schema_version}, {info.advisories} advisories "
        f"({', '.join(f'{k} {v}' for k, v in info.ecosystems.items()) or 'none'}), newest advisory {newest}, "
        f"written {info.updated_at:%Y-%m-%d %H:%M} UTC, source {info.source}; "
        f"declares it covers: {', '.join(info.covers) or 'nothing'}"
    )
    if info.defaulted:
        print(
            "rated by the default severity (the records rate nothing): "
            + ", ".join(f"{k} {v}" for k, v in info.defaulted.items())
        )
    return EXIT_OK


def _stage_bench(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import bench  # imported per command: `pipelines --help` stays fast

    if args.runs is not None and not args.pipeline:
        raise InputError("--runs applies to `pipelines bench --pipeline` only", hint="add --pipeline or drop --runs")
    if (args.lint_corpus is None) != (args.corpus_manifest is None):
        raise InputError(
            "--lint-corpus CHECKOUTS and --corpus-manifest FILE go together",
            hint="e.g. --lint-corpus /tmp/checkouts --corpus-manifest tests/realworld/manifest.tsv",
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
    from . import k8s  # imported per command: `pipelines --help` stays fast
    from .result import Check, Outcome

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
    from . import build  # imported per command: `pipelines --help` stays fast

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
    from . import scan  # imported per command: `pipelines --help` stays fast

    ctx = _context(args, tools)
    return ctx, scan.run(ctx, scan.Options(env=args.env, images=tuple(args.images), vulndb=args.vulndb))


def _stage_verify(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import verify  # imported per command: `pipelines --help` stays fast

    opts = verify.Options(images=tuple(args.images), env=args.env, explain=args.explain, fresh=args.fresh)
    ctx = _context(args)
    return ctx, verify.run(ctx, opts)


def _stage_smoke(args: argparse.Namespace) -> tuple[Context | None, Result]:
    tools = _probing("compose_version", "engine_version")
    from .stack import smoke  # imported per command: `pipelines --help` stays fast

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
    from .stack import load  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    return ctx, load.run(
        ctx,
        load.Options(env=args.env, connections=args.connections, duration_s=args.duration, p99_ms=args.p99_ms),
    )


def _stage_lint(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import lint  # imported per command: `pipelines --help` stays fast

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


def _stage_keys(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import signing  # imported per command: `pipelines --help` stays fast
    from .result import Table

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
        signing.private_key_location(str(out / "cosign.key"), cfg.root)
    pair = signing.generate_keys(out, os.environ.get(password_env, ""))
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
    from . import signing  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    return ctx, signing.run_sign(ctx, signing.Options(env=args.env, key=args.key, public_key=args.public_key))


def _stage_verify_signatures(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import signing  # imported per command: `pipelines --help` stays fast

    ctx = _context(args)
    return ctx, signing.run_verify(ctx, signing.Options(env=args.env, public_key=args.public_key))


def _stage_deploy(args: argparse.Namespace) -> tuple[Context | None, Result]:
    from . import deploy  # imported per command: `pipelines --help` stays fast

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
    from . import deploy  # imported per command: `pipelines --help` stays fast

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
    from . import deploy  # imported per command: `pipelines --help` stays fast
    from .deploy import releases

    ctx = _context(args)
    return ctx, deploy.run_releases(ctx, releases.ReleasesOptions(env=args.env, state=args.state, limit=args.limit))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "vulndb": _cmd_vulndb,
}
STAGES: dict[str, Callable[[argparse.Namespace], tuple[Context | None, Result]]] = {
    "bench": _stage_bench,
    "config": _stage_config,
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


def emit(
    res: Result,
    fmt: str,
    output: Path | None,
    *,
    artifacts: Path | None = None,
    environ: dict[str, str] | None = None,
) -> None:
    """Write every format under the stage's directory, the job summary, and the chosen format."""
    environ = dict(os.environ) if environ is None else environ
    if res.out_dir is not None:
        inputs.make_dir(res.out_dir, f"{res.stage} reports")
        try:
            render.write_all(res, res.out_dir)
        except OSError as exc:
            raise InputError(
                f"cannot write the {res.stage} reports under {res.out_dir}: {exc.strerror}",
                hint="make the artifacts directory ([project].artifacts) writable",
            ) from None
    if artifacts is not None:
        # What this stage concluded about exactly these images: promotion and deploy trust only that.
        from . import verdicts

        verdicts.conclude(artifacts, res)
    report.step_summary(render.markdown(res), environ)
    text = render.render(res, fmt) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: directory {output.parent} does not exist", hint="create it first")
    # A directory, a FIFO with no reader or a device is one clear error, never a hang.
    inputs.write_text(output, text, f"{res.stage} report (--output)")


def _run(args: argparse.Namespace) -> int:
    # What _load() withholds from children lasts for this command only (main() may run again in-process).
    with _proc.withholding():
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    ctx, res = _guarded(args)
    try:
        emit(res, args.format, args.output, artifacts=ctx.artifacts if ctx is not None else None)
    except InputError:
        if not res.error:
            raise
        # The stage's own error first: an unwritable report must not hide why the stage stopped.
        print(f"error: {res.error}", file=sys.stderr)
        raise
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    # The rest was examined and reported; these could not be, so the run is no verdict (exit 2).
    for problem in res.unusable:
        print(f"error: {problem}", file=sys.stderr)
    return result.exit_code(res)


def _guarded(args: argparse.Namespace) -> tuple[Context | None, Result]:
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
    return obj


def crash_log(exc: BaseException, argv: Sequence[str]) -> Path:
    """Write the traceback of a bug where a person will look: ARTIFACTS/logs, else a temp file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = f"pipelines {__version__}: internal error\nargv: {list(argv)}\n\n" + "".join(traceback.format_exception(exc))
    candidates = []
    try:
        candidates.append(config_mod.load(config_mod.find_config()).project.artifacts / "logs")
    except Exception as cfg_exc:  # the config may be what broke; fall back below
        text += f"\n(the config could not name the artifacts directory: {type(cfg_exc).__name__})\n"
    candidates += [Path.cwd() / "artifacts" / "logs", Path(os.environ.get("TMPDIR", "/tmp"))]  # noqa: S108
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    raise OSError("no directory to write the crash log to")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
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
    except SystemExit:
        raise  # argparse's own usage errors (exit 2) and --help/--version (exit 0)
    except Exception as exc:
        _proc.stop_all()
        try:
            where = f"details in {crash_log(exc, argv)}"
        except OSError:
            where = "no crash log could be written"
        print(
            f"error: internal error (a bug in pipelines): {type(exc).__name__}: {str(exc)[:200]}; {where}",
            file=sys.stderr,
        )
        return EXIT_BUG
