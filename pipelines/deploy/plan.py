"""What may be deployed, and how each service will be treated: the gate before any container moves.

Two questions, answered under the environment's lock before the engine is touched:

* which images: the environment's recorded build, by digest, only when its
  scan, verify and smoke verdicts passed for exactly those images and every
  image's signature verifies (or, for an environment with ``promote_from``,
  the digests of the source environment's live release, signatures checked
  again); anything else is refused with the reason.
* which config: the merged Compose config of the environment with a generated
  override that pins every service to its image by digest, rendered by
  ``docker compose config`` into one file that is the release's config (its
  hash is the release's ``config_hash``), and each service's role in a rollout
  (one-shot job, stateful, front door with a fixed port, rolled) with the
  health-gate deadline its healthcheck allows.
"""

from __future__ import annotations

import hashlib
import json
import secrets as secrets_mod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import yaml

from .. import compose_model, cosign, manifest, verdicts
from .. import subjects as subjects_mod
from ..compose_model import Frozen, Healthcheck, Project
from ..composespec import duration_ns
from ..composestack import Stack
from ..config import Config, Readiness
from ..engine import Engine
from ..errors import InputError, PipelineError, StageFailed
from ..result import Check, Context, Outcome
from . import releases

GATE_STAGES = ("scan", "verify", "smoke")
# Docker's own healthcheck defaults, for fields a healthcheck leaves out.
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_GRACE = 10.0
# Creating and starting a container before its first probe: not part of the healthcheck's own budget.
START_SLACK = 5.0


# ---- durations and deadlines ---------------------------------------------------------------------


def parse_duration(value: object, *, where: str) -> float:
    """A Compose duration ("1m30s", "500ms", "2s"; a bare number is seconds) in seconds."""
    try:
        return duration_ns(value) / 1e9
    except ValueError:
        raise InputError(f"{where}: {value!r} is not a duration", hint='write e.g. "10s" or "1m30s"') from None


@dataclass(frozen=True)
class Health:
    """A service's healthcheck timings, in seconds."""

    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0

    def deadline(self, floor: float = 0.0) -> float:
        """How long a new container may take to turn healthy: never less than its healthcheck allows.

        Failing probes in the start period do not count; after it, ``retries``
        probes ``interval`` apart may fail before Docker calls it unhealthy, and
        the last one may take ``timeout``. A configured floor only lengthens it.
        """
        own = START_SLACK + self.start_period + self.interval * self.retries + self.timeout
        return max(own, floor)


def health_of(hc: Healthcheck | None, *, where: str) -> Health | None:
    """The Compose ``healthcheck:`` (or the image's, in the same shape); None when there is none."""
    if hc is None or hc.disabled or not hc.test:
        return None

    def dur(key: str, value: object, default: float) -> float:
        return parse_duration(value, where=f"{where}.{key}") if value not in (None, "", 0) else default

    return Health(
        interval=dur("interval", hc.interval, DEFAULT_INTERVAL),
        timeout=dur("timeout", hc.timeout, DEFAULT_TIMEOUT),
        retries=hc.retries or DEFAULT_RETRIES,
        start_period=dur("start_period", hc.start_period, 0.0),
    )


# ---- the services of a rendered config -----------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """How one Compose service takes part in a rollout."""

    name: str
    image: str  # the digest ref it runs
    built: str  # the built image it is (image repository name)
    one_shot: bool  # a job others wait for with service_completed_successfully
    stateful: str  # why it is never rolled ("named volume pgdata", "[deploy].stateful"), or ""
    fixed_ports: tuple[str, ...]  # host ports it publishes: cannot run twice
    health: Health | None
    grace: float  # stop_grace_period, seconds
    depends: tuple[str, ...]
    deadline: float  # health gate, seconds


