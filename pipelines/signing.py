"""The sign and verify-signatures stages: a scanned build's images signed with cosign, and checked.

After a passing scan, ``pipelines sign`` signs every service image of an
environment's recorded build, by digest, with a cosign key pair, and attaches
the scan verdict and the CycloneDX SBOM as signed in-toto attestations. Deploy
(and ``pipelines verify-signatures``) checks each image against the configured
public key and refuses one that is unsigned, signed by another key or missing.
The cosign primitives and those checks, which deploy shares, are
``pipelines.cosign``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import manifest, registry, verdicts
from . import subjects as subjects_mod
from .cosign import (
    SBOM_TYPE,
    SCAN_VERDICT_TYPE,
    SIGN_OFFLINE,
    VERIFY_OFFLINE,
    attest,
    check_image,
    cosign_version,
    private_key_location,
    public_key_for,
    pushed_record,
    require_env_key,
    sign,
    split_ref,
    verify,
)
from .errors import InputError, StageFailed
from .result import Check, Context, Outcome, Result, Table

# ---- the two stages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    env: str | None = None
    key: str | None = None  # overrides [signing].key
    public_key: str | None = None  # overrides [signing].public_key


def _predicate(
    out_dir: Path, img: manifest.BuiltImage, v: verdicts.Verdict, record: manifest.BuildRecord, sbom: Path
) -> Path:
    data = {
        "stage": v.stage,
        "env": v.env,
        "passed": v.passed,
        "at": v.at,
        "headline": v.headline,
        "image": img.name,
        "image_id": img.image_id,
        # The digest signed, from the reference handed to cosign (resolved to image_id before signing).
        "digest": split_ref(img.ref)[1],
        "commit": record.commit,
        "reports": v.reports,
        "sbom_sha256": hashlib.sha256(sbom.read_bytes()).hexdigest(),
        # The data the verdict rests on, signed with it: an environment requiring full coverage reads it here.
        "coverage": v.coverage.model_dump(mode="json") if v.coverage is not None else None,
    }
    file = out_dir / f"{img.name}.scan-verdict.json"
    file.write_text(json.dumps(data, indent=2) + "\n")
    return file


def run_sign(ctx: Context, opts: Options) -> Result:
    """Sign the env's recorded build, only when the scan passed for exactly these images."""
    cfg, env = ctx.cfg, ctx.cfg.env(opts.env).name
    key = opts.key or cfg.signing.key
    if not key:
        raise InputError(
            f"{cfg.file}: [signing].key is not set and no --key given",
            hint="generate a pair (`pipelines keys generate --out DIR`, outside the project) and set [signing].key",
        )
    key = private_key_location(key, cfg.root)
    require_env_key(key, ctx.environ, "the private key", "--key")
    password = ctx.environ.get(cfg.signing.password_env)
    if password is None:
        raise InputError(
            f"the private key's password is not in ${cfg.signing.password_env}",
            hint=f"export {cfg.signing.password_env} (never put it in the config or on the command line)",
        )
    record = pushed_record(cfg, env)
    registry.check(cfg.registry_for(env).address)
    # The record pairs each digest with an image ID; the registry's image under that digest must be the one the
    # scan judged, or a record edited after the scan would have another image signed with this one's verdict.
    with ctx.engine() as engine:
        subjects = {i.name: subjects_mod.resolve(engine, i).image_id for i in record.services}
    verdict = verdicts.load(cfg.project.artifacts, env, "scan")
    why = verdicts.covers(verdict, subjects)
    if why or verdict is None:
        raise StageFailed(
            f"refusing to sign the build of {env!r}: the scan verdict for these images {why or 'is missing'}",
            seen=", ".join(f"{n} {i[:19]}" for n, i in sorted(subjects.items())),
            hint=f"run `pipelines scan --env {env}` on this build; only a passing scan is signed",
        )
    public = opts.public_key or cfg.signing.public_key
    out_dir = cfg.project.artifacts / "signing" / f"{ctx.stamp()}-{env}"
    out_dir.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    rows: list[tuple[str, ...]] = []
    timings: dict[str, float] = {}
    for img in record.services:
        notes = {
            "pipelines.env": env,
            "pipelines.image": img.name,
            "pipelines.commit": record.commit,
            "pipelines.scan": f"passed {verdict.at}",
        }
        s = sign(img.ref, key, password, notes)
        checks.append(Check("signed", Outcome.PASS, img.ref, s, img.name, "cosign sign --tlog-upload=false"))
        timings[f"{img.name} sign"] = s
        attested = []
        if cfg.signing.attest:
            sbom = Path(verdict.reports) / f"{img.name}.cdx.json"
            if not sbom.is_file():
                raise InputError(
                    f"the scan's SBOM for {img.name} is missing ({sbom})",
                    hint=f"run `pipelines scan --env {env}` again",
                )
            pred = _predicate(out_dir, img, verdict, record, sbom)
            for type_, file, label in ((SCAN_VERDICT_TYPE, pred, "scan verdict"), (SBOM_TYPE, sbom, "SBOM")):
                a = attest(img.ref, file, type_, key, password)
                timings[f"{img.name} attest {label}"] = a
                attested.append(f"{label} {a:.2f}s")
                checks.append(
                    Check(f"{label} attested", Outcome.PASS, str(file), a, img.name, f"cosign attest {type_}")
                )
        vs = "-"
        if public:
            v = verify(img.ref, public)
            vs = f"{v.seconds:.2f}s"
            timings[f"{img.name} verify"] = v.seconds
            checks.append(Check("verifies with the public key", Outcome.PASS, public, v.seconds, img.name, v.command))
        rows.append((img.name, split_ref(img.ref)[1][:19], f"{s:.2f}s", ", ".join(attested) or "-", vs))
    notices = [
        f"{cosign_version()}; offline: no transparency log ({' '.join(SIGN_OFFLINE)}), key {key}",
        f"scan verdict: {verdict.headline} ({verdict.at})",
    ]
    if not public:
        notices.append("no [signing].public_key: signatures were not checked after signing")
    return Result(
        stage="sign",
        headline=f"signed {len(record.services)} images of {env} by digest"
        + (" with the scan verdict and SBOM attested" if cfg.signing.attest else ""),
        checks=tuple(checks),
        notices=tuple(notices),
        tables=(Table(("image", "digest", "sign", "attestations", "verify"), tuple(rows), "signed"),),
        timings=timings,
        data={"env": env, "key": key, "images": {i.name: i.ref for i in record.services}},
        out_dir=out_dir,
        env=env,
        subjects=subjects,
    )


