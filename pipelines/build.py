"""The build stage: golden base images first, then services, with BuildKit.

Base images are built once per set of inputs and pinned by digest in the lock
file; services are rebuilt every time (BuildKit's cache makes an unchanged
rebuild cheap) and get the bases' digest references as build args. Images
with no dependency on each other build in parallel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import _proc, gitinfo, lockfile, manifest, osupdates, registry
from .config import MAX_PARALLEL, Config, Environment, Image
from .errors import BuildFailed, CommandFailed, CommandTimeout, ConfigError, PipelineError, ToolNotFound
from .gitinfo import GitInfo
from .result import Context, Result, Table
from .tools import BuilderInfo, Toolchain

CA_SECRET_ID = "ca-bundle"  # noqa: S105 - the id of a BuildKit secret, not a secret
CA_ENV_VARS = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
OCI = "org.opencontainers.image"
_print_lock = threading.Lock()


@dataclass(frozen=True)
class Options:
    env: str | None = None
    only: tuple[str, ...] = ()
    bases_only: bool = False
    rebuild_bases: bool = False
    # Rebuild (without cache) every base and service with pending security updates.
    refresh_bases: bool = False
    no_cache: bool = False
    parallel: int | None = None
    progress: str | None = None
    # Services of one level in one `docker buildx bake`: one BuildKit session,
    # every target solved at once, shared stages and base layers resolved once.
    bake: bool = True


@dataclass
class Built:
    name: str
    kind: str  # base | service
    ref: str  # what later stages use: repo@digest when pushed, else the commit tag
    tags: list[str]
    image_id: str
    digest: str
    seconds: float
    reused: bool = False
    pushed: bool = False
    # From the config, for the stages after: the Python a golden image carries, the Debian suite the
    # image is or stands on, and that suite's status ("testing": no security support).
    python: str = ""
    debian: str = ""
    debian_status: str = ""


@dataclass
class Report:
    env: str
    commit: str
    dirty: bool
    builder: str
    cache: str
    started: str
    seconds: float = 0.0
    images: dict[str, Built] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # for the report, not the build record

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["images"] = {n: asdict(b) for n, b in self.images.items()}
        d.pop("notices")
        return d


# --------------------------------------------------------------------------- pure helpers


def resolve_ca_bundle(cfg: Config, environ: Mapping[str, str]) -> Path | None:
    """The extra CA bundle for builds: the config's, else the first env var naming a file."""
    if cfg.build.ca_bundle is not None:
        return cfg.build.ca_bundle
    for var in CA_ENV_VARS:
        value = environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


# BuildKit's gha cache talks to GitHub's cache service with the runtime token
# and URL that GitHub gives actions (not `run:` steps: the workflow exposes
# them). buildx reads them from its own environment.
GHA_TOKEN_VAR = "ACTIONS_RUNTIME_TOKEN"  # noqa: S105 - the name of a variable, not a secret
GHA_URL_VARS = ("ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL")


def gha_cache_available(environ: Mapping[str, str]) -> bool:
    """True on a GitHub Actions runner whose job exposes the cache service to processes."""
    return (
        environ.get("GITHUB_ACTIONS", "").lower() == "true"
        and bool(environ.get(GHA_TOKEN_VAR))
        and any(environ.get(v) for v in GHA_URL_VARS)
    )


def choose_cache(cfg: Config, env: Environment, builder: BuilderInfo, environ: Mapping[str, str] | None = None) -> str:
    """The cache backend for this build: the configured one, or with `auto` the best the builder can do.

    `auto` picks `gha` on GitHub's runners when the builder can export to it (a
    docker-container builder) and the job exposes the cache service; elsewhere
    the builder's first choice (`inline` on the default docker driver).
    """
    environ = {} if environ is None else environ
    wanted = env.cache or cfg.build.cache
    key = "build.cache" if env.cache is None else f"environments.{env.name}.cache"
    if wanted == "auto":
        if "gha" in builder.cache_backends and gha_cache_available(environ):
            return "gha"
        return builder.cache_backends[0]
    if wanted != "none" and wanted not in builder.cache_backends:
        raise ConfigError(
            str(cfg.file),
            key,
            f"cache backend {wanted!r} is not supported by builder {builder.name!r} (driver {builder.driver}); "
            f"it supports: {', '.join(builder.cache_backends)}",
            hint='use cache = "auto", or create a docker-container builder (`docker buildx create --use`)',
        )
    if wanted == "gha" and not gha_cache_available(environ):
        raise ConfigError(
            str(cfg.file),
            key,
            f"cache backend 'gha' needs GitHub Actions' cache service: GITHUB_ACTIONS=true, {GHA_TOKEN_VAR} "
            f"and one of {', '.join(GHA_URL_VARS)} in the environment",
            hint='use cache = "auto" (gha on GitHub, the builder\'s best elsewhere), or expose the runtime '
            "variables to the step (crazy-max/ghaction-github-runtime)",
        )
    return wanted