@dataclass(frozen=True)
class Rendered:
    """A Compose config as ``docker compose config`` rendered it, parsed once where it is read.

    ``project`` is what every step reads. ``data`` is the same JSON, deep-frozen:
    the release's Compose file is written from it (its bytes are hashed and
    signed, so they are Compose's render, not a re-serialised model) and a
    service's spec is compared by it; nothing interprets it.
    """

    project: Project
    data: Mapping[str, Frozen]

    @classmethod
    def parse(cls, data: object, *, source: str) -> Rendered:
        """The render (JSON as loaded) as records; a value of the wrong shape is exit 2 naming ``source``."""
        project = compose_model.parse(data, source=source)
        frozen = compose_model.freeze(data)
        return cls(project, frozen if isinstance(frozen, Mapping) else MappingProxyType({}))

    def spec(self, name: str) -> Frozen:
        """A service's JSON as rendered (an empty mapping when the render has none), to tell a change by."""
        services = self.data.get("services")
        spec = services.get(name) if isinstance(services, Mapping) else None
        return spec or MappingProxyType({})

    def keeping(self, old: Rendered, names: Collection[str]) -> Rendered:
        """This config with the named services (services of both) exactly as ``old`` has them.

        The JSON and the records change alike: the records of ``old`` are what
        parsing the changed JSON would give, so nothing is parsed twice.
        """
        if not names:
            return self
        services = self.data.get("services")
        rendered = services.items() if isinstance(services, Mapping) else ()
        specs = {n: old.spec(n) if n in names else s for n, s in rendered}
        records = {n: old.project.services[n] if n in names else s for n, s in self.project.services.items()}
        return Rendered(
            replace(self.project, services=MappingProxyType(records)),
            MappingProxyType({**self.data, "services": MappingProxyType(specs)}),
        )


@dataclass
class Deployment:
    """A rendered release: the one Compose file it runs from and the services in rollout order."""

    env: str
    project: str
    dir: Path  # STATE/ENV/rN
    file: Path  # dir/compose.json: base + overlays + the digest override, as Compose rendered it
    config: Rendered
    services: list[Service]
    config_hash: str

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def compose(self) -> Project:
        """The release's Compose file as typed records."""
        return self.config.project


def repository(ref: str) -> str:
    """registry:port/namespace/NAME:tag or ...@sha256:... -> registry:port/namespace/NAME."""
    repo = ref.split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    last = last.split(":", 1)[0]  # a tag; the registry's port sits before a "/" and stays
    return f"{head}/{last}" if head else last


def image_name(ref: str) -> str:
    """registry/namespace/NAME:tag or ...@sha256:... -> NAME (the built image it is)."""
    return repository(ref).rsplit("/", 1)[-1]


def services_of(
    project: Project,
    *,
    stateful: Sequence[str],
    floor: float,
    image_health: Mapping[str, Healthcheck],
    source: str,
) -> list[Service]:
    """Each service's role and deadline; ``image_health``: digest ref -> the image's own healthcheck."""
    specs = project.services
    unknown = sorted(set(stateful) - set(specs))
    if unknown:
        raise InputError(
            f"[deploy].stateful names {', '.join(unknown)}, which {source} does not define",
            hint=f"services there: {', '.join(specs)}",
        )
    waited_for = project.jobs()
    out = []
    for name in project.order():
        spec = specs[name]
        image = spec.image
        one_shot = name in waited_for and (spec.restart or "no") == "no"
        volumes = spec.named_volumes
        why_stateful = (
            "[deploy].stateful"
            if name in stateful
            else (f"named volume {', '.join(volumes)}" if volumes and not one_shot else "")
        )
        fixed = tuple(p.published for p in spec.ports if p.published not in ("", "0"))
        where = f"{source}: services.{name}.healthcheck"
        health = health_of(spec.healthcheck, where=where)
        if health is None and spec.healthcheck is None:
            health = health_of(image_health.get(image), where=f"image {image} healthcheck")
        grace = (
            parse_duration(spec.stop_grace_period, where=f"{source}: services.{name}.stop_grace_period")
            if spec.stop_grace_period
            else DEFAULT_GRACE
        )
        out.append(
            Service(
                name=name,
                image=image,
                built=image_name(image),
                one_shot=one_shot,
                stateful=why_stateful,
                fixed_ports=fixed,
                health=health,
                grace=grace,
                depends=tuple(spec.depends_on),
                deadline=health.deadline(floor) if health else max(floor, 60.0),
            )
        )
    return out


def require_health(services: Sequence[Service], replace_stateful: Sequence[str], source: str) -> None:
    """A service that is rolled (or replaced on request) needs a healthcheck to be judged by."""
    for s in services:
        rolled = not s.one_shot and (not s.stateful or s.name in replace_stateful)
        if rolled and s.health is None:
            raise InputError(
                f"{source}: service {s.name!r} has no healthcheck, so a new container of it cannot be judged",
                hint="give it a healthcheck (in the image or the Compose file); only one-shot jobs "
                '(restart: "no", awaited with service_completed_successfully) may go without',
            )