def run_verify(ctx: Context, opts: Options) -> Result:
    cfg, env = ctx.cfg, ctx.cfg.env(opts.env).name
    public = public_key_for(cfg, opts.public_key)
    record = pushed_record(cfg, env)
    registry.check(cfg.registry_for(env).address)
    full = cfg.env(env).require_full_coverage
    trusts = [
        check_image(i, public, attestations=cfg.signing.attest, require_full_coverage=full) for i in record.services
    ]
    checks = tuple(c for t in trusts for c in t.checks)
    refused = [t.name for t in trusts if not t.ok]
    names = ("signature", *(("scan verdict attested", "SBOM attested") if cfg.signing.attest else ()))
    rows = []
    for t in trusts:
        by_name = {c.name: f"{c.outcome.value} {c.seconds:.2f}s" for c in t.checks}
        # A failed signature ends the image's checks: its attestations are "not checked", never blank.
        rows.append((t.name, t.ref.rsplit("@", 1)[1][:19], *(by_name.get(n, "not checked") for n in names)))
    headers = ("image", "digest", "signature", *(("scan verdict", "SBOM") if cfg.signing.attest else ()))
    why = tuple((c.group, c.name, c.detail) for c in checks if not c.ok)
    refusals = (Table(("image", "check", "why refused"), why, "refused"),) if why else ()
    headline = (
        f"refused: {', '.join(refused)} not signed as required by {public}"
        if refused
        else f"all {len(trusts)} images of {env} are signed by {public}"
    )
    return Result(
        stage="verify-signatures",
        headline=headline,
        checks=checks,
        notices=(
            f"{cosign_version()}; offline: the transparency log is not consulted ({' '.join(VERIFY_OFFLINE)})",
            *(
                [
                    f"environments.{env}.require_full_coverage: the attested scan verdict must say its data covered "
                    "every image in full"
                ]
                if full
                else []
            ),
        ),
        tables=(Table(headers, tuple(rows), "signatures"), *refusals),
        timings={c.group + " " + c.name: c.seconds for c in checks},
        data={"env": env, "public_key": public, "images": {t.name: t.ref for t in trusts}},
        out_dir=cfg.project.artifacts / "signing" / f"{ctx.stamp()}-{env}-verify",
        env=env,
        subjects={i.name: i.image_id for i in record.services},
    )