def cache_flags(backend: str, cfg: Config, img: Image, env: Environment) -> list[str]:
    repo = cfg.repo(img, env.name)
    if backend == "inline":
        # Inline cache travels inside the pushed image. An image that is never pushed gains nothing from it,
        # and BuildKit 0.8 writes it in no fixed order: its image ID changed on every no-change rebuild,
        # so scan and verify saw a new image each time. The engine's own build cache serves it locally.
        flags = ["--cache-to", "type=inline"] if img.is_base or env.push else []
        if not img.is_base:
            # Reuse the env's last pushed one.
            flags += ["--cache-from", f"type=registry,ref={repo}:{env.tags[0]}"]
        return flags
    if backend == "registry":
        ref = f"{repo}:buildcache"
        return ["--cache-to", f"type=registry,ref={ref},mode=max", "--cache-from", f"type=registry,ref={ref}"]
    if backend == "local":
        d = cfg.build.cache_dir / img.name
        return ["--cache-to", f"type=local,dest={d},mode=max", "--cache-from", f"type=local,src={d}"]
    if backend == "gha":
        return ["--cache-to", f"type=gha,scope={img.name},mode=max", "--cache-from", f"type=gha,scope={img.name}"]
    return []


def labels(cfg: Config, img: Image, git: GitInfo) -> dict[str, str]:
    created = datetime.fromtimestamp(git.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {
        f"{OCI}.title": img.name,
        f"{OCI}.version": cfg.project.version,
        f"{OCI}.created": created,
        f"{OCI}.revision": git.commit,
    }
    if cfg.project.source:
        out[f"{OCI}.source"] = cfg.project.source
    return out


def service_tags(cfg: Config, img: Image, env: Environment, git: GitInfo) -> list[str]:
    repo = cfg.repo(img, env.name)
    return [f"{repo}:{git.tag(env.name)}"] + [f"{repo}:{t}" for t in env.tags]


def buildx_command(
    docker: str,
    cfg: Config,
    img: Image,
    *,
    env: Environment,
    git: GitInfo,
    tags: list[str],
    base_refs: Mapping[str, str],
    cache: str,
    driver: str,
    push: bool,
    ca_bundle: Path | None,
    iidfile: Path,
    metadata: Path,
    progress: str,
    no_cache: bool,
) -> list[str]:
    if img.context is None or img.dockerfile is None:
        raise TypeError(f"{img.name} is a rootfs image: it has no Dockerfile to build")
    argv = [
        docker,
        "buildx",
        "build",
        "--file",
        str(img.dockerfile),
        "--progress",
        progress,
        "--iidfile",
        str(iidfile),
        "--metadata-file",
        str(metadata),
    ]
    if img.target:
        argv += ["--target", img.target]
    args = {arg: base_refs[base] for arg, base in img.bases.items()}
    args.update(img.args)
    if not img.is_base:
        args.update(env.args)
    for k, v in sorted(args.items()):
        argv += ["--build-arg", f"{k}={v}"]
    for k, v in labels(cfg, img, git).items():
        argv += ["--label", f"{k}={v}"]
    for t in tags:
        argv += ["--tag", t]
    if ca_bundle is not None:
        argv += ["--secret", f"id={CA_SECRET_ID},src={ca_bundle}"]
    argv += cache_flags(cache, cfg, img, env)
    if no_cache:
        argv.append("--no-cache")
    if push and driver == "docker":
        # The docker driver's image exporter stores in the engine and pushes too.
        argv += ["--output", "type=image,push=true"]
    elif push:
        argv.append("--push")
    else:
        argv.append("--load")
    argv.append(str(img.context))
    return argv


def parse_metadata(path: Path) -> tuple[str, str]:
    """(manifest or image digest, config digest) from buildx's --metadata-file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandFailed(f"buildx wrote no usable metadata file at {path}", seen=str(exc)) from None
    digest = data.get("containerimage.digest", "")
    config = data.get("containerimage.config.digest", digest)
    if not str(digest).startswith("sha256:"):
        raise CommandFailed("buildx metadata has no image digest", seen=json.dumps(data)[:500])
    return str(digest), str(config)


_BAKE_LISTS = {"--tag": "tags", "--secret": "secret", "--cache-to": "cache-to", "--cache-from": "cache-from"}
_BAKE_MAPS = {"--build-arg": "args", "--label": "labels"}
_BAKE_DROP = {"--progress", "--iidfile", "--metadata-file"}  # per command, not per target


def bake_target(argv: list[str]) -> dict[str, object]:
    """The bake target for what one `buildx build` argv (from buildx_command) asks.

    Derived from the argv itself, so a bake and a per-image build cannot differ
    in arguments, labels, tags, secrets, cache or output.
    """
    start = argv.index("build") + 1
    args, context = argv[start:-1], argv[-1]
    target: dict[str, object] = {"context": context}
    i = 0
    while i < len(args):
        flag = args[i]
        if flag == "--no-cache":
            target["no-cache"] = True
        elif flag == "--load":
            target["output"] = ["type=docker"]
        elif flag == "--push":
            target["output"] = ["type=registry"]
        else:
            value = args[i + 1]
            i += 1
            if flag in _BAKE_LISTS:
                target.setdefault(_BAKE_LISTS[flag], [])
                lst = target[_BAKE_LISTS[flag]]
                if isinstance(lst, list):
                    lst.append(value)
            elif flag in _BAKE_MAPS:
                key, _, val = value.partition("=")
                mp = target.setdefault(_BAKE_MAPS[flag], {})
                if isinstance(mp, dict):
                    mp[key] = val
            elif flag == "--file":
                target["dockerfile"] = value
            elif flag == "--target":
                target["target"] = value
            elif flag == "--output":
                target["output"] = [value]
            elif flag not in _BAKE_DROP:
                raise TypeError(f"bake_target: no bake field for {flag}")
        i += 1
    return target


def bake_name(image: str) -> str:
    """A bake target name (letters, digits, '-', '_') for an image name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in image)