def require_scalable(services: Sequence[Service], project: Project, source: str) -> None:
    """A rolled service runs its new containers beside the old ones: a fixed container name cannot run twice."""
    specs = project.services
    for s in services:
        rolled = not s.one_shot and not s.stateful and not s.fixed_ports
        name = specs[s.name].container_name if s.name in specs else None
        if rolled and name:
            raise InputError(
                f"{source}: service {s.name!r} sets container_name {name!r}, so a new container of it cannot "
                "start beside the old one (a rolling deploy runs both)",
                hint=f"remove services.{s.name}.container_name (Compose names containers PROJECT-{s.name}-N), "
                f"or list it in [deploy].stateful to have it replaced in place (downtime)",
            )


def require_readiness(
    services: Sequence[Service],
    project: Project,
    readiness: Mapping[str, Readiness],
    source: str,
) -> None:
    """Every [deploy.readiness.SERVICE] names a long-running service the deploy host can reach."""
    by = {s.name: s for s in services}
    internal = {n for n, net in project.networks.items() if net.internal}
    for name in readiness:
        key = f"[deploy.readiness.{name}]"
        svc = by.get(name)
        if svc is None:
            raise InputError(f"{key} names a service {source} does not define", hint=f"services there: {', '.join(by)}")
        if svc.one_shot:
            raise InputError(f"{key}: {name!r} is a one-shot job; it is judged by its exit code, not a route")
        nets = project.services[name].networks if name in project.services else None
        if nets is not None and not (set(nets) - internal):
            raise InputError(
                f"{key}: {name!r} is only on internal networks ({', '.join(sorted(nets))}), "
                "so the deploy host cannot ask its readiness route",
                hint="put it on one network that is not internal as well (e.g. the one its front door uses)",
            )


# ---- what may be deployed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """The images a deploy may use, and why they may."""

    env: str
    commit: str
    refs: dict[str, str]  # built image name -> repo@sha256:...
    image_ids: dict[str, str]  # built image name -> image ID
    verdicts: dict[str, str]  # stage -> when it passed (or the promotion it came by)
    source: str  # "build" or "promoted from ENV rN"
    image_tag: str = ""
    checks: tuple[Check, ...] = field(default_factory=tuple)


def _signature_checks(trusts: Sequence[cosign.ImageTrust]) -> tuple[Check, ...]:
    return tuple(c for t in trusts for c in t.checks)


def require_commit(env: str, commit: str, expected: str | None, source: str) -> None:
    """The release is of the commit its approvers saw (``--expect-commit``), or StageFailed naming both."""
    if expected is None or commit == expected:
        return
    raise StageFailed(
        f"refusing to deploy {env!r}: its release ({source}) is commit {commit}, not the expected commit {expected}",
        seen=f"release commit:  {commit}\nexpected commit: {expected}",
        hint="what was approved is not what would ship: build, gate and approve that commit "
        + "(a build of a dirty tree never matches)"
        if commit.endswith("-dirty")
        else "what was approved is not what would ship: run the pipeline for the approved commit again",
    )


def require_deployable(cfg: Config, env: str) -> None:
    """An environment that builds its own images must push them: a deploy pulls by digest."""
    e = cfg.env(env)
    if not e.promote_from and not e.push:
        raise InputError(
            f"environment {env!r} has push = false: its images are in no registry, so nothing can be pulled by digest",
            hint=f"deploy an environment with push = true (set it in [environments.{env}]), "
            "or promote one that has a live release (promote_from)",
        )


