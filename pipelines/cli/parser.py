"""The ``pipelines`` command line: every subcommand, its flags and its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__, render
from .. import config as config_mod

DESCRIPTION = """\
Build, check and ship hardened container images of Python services.

Every stage reads one validated config (pipeline.toml, found in the current
directory or a parent; --config to name another).

stages:
  init       adopt the pipeline in a repository: find its Dockerfiles and Compose files, write
             pipeline.toml, noxfile.py, a GitHub workflow and missing .dockerignore files
  harden     rewrite services built FROM python:3.x onto the golden bases: venv builder, distroless
             runtime as 65532, tini, exec-form command and health check; pipeline.toml bases
  lint       Hadolint plus the project's Dockerfile and Compose hardening policy
  build      golden base images from Debian packages, then every service, with BuildKit
  scan       Trivy (and Snyk) on the built images; HIGH/CRITICAL gate, waivers, SBOM, SARIF
  verify     the hardening matrix: every image's user, privileges, files, health, secrets, base
  vulndb     build an offline vulnerability database from OSV advisories
  smoke      bring an environment's Compose stack up, probe it end to end, tear it down
  baseline   accept today's lint (and scan) findings until a date; gates then fail only on new ones
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


def build() -> argparse.ArgumentParser:
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
    b.add_argument("--env", help="environment from the config (default: $PIPELINES_ENV, else the config's default_env)")
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
    sm.add_argument("--env", help="environment (default: $PIPELINES_ENV, else the config's default_env)")
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
    ld.add_argument("--env", help="environment (default: $PIPELINES_ENV, else prod)")
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
    sc.add_argument(
        "--env", help="environment: its build and its gate settings (default: $PIPELINES_ENV, else default_env)"
    )
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
    ve.add_argument("--env", help="environment whose build is verified (default: $PIPELINES_ENV, else default_env)")
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
    _report_flags(vb)
    vi = vsub.add_parser("info", help="show what a DB holds", description="Check a DB and print its metadata.")
    vi.add_argument("path", type=Path, help="cache directory (with db/trivy.db)")
    _report_flags(vi)
    vp = vsub.add_parser(
        "push",
        help="publish a DB to a registry as Trivy's OCI artifact",
        description="Publish the DB under PATH as the OCI artifact Trivy downloads (one db.tar.gz layer), "
        "so scans can pull it with scan.db_repositories (Trivy's --db-repository). Plain HTTP for "
        "loopback registries, HTTPS otherwise; anonymous push only.",
    )
    vp.add_argument("path", type=Path, help="cache directory (with db/trivy.db)")
    vp.add_argument("--to", required=True, metavar="REGISTRY/REPO[:TAG]", help="where to publish (tag default: 2)")
    _report_flags(vp)
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
    _report_flags(vbu)

    it = sub.add_parser(
        "init",
        help="adopt the pipeline in a repository: write pipeline.toml, noxfile.py, a workflow",
        description="Find the repository's Dockerfiles (any naming), Compose files and overlays, the services "
        "they build, datastores, ports, health checks and environments, and write a commented pipeline.toml, a "
        "noxfile.py using the reusable sessions, a GitHub workflow and a .dockerignore where a build context has "
        "none. What it cannot decide is written into pipeline.toml as a comment and listed. An existing file is "
        "never overwritten (exit 2 naming it) unless --force; a .dockerignore never is.",
    )
    it.add_argument(
        "directory", nargs="?", type=Path, default=Path(), metavar="DIR", help="the repository (default: .)"
    )
    it.add_argument("--force", action="store_true", help="overwrite pipeline.toml, noxfile.py and the workflow")
    it.add_argument("--dry-run", action="store_true", help="print what would be found and written; write nothing")
    _report_flags(it)

    hd = sub.add_parser(
        "harden",
        help="rewrite Dockerfiles on upstream Python images onto the golden bases",
        description="For each service (all, or the SERVICEs named) whose Dockerfile starts FROM an upstream Python "
        "image, write the hardened Dockerfile: a builder on ${BUILDER_IMAGE} installing the dependencies as the "
        "repository declares them into /opt/venv (pip cache mount, CA bundle secret), a runtime on "
        "${RUNTIME_IMAGE} with only the venv and the application owned by root, USER 65532:65532, tini as PID 1, "
        "an exec-form command and a health check without a shell. The original is kept as Dockerfile.orig unless "
        "git holds it unchanged; pipeline.toml gets the service's bases and the golden [images.*] tables. What "
        "cannot be converted is exit 2 naming the Dockerfile, the line and the manual step; nothing is written "
        "unless every service converts. A second run changes nothing.",
    )
    hd.add_argument("services", nargs="*", metavar="SERVICE", help="the services to harden (default: all)")
    hd.add_argument("--dry-run", action="store_true", help="print the unified diff; write nothing")
    _report_flags(hd)

    bl = sub.add_parser(
        "baseline",
        help="accept today's findings until a date, so gates fail only on new ones",
        description="Run lint (and with --scan the scan of the last build) and record every finding by "
        "fingerprint in [lint].baseline (default security/baseline.json), each accepted for "
        "[lint].baseline_days (default 90). Lint and scan then report those as accepted and gate only on the "
        "rest; an entry past its date gates again (PL-W005). Recording again keeps existing dates and drops "
        "entries whose finding is gone.",
    )
    bl.add_argument("--scan", action="store_true", help="record the scan's findings too (needs a build)")
    bl.add_argument(
        "--env", help="the environment whose build --scan reads (default: $PIPELINES_ENV, else default_env)"
    )
    bl.add_argument("--days", type=_positive_int, metavar="N", help="accept new entries for N days")
    _report_flags(bl)

    cf = sub.add_parser(
        "config",
        help="validate the config and print it as JSON",
        description="Validate the config and print the resolved result as JSON (its `config` key); exit 2 when "
        "invalid. `config.settings` (the table in --format table) lists the registry, namespace and default "
        "environment of the config and of each environment as they take effect, each with its source: the file's "
        "key or the PIPELINES_* variable that overrides it.",
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
    bn.add_argument("--env", help="environment to build (default: $PIPELINES_ENV, else the config's default_env)")
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
    rd.add_argument("--env", help="environment (default: $PIPELINES_ENV, else the config's default_env)")
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
        p.add_argument("--env", help="environment (default: $PIPELINES_ENV, else the config's default_env)")
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
        p.add_argument("--env", help="environment (default: $PIPELINES_ENV, else the config's default_env)")
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