def parse_bake_metadata(path: Path, targets: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """image name -> (digest, config digest) from bake's --metadata-file (one entry per target)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandFailed(f"buildx bake wrote no usable metadata file at {path}", seen=str(exc)) from None
    out = {}
    for name, target in targets.items():
        entry = data.get(target) if isinstance(data, dict) else None
        digest = (entry or {}).get("containerimage.digest", "")
        if not str(digest).startswith("sha256:"):
            raise CommandFailed(f"buildx bake metadata has no image digest for {name}", seen=json.dumps(data)[:500])
        out[name] = (str(digest), str((entry or {}).get("containerimage.config.digest", digest)))
    return out


def failed_targets(output: str, targets: Mapping[str, str]) -> list[str]:
    """Image names whose steps BuildKit reports as failed in bake's plain output."""
    by_target = {t: n for n, t in targets.items()}
    found = []
    for line in output.splitlines():
        if "ERROR" in line or line.startswith(" > ["):
            for t, n in by_target.items():
                if f"[{t} " in line and n not in found:
                    found.append(n)
    return found


# How a rootfs base's archive is verified; part of its input hash, so a change of it rebuilds the base.
ROOTFS_VERIFICATION = "debootstrap --force-check-gpg --keyring"
# Image fields that describe an image without being what it is built from: its files count by content,
# the Python version and Debian status by the suite and definition they follow from.
_NOT_INPUTS = frozenset(
    {"context", "dockerfile", "keyring", "golden", "python", "python_requested", "debian_suite", "debian_status"}
)


def input_hash(img: Image, base_refs: Mapping[str, str]) -> str:
    """Hash of everything a base image is built from: settings, files, bases."""
    h = hashlib.sha256()
    # The keyring counts by its content, not its host path: a base is only as trusted as the keys it was
    # checked against, and one debootstrapped before signatures were forced (or against other keys) must
    # not be reused as if it had been verified. A golden image's name is no input either: the settings and
    # files it names are (relative to the context, so the package's install path is not).
    settings = {k: v for k, v in asdict(img).items() if k not in _NOT_INPUTS}
    if img.kind == "rootfs":
        settings["verified_with"] = ROOTFS_VERIFICATION
        settings["keyring_sha256"] = (
            hashlib.sha256(img.keyring.read_bytes()).hexdigest() if img.keyring.is_file() else ""
        )
    settings["base_refs"] = {arg: base_refs[b] for arg, b in sorted(img.bases.items())}
    if img.dockerfile is not None:
        settings["dockerfile"] = img.dockerfile.name
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    if img.context is not None:
        for p in sorted(img.context.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(img.context)).encode() + b"\0")
                h.update(p.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------- running builds


class _Builder:
    def __init__(self, cfg: Config, opts: Options, tools: Toolchain, environ: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.opts = opts
        self.tools = tools
        self.env = cfg.env(opts.env)
        self.ci = environ.get("CI", "").lower() in ("1", "true", "yes")
        self.ca_bundle = resolve_ca_bundle(cfg, environ)
        self.git = gitinfo.read(cfg.root, environ)
        self.builder = tools.builder
        self.cache = choose_cache(cfg, self.env, self.builder, environ)
        self.lock = lockfile.load(cfg.project.lock)
        self.packages_path = lockfile.packages_path(cfg.project.lock)
        self.packages = lockfile.load_packages(self.packages_path)
        self.packages_changed = False
        # image -> its pending security updates, for --refresh-bases
        self.refresh: dict[str, list[str]] = {}
        # refreshed images none of whose bases is refreshed: only --no-cache makes apt run again there
        self.uncached: set[str] = set()
        self.base_refs: dict[str, str] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="pipelines-build-"))

    def progress_for(self, parallel: bool) -> str:
        mode = self.opts.progress or self.cfg.build.progress
        if mode != "auto":
            return mode
        if self.ci or not sys.stderr.isatty() or parallel:
            return "plain"
        return "tty"

    def printer(self, name: str) -> Callable[[str], None]:
        def emit(line: str) -> None:
            with _print_lock:
                print(f"[{name}] {line}", file=sys.stderr, flush=True)

        return emit

    def build_one(self, img: Image, parallel: bool) -> Built:
        if img.is_base:
            return self.build_base(img, parallel)
        tags = service_tags(self.cfg, img, self.env, self.git)
        return self.buildx(img, tags, push=self.env.push, parallel=parallel, no_cache=img.name in self.uncached)

    def build_base(self, img: Image, parallel: bool) -> Built:
        inputs = input_hash(img, self.base_refs)
        entry = self.lock.get(img.name)
        repo = self.cfg.repo(img, self.env.name)
        refresh = img.name in self.refresh
        if (
            entry
            and not self.opts.rebuild_bases
            and not refresh
            and entry.inputs == inputs
            # A lock written against another registry (a PIPELINES_REGISTRY of another machine) is not reused:
            # the services of this build would pull their base from a registry this build does not push to.
            and entry.ref.startswith(f"{repo}@")
            and registry.has(self.tools, entry.ref)
        ):
            self.printer(img.name)(f"reusing {entry.ref} (inputs unchanged)")
            self.record_packages(img.name, entry.ref)
            return Built(img.name, "base", entry.ref, [], "", entry.ref.split("@", 1)[1], 0.0, reused=True, pushed=True)
        tag = f"{repo}:in-{inputs.removeprefix('sha256:')[:12]}"
        if img.kind == "rootfs":
            built = self.rootfs(img, tag)
        else:
            # A refresh must not take the apt layer from BuildKit's cache: that is the stale one.
            built = self.buildx(img, [tag], push=True, parallel=parallel, no_cache=img.name in self.uncached)
        with _print_lock:
            self.lock[img.name] = lockfile.Entry(
                ref=built.ref, inputs=inputs, built_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        self.record_packages(img.name, built.ref)
        return built

    def record_packages(self, name: str, ref: str) -> None:
        """Put the image's installed packages in the package lock; print what changed."""
        old = self.packages.get(name)
        if old is not None and old.ref == ref:
            return
        new = osupdates.lock_entries(osupdates.image_packages(ref))
        emit = self.printer(name)
        if old is None:
            emit(f"package lock: {len(new)} packages recorded for {ref}")
        else:
            changes = lockfile.diff_packages(old.packages, new)
            emit(f"package lock: {len(changes)} package changes" + (":" if changes else " (same package set)"))
            for line in changes:
                emit(f"  {line}")
        with _print_lock:
            self.packages[name] = lockfile.Packages(ref, new)
            self.packages_changed = True

    def service_argv(self, img: Image, iid: Path, meta: Path, progress: str) -> list[str]:
        tags = service_tags(self.cfg, img, self.env, self.git)
        return buildx_command(
            self.tools.docker,
            self.cfg,
            img,
            env=self.env,
            git=self.git,
            tags=tags,
            base_refs=self.base_refs,
            cache=self.cache,
            driver=self.builder.driver,
            push=self.env.push,
            ca_bundle=self.ca_bundle,
            iidfile=iid,
            metadata=meta,
            progress=progress,
            no_cache=self.opts.no_cache or img.name in self.uncached,
        )

    def bake(self, images: list[Image]) -> dict[str, Built]:
        """Every service of a level in one `docker buildx bake`; per-service results as buildx() gives them."""
        d = Path(tempfile.mkdtemp(prefix="bake-", dir=self.workdir))
        meta, file = d / "metadata.json", d / "bake.json"
        progress = self.progress_for(True)
        targets = {img.name: bake_name(img.name) for img in images}
        definition = {
            "group": {"default": {"targets": list(targets.values())}},
            "target": {
                targets[img.name]: bake_target(self.service_argv(img, d / "iid", meta, progress)) for img in images
            },
        }
        file.write_text(json.dumps(definition, indent=2))
        argv = [self.tools.docker, "buildx", "bake", "--file", str(file), "--metadata-file", str(meta)]
        argv += ["--progress", progress, *targets.values()]
        names = ", ".join(targets)
        start = time.monotonic()
        try:
            _proc.run(
                argv,
                timeout=self.cfg.build.timeout,
                what=f"build of {names}",
                hint="see the BuildKit output above",
                stream=self.printer("bake"),
            )
        except CommandTimeout:
            raise
        except CommandFailed as exc:
            bad = failed_targets(exc.seen or "", targets) or list(targets)
            files = ", ".join(str(img.dockerfile) for img in images if img.name in bad)
            raise BuildFailed(
                f"build of {', '.join(bad)} failed", seen=exc.seen, hint=f"see the BuildKit output above; {files}"
            ) from None
        seconds = round(time.monotonic() - start, 2)
        digests = parse_bake_metadata(meta, targets)
        out = {}
        for img in images:
            tags = service_tags(self.cfg, img, self.env, self.git)
            digest, config_digest = digests[img.name]
            push = self.env.push
            ref = f"{self.cfg.repo(img, self.env.name)}@{digest}" if push else tags[0]
            # One solve built them all: each shares its wall time.
            out[img.name] = Built(img.name, "service", ref, tags, config_digest, digest, seconds, pushed=push)
        return out

    def buildx(self, img: Image, tags: list[str], *, push: bool, parallel: bool, no_cache: bool = False) -> Built:
        d = Path(tempfile.mkdtemp(prefix=f"{img.name}-", dir=self.workdir))
        iid, meta = d / "iid", d / "metadata.json"
        progress = self.progress_for(parallel)
        argv = buildx_command(
            self.tools.docker,
            self.cfg,
            img,
            env=self.env,
            git=self.git,
            tags=tags,
            base_refs=self.base_refs,
            cache=self.cache,
            driver=self.builder.driver,
            push=push,
            ca_bundle=self.ca_bundle,
            iidfile=iid,
            metadata=meta,
            progress=progress,
            no_cache=self.opts.no_cache or no_cache,
        )
        start = time.monotonic()
        try:
            _proc.run(
                argv,
                timeout=self.cfg.build.timeout,
                what=f"build of {img.name}",
                hint=f"see the BuildKit output above; the Dockerfile is {img.dockerfile}",
                stream=None if progress == "tty" else self.printer(img.name),
                passthrough=progress == "tty",
            )
        except CommandTimeout:
            raise
        except CommandFailed as exc:
            # BuildKit ran and said no: that is the build's verdict (exit 1), not
            # a stage that could not run.
            raise BuildFailed(exc.what, seen=exc.seen, hint=exc.hint) from None
        digest, config_digest = parse_metadata(meta)
        image_id = iid.read_text().strip() if iid.exists() else config_digest
        repo = self.cfg.repo(img, self.env.name)
        ref = f"{repo}@{digest}" if push else tags[0]
        return Built(
            img.name,
            "base" if img.is_base else "service",
            ref,
            tags,
            image_id,
            digest,
            round(time.monotonic() - start, 2),
            pushed=push,
        )

    def apply_updates(self, img: Image, root: Path) -> None:
        """Point apt at every configured suite and install the updates they carry, inside the rootfs.

        debootstrap only knows the release suite; point releases (-updates) and
        security fixes (-security) are applied here, so the image and everything
        built on it start from the current packages. apt's lists and package
        cache are removed afterwards: images on this one run `apt-get update`.
        """
        emit = self.printer(img.name)
        lines = [f"deb {img.security_mirror if s.endswith('-security') else img.mirror} {s} main" for s in img.suites]
        (root / "etc/apt/sources.list").write_text(
            "# Written by `pipelines build` from the image's suites in the config.\n" + "\n".join(lines) + "\n"
        )
        chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
        if not chroot:
            raise ToolNotFound("chroot is not installed (needed to update rootfs base images)")
        resolv = root / "etc/resolv.conf"
        had_resolv = resolv.exists() or resolv.is_symlink()
        if not had_resolv and Path("/etc/resolv.conf").is_file():
            # apt inside the chroot resolves the mirror names like the host does.
            shutil.copy("/etc/resolv.conf", resolv)
        env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        apt = [
            chroot,
            str(root),
            "apt-get",
            "-q",
            "-y",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "Dpkg::Use-Pty=0",
            # apt's defaults, said explicitly: the updates come from signed, unexpired indexes only.
            "-o",
            "Acquire::AllowInsecureRepositories=false",
            "-o",
            "Acquire::AllowDowngradeToInsecureRepositories=false",
            "-o",
            "Acquire::Check-Valid-Until=true",
            "-o",
            "APT::Get::AllowUnauthenticated=false",
        ]
        try:
            for what, args in (("apt-get update", ["update"]), ("apt-get upgrade", ["--with-new-pkgs", "upgrade"])):
                try:
                    _proc.run(
                        [*apt, *args],
                        timeout=self.cfg.build.timeout,
                        what=f"{what} in the {img.name} rootfs",
                        env=env,
                        stream=emit,
                        hint=f"check that the mirrors of suites {', '.join(img.suites)} are reachable",
                    )
                except CommandFailed as exc:
                    raise expired_index(img, exc) or exc from None
            _proc.run([*apt, "clean"], timeout=120, what=f"apt-get clean in the {img.name} rootfs", env=env, quiet=True)
        finally:
            if not had_resolv:
                resolv.unlink(missing_ok=True)
        lists = root / "var/lib/apt/lists"
        for p in lists.iterdir() if lists.is_dir() else ():
            if p.is_file() and p.name != "lock":
                p.unlink()

    def plan_refresh(self, images: list[Image]) -> None:
        """Which bases (and last-built services) have pending security updates: those rebuild, uncached."""
        suites = osupdates.security_suites(self.cfg.images.values())
        if not suites:
            raise ConfigError(
                str(self.cfg.file),
                "images",
                "--refresh-bases needs a security suite, and no rootfs image lists one in `suites`",
                hint='add e.g. suites = ["bookworm", "bookworm-updates", "bookworm-security"] to the rootfs image',
            )
        # Always today's index: a refresh is run because a fix was just published.
        indexes = [
            osupdates.fetch_index(
                s, self.cfg.scan.cache_dir, timeout=self.cfg.scan.download_timeout, max_age=dt.timedelta(0)
            )
            for s in suites
        ]
        emit = self.printer("refresh")
        for ix in indexes:
            emit(ix.statement())
        targets: dict[str, str] = {}
        for img in images:
            entry = self.lock.get(img.name)
            if img.is_base and entry is not None:
                targets[img.name] = entry.ref
        try:
            last = manifest.load(self.cfg.project.artifacts, self.env.name).services
        except PipelineError:
            last = []
        wanted = {i.name for i in images if not i.is_base}
        for b in last:
            if b.name in wanted:
                targets[b.name] = b.local_ref
        for name, ref in targets.items():
            pk = self.packages.get(name)
            try:
                installed = (
                    osupdates.from_lock(pk.packages)
                    if pk is not None and pk.ref == ref
                    else osupdates.image_packages(ref)
                )
            except osupdates.OsUpdatesError as exc:
                emit(f"{name}: not checked ({exc.what}); it is rebuilt as usual")
                continue
            found = [p for ix in indexes for p in osupdates.pending(name, installed, ix)]
            if found:
                self.refresh[name] = [f"{p.package} {p.installed} -> {p.fixed}" for p in found]

        # An image on a refreshed base rebuilds anyway (its FROM changes, so no cached layer
        # matches); forcing --no-cache there would only redo unrelated steps such as pip installs.
        def on_refreshed(name: str) -> bool:
            return any(b in self.refresh or on_refreshed(b) for b in self.cfg.images[name].bases.values())

        self.uncached = {n for n in self.refresh if not on_refreshed(n)}
        for name, items in self.refresh.items():
            how = "rebuilt without cache" if name in self.uncached else "rebuilt on its refreshed base"
            emit(f"{name}: {len(items)} security updates ({how}): {_some(items)}")
        rest = sorted(set(targets) - set(self.refresh))
        if not self.refresh:
            emit("no pending security updates in the bases or the last build; nothing is refreshed")
        elif rest:
            emit(f"up to date, not forced: {', '.join(rest)} (images on a refreshed base still rebuild)")

    def report_pending(self, bases: list[str]) -> list[str]:
        """Pending security updates in the golden bases of this build, from the package lock (no image reads)."""
        suites = osupdates.security_suites(self.cfg.images.values())
        lines: list[str] = []
        pending_any = False
        for suite in suites:
            try:
                ix = osupdates.fetch_index(suite, self.cfg.scan.cache_dir, timeout=self.cfg.scan.download_timeout)
            except osupdates.OsUpdatesError as exc:
                lines.append(f"could not check the golden bases for security updates: {exc.what}")
                continue
            for name in bases:
                pk = self.packages.get(name)
                if pk is None:
                    continue
                found = osupdates.pending(name, osupdates.from_lock(pk.packages), ix)
                if found:
                    pending_any = True
                    lines.append(
                        f"{name}: {len(found)} packages have security updates in {suite.suite}: "
                        + _some([f"{p.package} {p.installed} -> {p.fixed}" for p in found])
                    )
        if pending_any:
            lines.append("run `pipelines build --refresh-bases` (or `./noxw -s patch`) to rebuild what they affect")
        return lines

    def rootfs(self, img: Image, tag: str) -> Built:
        """Debootstrap a root filesystem and import it as an image."""
        if os.geteuid() != 0:
            raise ToolNotFound(
                f"base image {img.name!r} is a debootstrap rootfs, which needs root",
                hint="run the build as root (CI does), or build bases once as root and reuse the lock",
            )
        debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
        if not debootstrap:
            raise ToolNotFound(
                "debootstrap is not installed (needed for rootfs base images)",
                hint="apt-get install debootstrap, or run scripts/provision.sh",
            )
        start = time.monotonic()
        emit = self.printer(img.name)
        root = Path(tempfile.mkdtemp(prefix=f"{img.name}-rootfs-", dir=self.workdir))
        # mkdtemp makes it 0700; as the image's / it must be 0755 (apt's _apt user walks it too).
        root.chmod(0o755)
        argv = debootstrap_argv(debootstrap, img, root)
        _proc.run(
            argv,
            timeout=self.cfg.build.timeout,
            what=f"debootstrap of {img.name}",
            stream=emit,
            hint=f"check that {img.mirror} is reachable and suite {img.suite!r} exists",
        )
        self.apply_updates(img, root)
        tar = root.with_suffix(".tar")
        _proc.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar), "."],
            timeout=600,
            what=f"packing the {img.name} rootfs",
        )
        shutil.rmtree(root)
        _proc.run(
            [
                self.tools.docker,
                "import",
                "--change",
                "ENV LANG=C.UTF-8",
                "--message",
                f"debootstrap --variant={img.variant} {img.suite}, updates from {' '.join(img.suites)}",
                str(tar),
                tag,
            ],
            timeout=600,
            what=f"docker import of {img.name}",
            stream=emit,
        )
        tar.unlink()
        _proc.run([self.tools.docker, "push", tag], timeout=900, what=f"push of {tag}", stream=emit)
        inspect = _proc.run(
            [self.tools.docker, "image", "inspect", "--format", "{{json .}}", tag], timeout=60, quiet=True
        )
        info = json.loads(inspect.stdout)
        repo = tag.rsplit(":", 1)[0]
        ref = next((d for d in info.get("RepoDigests") or [] if d.startswith(repo + "@")), None)
        if ref is None:
            raise CommandFailed(
                f"pushed {tag} but the engine reports no digest for it", seen=json.dumps(info.get("RepoDigests"))
            )
        return Built(
            img.name,
            "base",
            ref,
            [tag],
            info["Id"],
            ref.split("@", 1)[1],
            round(time.monotonic() - start, 2),
            pushed=True,
        )