def _from_build(
    cfg: Config,
    env: str,
    public_key: str | None,
    expect_commit: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Candidate:
    require_deployable(cfg, env)
    record = manifest.load(cfg.project.artifacts, env)
    require_commit(env, record.commit + ("-dirty" if record.dirty else ""), expect_commit, "the recorded build")
    unpushed = [i.name for i in record.services if "@sha256:" not in i.ref]
    if unpushed:
        raise InputError(
            f"the recorded build of {env!r} has no registry digest for {', '.join(unpushed)}",
            hint=f"run `pipelines build --env {env}` (it pushes) before deploying",
        )
    subjects = {i.name: i.image_id for i in record.services}
    passed: dict[str, str] = {}
    checks: list[Check] = []
    refused: list[str] = []
    for stage in GATE_STAGES:
        v = verdicts.load(cfg.project.artifacts, env, stage)
        why = verdicts.covers(v, subjects)
        full = not why and v is not None and stage == "scan" and cfg.env(env).require_full_coverage
        if full and v is not None and (gap := verdicts.coverage_problem(v.coverage)):
            why = f"passed at {v.at}, but {gap} (environments.{env}.require_full_coverage)"
        if why or v is None:
            refused.append(f"{stage}: {why or 'never ran on this build'}")
            checks.append(Check(f"{stage} verdict", Outcome.FAIL, why, group="gate"))
        else:
            passed[stage] = v.at
            checks.append(Check(f"{stage} verdict", Outcome.PASS, f"passed at {v.at}", group="gate"))
    if refused:
        raise StageFailed(
            f"refusing to deploy the build of {env!r}: not every gate passed for exactly these images",
            seen="\n".join(refused),
            hint=f"run `pipelines scan --env {env}`, `pipelines verify --env {env}` and `pipelines smoke --env {env}` "
            "on this build; a rebuild needs its own verdicts",
        )
    trusts = cosign.require_signed(cfg, env, public_key)
    # The verdicts and the attested scan verdict name image IDs; the release runs digests. Each digest is held to
    # the recorded ID before the record is believed: an edited record could pair another pushed (and signed)
    # image with this one's verdicts, and without attestations nothing signed ties the two (exit 2, naming both).
    with Engine.connect(environ) as engine:
        for img in record.services:
            subjects_mod.resolve(engine, img)
    return Candidate(
        env=env,
        commit=record.commit + ("-dirty" if record.dirty else ""),
        refs={i.name: i.ref for i in record.services},
        image_ids=subjects,
        verdicts=passed,
        source="build",
        image_tag=record.image_tag(),
        checks=(*checks, *_signature_checks(trusts)),
    )


def compose_images(config: Project) -> dict[str, str]:
    """service -> image of every service in a rendered Compose config."""
    return {name: spec.image for name, spec in sorted(config.services.items())}


def verify_release(
    cfg: Config,
    refs: Mapping[str, str],
    image_ids: Mapping[str, str],
    public_key: str | None,
    *,
    refusing: str,
    require_full_coverage: bool = False,
    config: Project | None = None,
    known_ids: Mapping[str, str] | None = None,
) -> tuple[Check, ...]:
    """Every image of a recorded release checked again against today's public key (promotion, rollback).

    A release passed its gate when it was deployed; its signatures are checked
    again whenever it is put back or carried to another environment, so an
    image signed with a key that has since been replaced is refused (exit 1).
    With ``config`` (the release's Compose file), every image a service runs is
    checked too, not only those the release was built of: a stateful service
    kept running as it was runs an image of an earlier release. ``known_ids``
    maps such a ref to its image ID (from the history), for its attestation.
    """
    public = cosign.public_key_for(cfg, public_key)
    todo = dict(sorted(refs.items()))
    ids = dict(image_ids)
    bad: list[str] = []
    covered = set(refs.values())
    for service, ref in (compose_images(config) if config is not None else {}).items():
        if ref in covered:
            continue
        covered.add(ref)
        if "@sha256:" not in ref:
            bad.append(f"service {service} ({ref or 'no image'}): not an image by digest")
            continue
        key = f"{image_name(ref)} (service {service})"
        todo[key] = ref
        ids[key] = (known_ids or {}).get(ref, "")
    trusts = []
    for name, ref in todo.items():
        img = manifest.BuiltImage(
            name=name,
            kind="service",
            ref=ref,
            tags=(),
            image_id=ids.get(name, ""),
            digest=ref.rsplit("@", 1)[-1],
            seconds=0.0,
            pushed=True,
        )
        trusts.append(
            cosign.check_image(
                img, public, attestations=cfg.signing.attest, require_full_coverage=require_full_coverage
            )
        )
    bad += [f"{t.name} ({t.ref}): {c.detail}" for t in trusts for c in t.checks if not c.ok]
    bad += [
        f"{t.name} ({t.ref}): no release of this history was made of it, so its attested scan verdict "
        "cannot be matched to an image ID"
        for t in trusts
        if not t.ok and not ids.get(t.name) and any(c.ok and c.name == "signature" for c in t.checks)
    ]
    if bad:
        raise cosign.SignatureError(
            f"{refusing}: {len(bad)} signature check(s) failed against {public}",
            ref=", ".join(t.ref for t in trusts if not t.ok) or ", ".join(todo.values()),
            seen="\n".join(bad),
            hint="sign the images with the matching key (`pipelines sign --env ENV`)",
        )
    return _signature_checks(trusts)


def require_same_registry(cfg: Config, env: str, source_env: str, release: str, refs: Mapping[str, str]) -> None:
    """A promoted release's images are in the target environment's registry, or InputError naming both.

    Promotion copies nothing: the target runs the source's images where they are. Releases made while the
    source had another registry, or a PIPELINES_REGISTRY of this run that differs from the one the source
    was deployed with, would have the target pull from a registry that is not its own.
    """
    prefix = cfg.registry_for(env).repo("") + "/"
    elsewhere = sorted(f"{name}: {ref}" for name, ref in refs.items() if not ref.startswith(prefix))
    if elsewhere:
        raise InputError(
            f"refusing to promote {source_env} {release} to {env!r}: its images are not in the registry of "
            f"{env!r} ({prefix.rstrip('/')}), and promotion copies no image between registries",
            seen="\n".join(elsewhere),
            hint=f"deploy {env!r} with the registry {source_env!r} was deployed with (check PIPELINES_REGISTRY and "
            f"PIPELINES_NAMESPACE), or deploy {source_env!r} again with {env!r}'s registry first",
        )


def _promoted(
    cfg: Config,
    env: str,
    source_env: str,
    public_key: str | None,
    store: releases.Store,
    expect_commit: str | None = None,
) -> Candidate:
    live = store.load(source_env).live()
    if live is None:
        raise StageFailed(
            f"refusing to deploy {env!r}: it is promoted from {source_env!r}, which has no live release",
            hint=f"deploy {source_env!r} first (`pipelines deploy --env {source_env}`); "
            f"{env!r} then gets exactly its images",
        )
    public = cosign.public_key_for(cfg, public_key)
    store.check_sealed(live, public)
    require_commit(env, live.commit, expect_commit, f"promoted from {source_env} {live.id}")
    require_same_registry(cfg, env, source_env, live.id, live.refs)
    signed = verify_release(
        cfg,
        live.refs,
        live.image_ids,
        public,
        refusing=f"refusing to promote {source_env} {live.id} to {env!r}",
        # What the target environment requires, not what the source did: prod may demand more than staging.
        require_full_coverage=cfg.env(env).require_full_coverage,
    )
    origin = f"promoted from {source_env} {live.id}"
    checks = (Check("promotion", Outcome.PASS, f"{source_env} {live.id} is live ({live.at})", group="gate"),)
    return Candidate(
        env=env,
        commit=live.commit,
        refs=dict(live.refs),
        image_ids=dict(live.image_ids),
        verdicts={**live.verdicts, "promotion": origin},
        source=origin,
        checks=(*checks, *signed),
    )


def candidate(
    ctx: Context, env: str, public_key: str | None, store: releases.Store, expect_commit: str | None = None
) -> Candidate:
    """The images ``env`` may run now, or the error that says why none (StageFailed: exit 1; else exit 2).

    With ``expect_commit``, a release of any other commit is refused before its signatures are checked.
    """
    e = ctx.cfg.env(env)
    if e.promote_from:
        return _promoted(ctx.cfg, env, e.promote_from, public_key, store, expect_commit)
    return _from_build(ctx.cfg, env, public_key, expect_commit, ctx.environ)


# ---- rendering a release -------------------------------------------------------------------------


def _compose_env(ctx: Context, env_name: str, secrets_dir: Path, image_tag: str) -> dict[str, str]:
    reg = ctx.cfg.registry_for(env_name)
    env = {
        "REGISTRY": reg.address,
        "NAMESPACE": reg.namespace,
        "SECRETS_DIR": str(secrets_dir),
    }
    if image_tag:
        env["IMAGE_TAG"] = image_tag
    # What the operator set wins (SECRETS_DIR of a real secret store, ...); every other variable
    # of the environment reaches Compose as it is (API_PORT, LOG_LEVEL, ...).
    for k in list(env):
        if ctx.environ.get(k):
            env[k] = ctx.environ[k]
    return env


def _render(stack: Stack, *, source: str) -> Rendered:
    r = stack.compose("config", "--format", "json", what="docker compose config", check=False, timeout=60)
    if not r.ok:
        raise InputError(
            f"docker compose rejects the configuration of {stack.env_name!r}",
            seen=r.stderr.strip()[-2000:] or r.stdout[-2000:],
            hint="`docker compose config` with the same files shows the same",
        )
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise PipelineError("docker compose config printed no JSON", seen=str(exc)) from None
    return Rendered.parse(data, source=source)


def _fill_secrets(config: Project, secrets_dir: Path) -> int:
    """Secrets the stack reads from the deploy's own secrets directory: made once, kept for every release."""
    made = 0
    for name, spec in config.secrets.items():
        file = Path(spec.file or "")
        if file.parent == secrets_dir and not file.exists():
            secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            file.write_text(secrets_mod.token_urlsafe(24) + "\n")
            file.chmod(0o644)  # bind-mounted into containers that run as other users
            made += 1
        elif spec.file and not file.is_file():
            raise InputError(
                f"the stack's secret {name!r} names {file}, which does not exist",
                hint="create it, or point SECRETS_DIR at the directory that holds the secrets",
            )
    return made


def render(
    ctx: Context,
    cand: Candidate,
    *,
    project: str,
    release_dir: Path,
    secrets_dir: Path,
    extra_files: Sequence[Path],
) -> Rendered:
    """The release's own Compose file: every service pinned to its digest; returns the rendered config."""
    cfg = ctx.cfg
    env = _compose_env(ctx, cand.env, secrets_dir, cand.image_tag)
    release_dir.mkdir(parents=True, exist_ok=True)
    base = Stack(cfg, cand.env, project, release_dir, ctx.tools, tuple(extra_files), env=dict(env))
    services = _render(base, source=f"the Compose config of {cand.env!r}").project.services
    if not services:
        raise InputError(f"the Compose config of {cand.env!r} defines no services: nothing to deploy")
    pins: dict[str, dict[str, str]] = {}
    strangers = []
    namespace = cfg.registry_for(cand.env).namespace
    for name, spec in services.items():
        img = spec.image
        built = image_name(img)
        # .../NAMESPACE/NAME: the namespace must be the environment's, whatever registry the files name.
        suffix = f"/{namespace}/{built}" if namespace else f"/{built}"
        if built not in cand.refs or not repository(img).endswith(suffix):
            strangers.append(f"{name}: {img or '(no image)'}")
            continue
        pins[name] = {"image": cand.refs[built]}
    if strangers:
        raise InputError(
            f"services of {cand.env!r} run images that are not part of the release ({', '.join(sorted(cand.refs))})",
            seen="\n".join(strangers),
            hint="every deployed image is built, scanned, verified, smoke-tested and signed by the pipeline: "
            "add it as a service or image in pipeline.toml",
        )
    override = release_dir / "images.override.yaml"
    override.write_text(
        "# Generated by `pipelines deploy`: every service by digest, never by tag.\n"
        + yaml.safe_dump({"services": pins}, sort_keys=True)
    )
    pinned = Stack(cfg, cand.env, project, release_dir, ctx.tools, (*extra_files, override), env=dict(env))
    rendered = _render(pinned, source=f"the pinned Compose config of {cand.env!r}")
    _fill_secrets(rendered.project, secrets_dir)
    return rendered


def write_release_file(release_dir: Path, config: Rendered) -> tuple[Path, str]:
    """The rendered config as the release's Compose file, and its sha256."""
    text = json.dumps(compose_model.thaw(config.data), indent=2, sort_keys=True) + "\n"
    file = release_dir / "compose.json"
    file.write_text(text)
    return file, hashlib.sha256(text.encode()).hexdigest()


def load_release(store: releases.Store, env: str, release: releases.Release, public_key: str) -> tuple[Path, Rendered]:
    """A recorded release's Compose file, checked against its hash as the release's signed statement says."""
    store.check_sealed(release, public_key)
    file = store.release_dir(env, release.id) / "compose.json"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"release {release.id} of {env!r} has no readable Compose file ({exc})",
            hint="the state directory lost it; deploy again instead of rolling back to it",
        ) from None
    if hashlib.sha256(text.encode()).hexdigest() != release.config_hash:
        # The state was changed behind its signed hash: as untrusted as a changed record (exit 1), not bad input.
        raise releases.RecordNotTrusted(
            f"{file}: its content does not match the hash recorded for release {release.id}",
            hint="the file was changed after the deploy; deploy again instead of rolling back to it",
        )
    return file, Rendered.parse(json.loads(text), source=str(file))