_EXPIRED = re.compile(r"Release file for (\S+) is expired \(invalid since ([^)]*)\)")


def expired_index(img: Image, exc: CommandFailed) -> CommandFailed | None:
    """apt's refusal of a mirror's expired Release files, said as what it is; None for any other failure.

    debootstrap reads no Valid-Until, so an expired suite gets as far as apt. apt is right to refuse it:
    an old signed index may be a replay that hides security fixes. The build never overrides that.
    """
    found = _EXPIRED.findall(exc.seen or "")
    if not found:
        return None
    return CommandFailed(
        f"the mirrors of rootfs image {img.name!r} serve expired indexes: "
        + "; ".join(f"{url} (expired {since} ago)" for url, since in found),
        argv=exc.argv,
        returncode=exc.returncode,
        seen=exc.seen,
        hint="apt refuses an index past its Valid-Until, as an old signed index may be replayed: use a mirror "
        f"that is current for {', '.join(img.suites)} (set `mirror` and `security_mirror` of the image)",
    )


# Where debootstrap keeps a script per suite it knows; `sid`'s is what every Debian suite since buster uses.
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")


def debootstrap_argv(
    debootstrap: str, img: Image, root: Path, *, gpgv: str | None = None, scripts: Path = DEBOOTSTRAP_SCRIPTS
) -> list[str]:
    """debootstrap's command line for a rootfs image: it must verify the archive's signatures or stop.

    Without ``--force-check-gpg`` debootstrap quietly builds from an unverified (or HTTPS-only) Release
    when the keyring is missing; with it and the image's keyring it aborts instead. gpgv and the keyring
    are checked here first, so the reason is said plainly. ``gpgv``: the tool's path (default: PATH).
    A suite newer than the host's debootstrap (forky on Debian 12's) gets the sid script, the one Debian's
    own suites point at; ``scripts``: debootstrap's script directory.
    """
    tool = gpgv if gpgv is not None else shutil.which("gpgv")
    if tool is None or not Path(tool).is_file():
        raise ToolNotFound(
            f"gpgv is not installed: debootstrap cannot verify the archive for rootfs image {img.name!r}",
            hint="apt-get install gpgv debian-archive-keyring (a rootfs is never built from an unverified archive)",
        )
    if not img.keyring.is_file():
        raise ToolNotFound(
            f"the archive keyring {img.keyring} of rootfs image {img.name!r} does not exist: "
            "debootstrap cannot verify what it downloads",
            hint="apt-get install debian-archive-keyring, or set `keyring` of the image in the config "
            "to the keyring that signs its mirror",
        )
    argv = [debootstrap, "--force-check-gpg", "--keyring", str(img.keyring.absolute()), f"--variant={img.variant}"]
    if img.include:
        argv.append("--include=" + ",".join(img.include))
    argv += [img.suite, str(root), img.mirror]
    if not (scripts / img.suite).exists() and (scripts / "sid").is_file():
        argv.append(str(scripts / "sid"))
    return argv


def _some(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def run(ctx: Context, opts: Options) -> Result:
    """The build stage on the common contract: build, record, and describe what was built."""
    rep = build_images(ctx.cfg, opts, ctx.tools, ctx.environ)
    rows = tuple(
        (
            b.name,
            b.kind,
            b.ref,
            f"{b.seconds:.1f}s",
            "reused from lock" if b.reused else ("pushed" if b.pushed else "loaded"),
        )
        for b in rep.images.values()
    )
    headline = (
        f"build {rep.env} at {rep.commit[:12]}{' (dirty)' if rep.dirty else ''}: "
        f"{len(rep.images)} images in {rep.seconds:.1f}s, cache {rep.cache}"
    )
    return Result(
        stage="build",
        headline=headline,
        notices=(*ctx.cfg.golden_notices(rep.images), *rep.notices),
        tables=(Table(("image", "kind", "reference", "time", "note"), rows),),
        timings={"total_s": rep.seconds, **{f"{b.name}_s": b.seconds for b in rep.images.values()}},
        data={"build": rep.to_json()},
        artifacts=(manifest.path(ctx.cfg.project.artifacts, rep.env),),
        out_dir=ctx.cfg.project.artifacts / "build",
    )


def build_images(cfg: Config, opts: Options, tools: Toolchain, environ: Mapping[str, str] | None = None) -> Report:
    environ = os.environ if environ is None else environ
    # Before the engine: a bad selection or environment is known without it.
    levels = _selection(cfg, opts)
    cfg.env(opts.env)
    tools.require_build()
    # Bases go to [registry], the services to the environment's own registry when it has one.
    for address in dict.fromkeys((cfg.registry.address, cfg.registry_for(opts.env).address)):
        registry.check(address)
    b = _Builder(cfg, opts, tools, environ)
    start = time.monotonic()
    rep = Report(
        env=b.env.name,
        commit=b.git.commit,
        dirty=b.git.dirty,
        builder=f"{b.builder.name} ({b.builder.driver}, BuildKit {b.builder.buildkit})",
        cache=b.cache,
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    workers = opts.parallel or cfg.build.parallel
    if opts.refresh_bases:
        b.plan_refresh([img for level in levels for img in level])
    try:
        for level in levels:
            parallel = len(level) > 1 and workers > 1
            baked = [img.name for img in level if not img.is_base] if opts.bake else []
            if len(baked) < 2:
                baked = []
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures: dict[str, Future[Built]] = {
                    img.name: pool.submit(b.build_one, img, parallel) for img in level if img.name not in baked
                }
                group = pool.submit(b.bake, [img for img in level if img.name in baked]) if baked else None
            # Every image of the level has finished; report all failures at once.
            failures = []
            outcomes: list[Future[Built] | Future[dict[str, Built]]] = [*futures.values()]
            if group is not None:
                outcomes.append(group)
            for fut in outcomes:
                exc = fut.exception()
                if exc is None:
                    result = fut.result()
                    for built in result.values() if isinstance(result, dict) else [result]:
                        rep.images[built.name] = built
                        if built.kind == "base":
                            b.base_refs[built.name] = built.ref
                elif isinstance(exc, PipelineError):
                    failures.append(exc)
                else:
                    raise exc
            if failures:
                if len(failures) == 1:
                    raise failures[0]
                # Only when every failure is a verdict is the whole a verdict.
                kind = BuildFailed if all(isinstance(f, BuildFailed) for f in failures) else CommandFailed
                raise kind(f"{len(failures)} image builds failed", seen="\n\n".join(f.render() for f in failures))
    finally:
        # The lock keeps whatever bases were built, even when a later build failed.
        if b.lock:
            lockfile.save(cfg.project.lock, b.lock)
        if b.packages_changed:
            lockfile.save_packages(b.packages_path, b.packages)
        shutil.rmtree(b.workdir, ignore_errors=True)
    rep.seconds = round(time.monotonic() - start, 2)
    for built in rep.images.values():
        img = cfg.images[built.name]
        built.python, built.debian, built.debian_status = img.python, img.debian_suite, img.debian_status
    if not opts.bases_only:
        # The record names the services later stages check; a bases-only run
        # leaves the last one alone (the lock records the bases).
        write_report(cfg, rep)
    rep.notices = [
        f"security: {line}" for line in b.report_pending([n for n, x in rep.images.items() if x.kind == "base"])
    ]
    return rep


def record(rep: Report) -> manifest.BuildRecord:
    return manifest.BuildRecord.model_validate(rep.to_json())


def write_report(cfg: Config, rep: Report) -> None:
    if not rep.images:
        # An empty record would replace the last real one: later stages would find nothing to check.
        raise PipelineError(
            f"nothing was built for {rep.env!r}; the last build record is left as it was",
            hint="name services with --only, or leave out --bases-only to build them",
        )
    manifest.save(cfg.project.artifacts, record(rep))


def _selection(cfg: Config, opts: Options) -> list[list[Image]]:
    """The images to build, in levels; an empty or contradictory selection is an error, not a no-op."""
    if opts.parallel is not None and not 1 <= opts.parallel <= MAX_PARALLEL:
        raise ConfigError("--parallel", "", f"must be from 1 to {MAX_PARALLEL}, got {opts.parallel}")
    names = list(opts.only) or None
    for n in names or ():
        if n not in cfg.images:
            raise ConfigError("--only", "", f"no image or service named {n!r}", hint=f"known: {', '.join(cfg.images)}")
    if opts.bases_only:
        services = [n for n in names or () if not cfg.images[n].is_base]
        if services:
            raise ConfigError(
                "--only",
                "",
                f"{', '.join(services)}: not a base image, and --bases-only builds only base images",
                hint=f"drop --bases-only to build services; base images: {', '.join(i.name for i in cfg.bases)}",
            )
        names = [i.name for i in cfg.bases if names is None or i.name in names]
    levels = cfg.build_order(names)
    if not levels:
        raise ConfigError(str(cfg.file), "images", "nothing to build", hint="declare [images.*] or [services.*]")
    return levels
