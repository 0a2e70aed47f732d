"""Image and file signatures with cosign, key-based and offline; attestations; the checks that trust an image.

The sign stage (``pipelines.signing``) makes the signatures and attestations;
deploy and ``pipelines verify-signatures`` check them here, against the
configured public key, and refuse an image that is unsigned, signed by another
key or missing. Deploy also signs and checks its release records (blobs).

Offline by construction: no Fulcio certificate, no Rekor transparency log
(``--tlog-upload=false`` when signing, ``--insecure-ignore-tlog=true`` when
verifying), so the only trust root is the public key. Signatures and
attestations are stored in the registry beside the image (cosign's
``sha256-DIGEST.sig`` / ``.att`` tags).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import _proc, manifest, registry, verdicts
from .config import Config
from .errors import CommandFailed, InputError, PipelineError, RegistryUnavailable, StageFailed
from .result import Check, Outcome
from .tools import which

TIMEOUT = 300.0
# The only flags that make cosign work without a transparency log. With a key
# and no tlog, cosign contacts nothing but the registry (no Fulcio, Rekor or TUF).
SIGN_OFFLINE = ("--tlog-upload=false",)
VERIFY_OFFLINE = ("--insecure-ignore-tlog=true",)
# Predicate types of the two attestations. cosign spells CycloneDX "cyclonedx"
# on the command line and https://cyclonedx.org/bom in the statement.
SCAN_VERDICT_TYPE = "https://github.com/pipelines-dev/pipelines/attestations/scan-verdict/v1"
SBOM_TYPE = "cyclonedx"
_STATEMENT_TYPES = {"cyclonedx": "https://cyclonedx.org/bom"}
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial tcp",
    "tls handshake",
    "http response to https client",
    "context deadline exceeded",
)
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class SignatureError(StageFailed):
    """An image's signature or attestation does not hold: deploy must refuse it (exit 1)."""

    def __init__(self, what: str, *, ref: str, seen: str | None = None, hint: str | None = None) -> None:
        super().__init__(what, seen=seen, hint=hint)
        self.ref = ref


class NotSigned(SignatureError):
    """The image has no signature at all."""


class WrongKey(SignatureError):
    """The image is signed, but no signature verifies against the public key."""


class AttestationMissing(SignatureError):
    """A required attestation is absent, signed by another key or says the wrong thing."""


class ImageMissing(PipelineError):
    """The digest is not in the registry: nothing to sign or verify (exit 2)."""


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


@dataclass(frozen=True)
class Verified:
    ref: str
    digest: str
    signatures: int  # how many signatures on the image verify against the key
    annotations: Mapping[str, str]
    seconds: float
    command: str  # the cosign command line, as evidence


@dataclass(frozen=True)
class Attested:
    ref: str
    type: str
    predicates: tuple[Mapping[str, Any], ...]  # newest last
    seconds: float
    command: str


# ---- the cosign binary and its flags -------------------------------------------------------------


def cosign_binary() -> str:
    return which(
        "cosign",
        hint="run `sudo scripts/provision.sh` (it installs Debian trixie's cosign) or put cosign >= 2.2 on PATH",
    )


def cosign_version() -> str:
    """What the binary says it is; Debian's build reports GitVersion "devel" and its Go version."""
    r = _proc.run([cosign_binary(), "version", "--json"], timeout=30, check=False, quiet=True)
    try:
        info = json.loads(r.stdout)
        return f"cosign {info.get('gitVersion', '?')} ({info.get('goVersion', '?')})"
    except (json.JSONDecodeError, AttributeError):
        return "cosign (version unknown)"


def registry_flags(ref: str) -> list[str]:
    """Plain HTTP only for loopback registries (the local one), as everywhere else in the pipeline."""
    host = ref.split("/", 1)[0]
    if registry.scheme(host) == "http":
        return ["--allow-insecure-registry", "--allow-http-registry"]
    return []


def split_ref(ref: str) -> tuple[str, str]:
    """repo@sha256:... -> (repo, digest); anything else is refused: a tag can move after signing."""
    repo, sep, digest = ref.partition("@")
    if not sep or not digest.startswith("sha256:") or len(digest) != 71 or "/" not in repo:
        raise InputError(
            f"{ref!r} does not name an image by digest (REGISTRY/REPO@sha256:...)",
            hint="images are signed and verified by digest only; push the build (an environment with push = true)",
        )
    return repo, digest


def _key_arg(key: str | Path) -> str:
    text = str(key)
    if text.startswith("env://"):
        return text
    path = Path(text)
    if not path.is_file():
        raise InputError(f"key file {path} does not exist", hint="generate a pair with `pipelines keys generate`")
    return str(path)


def _text(r: _proc.Result) -> str:
    return (r.stderr + "\n" + r.stdout).strip()


def _raise_for(r: _proc.Result, ref: str, what: str, key: str, *, shown: str) -> None:
    """Turn a failed cosign run into the error that says what happened to whom."""
    text = _text(r)
    low = text.lower()
    seen = f"$ {shown}\n" + _proc.tail(text, 8)
    if any(s in low for s in _UNREACHABLE):
        raise RegistryUnavailable(
            f"{what}: the registry of {ref} does not answer",
            seen=seen,
            hint="start the registry (scripts/provision.sh runs one on 127.0.0.1:5000) and run again",
        )
    if "decrypt" in low and "fail" in low:
        raise PipelineError(
            f"{what}: the private key {key} cannot be decrypted with the password given",
            seen=seen,
            hint="set the password variable ([signing].password_env, default COSIGN_PASSWORD) to the key's password",
        )
    if "loading public key" in low or ("pem" in low and "public key" in low):
        raise InputError(f"{what}: {key} is not a readable cosign public key", seen=seen, hint="name the .pub file")
    raise CommandFailed(f"{what} failed with exit code {r.returncode}", argv=list(r.argv), seen=seen)


def _manifest_exists(ref: str, *, timeout: float = 10.0) -> None:
    """cosign says "no signatures found" for a digest that is not there at all: look first."""
    repo, digest = split_ref(ref)
    host, path = repo.split("/", 1)
    url = f"{registry.scheme(host)}://{host}/v2/{path}/manifests/{digest}"
    req = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 - the image's own registry
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # needs credentials: cosign uses docker's login, so let it judge
            return
        if exc.code == 404:
            raise ImageMissing(
                f"{ref} is not in the registry",
                seen=f"HEAD {url} -> HTTP 404",
                hint="push the build again (`pipelines build --env ENV`) before signing or deploying it",
            ) from None
        seen = f"HEAD {url} -> HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        seen = f"HEAD {url} -> {getattr(exc, 'reason', exc)}"
    raise RegistryUnavailable(
        f"the registry of {ref} does not answer", seen=seen, hint="start the registry and run again"
    )


def _cosign(
    argv: Sequence[str], *, what: str, password: str | None = None, key: str | Path | None = None
) -> tuple[_proc.Result, str]:
    """cosign, given the private key's password and (for an env:// ``key``) its variable explicitly.

    Children inherit neither while a command runs (SigningSettings.secret_variables, _proc.withhold): cosign is the only
    program that gets them, and only the calls that sign.
    """
    env: dict[str, str] = {}
    if password is not None:
        env["COSIGN_PASSWORD"] = password
    if key is not None and str(key).startswith("env://"):
        var = str(key)[len("env://") :]
        if var in os.environ:
            env[var] = os.environ[var]
    secrets = [v for v in env.values() if v]
    shown = _proc.redact(argv, secrets)
    r = _proc.run(argv, timeout=TIMEOUT, check=False, what=what, env=env or None, secrets=secrets, quiet=True, input="")
    return r, shown


# ---- the primitives ------------------------------------------------------------------------------


def generate_keys(directory: Path, password: str, *, name: str = "cosign") -> KeyPair:
    """A new ECDSA P-256 pair: DIRECTORY/NAME.key (encrypted with ``password``, mode 0600) and NAME.pub."""
    if not password:
        raise InputError(
            "no password for the private key",
            hint="set COSIGN_PASSWORD (or the variable [signing].password_env names); the key is stored encrypted",
        )
    pair = KeyPair(directory / f"{name}.key", directory / f"{name}.pub")
    existing = [str(p) for p in (pair.private, pair.public) if p.exists()]
    if existing:
        raise InputError(
            f"{', '.join(existing)} already exist(s); refusing to overwrite a key",
            hint="choose another directory, or remove the old pair knowingly",
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [cosign_binary(), "generate-key-pair", "--output-key-prefix", str(directory / name)]
    r, _ = _cosign(argv, what="cosign generate-key-pair", password=password)
    if not r.ok or not pair.private.is_file() or not pair.public.is_file():
        raise CommandFailed(f"cosign generate-key-pair failed with exit code {r.returncode}", seen=_text(r))
    pair.private.chmod(0o600)
    return pair


def sign(ref: str, key: str | Path, password: str, annotations: Mapping[str, str] | None = None) -> float:
    """Sign the image ``ref`` (by digest) and store the signature in its registry; returns seconds."""
    split_ref(ref)
    _manifest_exists(ref)
    argv = [cosign_binary(), "sign", "--key", _key_arg(key), *SIGN_OFFLINE, *registry_flags(ref), "--yes"]
    for k, v in sorted((annotations or {}).items()):
        argv += ["-a", f"{k}={v}"]
    argv.append(ref)
    start = time.monotonic()
    r, shown = _cosign(argv, what=f"cosign sign {ref}", password=password, key=key)
    if not r.ok:
        _raise_for(r, ref, f"signing {ref}", str(key), shown=shown)
    return round(time.monotonic() - start, 3)


def verify(ref: str, public_key: str | Path) -> Verified:
    """The image's signatures that verify against ``public_key``; raises NotSigned or WrongKey otherwise."""
    _, digest = split_ref(ref)
    _manifest_exists(ref)
    argv = [cosign_binary(), "verify", "--key", _key_arg(public_key), *VERIFY_OFFLINE, *registry_flags(ref)]
    argv += ["--output", "json", ref]
    start = time.monotonic()
    r, shown = _cosign(argv, what=f"cosign verify {ref}")
    seconds = round(time.monotonic() - start, 3)
    if not r.ok:
        low = _text(r).lower()
        seen = f"$ {shown}\n" + _proc.tail(_text(r), 6)
        if "no signatures found" in low:
            raise NotSigned(
                f"{ref} is not signed",
                ref=ref,
                seen=seen,
                hint="sign it after a passing scan: `pipelines sign --env ENV`",
            )
        if "no matching signatures" in low:
            raise WrongKey(
                f"{ref} is signed, but not by the key {public_key}",
                ref=ref,
                seen=seen,
                hint="the image was signed with another key: check [signing].public_key, or sign it with yours",
            )
        _raise_for(r, ref, f"verifying {ref}", str(public_key), shown=shown)
    try:
        payloads = json.loads(r.stdout)
        found = [p["critical"]["image"]["docker-manifest-digest"] for p in payloads]
        notes = {str(k): str(v) for p in payloads for k, v in (p.get("optional") or {}).items()}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CommandFailed(f"cosign verify {ref}: unexpected output ({exc})", seen=_proc.tail(r.stdout, 5)) from None
    # cosign checked this already; a signature that names another digest must still never pass here.
    if not found or any(d != digest for d in found):
        raise WrongKey(f"{ref}: the verified signatures name other digests", ref=ref, seen=", ".join(found))
    return Verified(ref, digest, len(found), notes, seconds, shown)


def attest(ref: str, predicate_file: Path, type_: str, key: str | Path, password: str) -> float:
    """Attach ``predicate_file`` as a signed in-toto attestation of ``type_``, replacing an older one."""
    split_ref(ref)
    _manifest_exists(ref)
    argv = [cosign_binary(), "attest", "--key", _key_arg(key), *SIGN_OFFLINE, *registry_flags(ref), "--yes"]
    argv += ["--replace", "--type", type_, "--predicate", str(predicate_file), ref]
    start = time.monotonic()
    r, shown = _cosign(argv, what=f"cosign attest {ref}", password=password, key=key)
    if not r.ok:
        _raise_for(r, ref, f"attesting {type_} for {ref}", str(key), shown=shown)
    return round(time.monotonic() - start, 3)


def verify_attestation(ref: str, public_key: str | Path, type_: str) -> Attested:
    """The predicates of ``type_`` on ``ref`` signed by ``public_key``; AttestationMissing otherwise."""
    _, digest = split_ref(ref)
    _manifest_exists(ref)
    argv = [cosign_binary(), "verify-attestation", "--key", _key_arg(public_key), *VERIFY_OFFLINE]
    argv += [*registry_flags(ref), "--type", type_, ref]
    start = time.monotonic()
    r, shown = _cosign(argv, what=f"cosign verify-attestation {ref}")
    seconds = round(time.monotonic() - start, 3)
    if not r.ok:
        low = _text(r).lower()
        if "no matching attestations" in low or "none of the attestations matched" in low:
            raise AttestationMissing(
                f"{ref} has no {type_} attestation signed by {public_key}",
                ref=ref,
                seen=f"$ {shown}\n" + _proc.tail(_text(r), 6),
                hint="attestations are made by `pipelines sign --env ENV` after a passing scan",
            )
        _raise_for(r, ref, f"verifying the {type_} attestation of {ref}", str(public_key), shown=shown)
    want = _STATEMENT_TYPES.get(type_, type_)
    predicates = []
    for line in r.stdout.splitlines():
        if not line.strip():
            continue
        try:
            envelope = json.loads(line)
            statement = json.loads(base64.b64decode(envelope["payload"]))
        except (json.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
            raise CommandFailed(f"cosign verify-attestation {ref}: unexpected output ({exc})") from None
        subjects = {f"sha256:{s.get('digest', {}).get('sha256')}" for s in statement.get("subject") or []}
        if statement.get("predicateType") == want and subjects == {digest}:
            predicates.append(statement.get("predicate") or {})
    if not predicates:
        raise AttestationMissing(f"{ref}: no verified {type_} attestation names this digest", ref=ref)
    return Attested(ref, type_, tuple(predicates), seconds, shown)


def require_env_key(key: str, environ: Mapping[str, str], what: str, flag: str) -> None:
    """An env:// key whose variable is unset is a clear error before anything runs (sign's key, deploy's record key)."""
    _require_env_key(key, environ, what, flag)


def sign_blob(blob: Path, key: str | Path, password: str) -> Path:
    """Sign a file (a release record) offline with the private key; the signature goes to BLOB.sig."""
    sig = blob.with_name(blob.name + ".sig")
    argv = [cosign_binary(), "sign-blob", "--key", _key_arg(key), *SIGN_OFFLINE, "--yes"]
    argv += ["--output-signature", str(sig), str(blob)]
    r, shown = _cosign(argv, what=f"cosign sign-blob {blob.name}", password=password, key=key)
    if not r.ok or not sig.is_file():
        _raise_for(r, str(blob), f"signing {blob}", str(key), shown=shown)
    return sig


def verify_blob(blob: Path, public_key: str | Path) -> str:
    """Check BLOB.sig against the public key: SignatureError when it is missing or does not verify.

    Returns the cosign command line, as evidence.
    """
    sig = blob.with_name(blob.name + ".sig")
    if not blob.is_file() or not sig.is_file():
        missing = ", ".join(str(p) for p in (blob, sig) if not p.is_file())
        raise NotSigned(f"{blob} is not signed ({missing} missing)", ref=str(blob))
    argv = [cosign_binary(), "verify-blob", "--key", _key_arg(public_key), *VERIFY_OFFLINE]
    argv += ["--signature", str(sig), str(blob)]
    r, shown = _cosign(argv, what=f"cosign verify-blob {blob.name}")
    if not r.ok:
        low = _text(r).lower()
        if "invalid signature" in low or "base64" in low:
            raise WrongKey(
                f"{blob}: its signature does not verify against {public_key}",
                ref=str(blob),
                seen=f"$ {shown}\n" + _proc.tail(_text(r), 6),
            )
        _raise_for(r, str(blob), f"verifying {blob}", str(public_key), shown=shown)
    return shown


# ---- keys and trust -----------------------------------------------------------------------------


def private_key_location(key: str, root: Path) -> str:
    """The private key as cosign takes it; refused inside the project tree (see [signing].key)."""
    if key.startswith("env://"):
        return key
    path = Path(key).expanduser().resolve()
    if path.is_relative_to(root.resolve()):
        raise InputError(
            f"the private key {path} is inside the project tree ({root})",
            hint="keep private keys outside the repository (or in an environment variable: env://VARIABLE)",
        )
    return str(path)


def pushed_record(cfg: Config, env: str) -> manifest.BuildRecord:
    """The environment's recorded build, every image pushed: signatures live in the registry, by digest."""
    record = manifest.load(cfg.project.artifacts, env)
    unpushed = [i.name for i in record.services if "@sha256:" not in i.ref]
    if unpushed:
        raise InputError(
            f"the recorded build of {env!r} was not pushed ({', '.join(unpushed)} have no registry digest)",
            hint="signatures live in the registry beside the image: sign an environment with push = true",
        )
    return record


@dataclass(frozen=True)
class ImageTrust:
    """What verification established about one image."""

    name: str
    ref: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def attested_coverage_problem(predicate: Mapping[str, Any]) -> str:
    """Empty when the attested scan verdict says its data covered the image in full; otherwise why not."""
    raw = predicate.get("coverage")
    if raw is None:
        return verdicts.coverage_problem(None)
    try:
        return verdicts.coverage_problem(verdicts.Coverage.model_validate(raw))
    except ValidationError as exc:
        return f"its coverage is not a coverage record ({str(exc).splitlines()[0]})"


def check_image(
    img: manifest.BuiltImage, public_key: str, *, attestations: bool, require_full_coverage: bool = False
) -> ImageTrust:
    """Signature (and attestations) of one image as checks; registry trouble raises (no verdict).

    ``require_full_coverage``: the attested scan verdict must also say its vulnerability data covered
    the image in full (the environment's require_full_coverage).
    """
    trust = ImageTrust(img.name, img.ref)
    try:
        v = verify(img.ref, public_key)
        detail = f"{v.signatures} signature(s) verify; " + ", ".join(
            f"{k}={x}" for k, x in sorted(v.annotations.items())
        )
        trust.checks.append(Check("signature", Outcome.PASS, detail, v.seconds, img.name, v.command))
    except SignatureError as exc:
        trust.checks.append(Check("signature", Outcome.FAIL, exc.what, 0.0, img.name, exc.seen or ""))
        return trust
    if not attestations:
        return trust
    try:
        a = verify_attestation(img.ref, public_key, SCAN_VERDICT_TYPE)
        last = a.predicates[-1]
        if last.get("passed") is not True or last.get("image_id") != img.image_id:
            raise AttestationMissing(
                f"{img.ref}: the attested scan verdict is not a pass for this image",
                ref=img.ref,
                seen=json.dumps({k: last.get(k) for k in ("passed", "image_id", "at")}),
            )
        # `pipelines sign` records the digest it signed; a verdict naming another (or none) was not made for it.
        digest = split_ref(img.ref)[1]
        if last.get("digest") != digest:
            raise AttestationMissing(
                f"{img.ref}: the attested scan verdict names digest {last.get('digest') or '(none)'}, not {digest}",
                ref=img.ref,
                seen=json.dumps({k: last.get(k) for k in ("image_id", "digest", "at")}),
                hint="sign the build again (`pipelines sign --env ENV`)",
            )
        detail = f"passed at {last.get('at')} for {str(last.get('image_id'))[:19]}"
        if require_full_coverage:
            if why := attested_coverage_problem(last):
                raise AttestationMissing(
                    f"{img.ref}: the attested scan verdict is refused where full coverage is required: {why}",
                    ref=img.ref,
                    seen=json.dumps(last.get("coverage")),
                    hint="scan with current data for every ecosystem of the image (scan.db_repositories, --vulndb), "
                    "then sign again",
                )
            detail += "; full vulnerability data coverage"
        trust.checks.append(Check("scan verdict attested", Outcome.PASS, detail, a.seconds, img.name, a.command))
    except SignatureError as exc:
        trust.checks.append(Check("scan verdict attested", Outcome.FAIL, exc.what, 0.0, img.name, exc.seen or ""))
    try:
        a = verify_attestation(img.ref, public_key, SBOM_TYPE)
        bom = a.predicates[-1]
        if bom.get("bomFormat") != "CycloneDX":
            raise AttestationMissing(f"{img.ref}: the SBOM attestation is not CycloneDX", ref=img.ref)
        detail = f"CycloneDX {bom.get('specVersion')}, {len(bom.get('components') or [])} components"
        trust.checks.append(Check("SBOM attested", Outcome.PASS, detail, a.seconds, img.name, a.command))
    except SignatureError as exc:
        trust.checks.append(Check("SBOM attested", Outcome.FAIL, exc.what, 0.0, img.name, exc.seen or ""))
    return trust


def _require_env_key(key: str, environ: Mapping[str, str], what: str, flag: str) -> None:
    """An env:// key whose variable is unset is a clear error here, not cosign's "loading URL" later."""
    if key.startswith("env://") and not environ.get(key[len("env://") :]):
        var = key[len("env://") :]
        raise InputError(
            f"{what} is {key}, but ${var} is not set (or empty)",
            hint=f"export {var} with the key's PEM text (in CI: the environment's secret or variable), or give {flag}",
        )


def public_key_for(cfg: Config, override: str | None = None) -> str:
    public = override or cfg.signing.public_key
    if not public:
        raise InputError(
            f"{cfg.file}: [signing].public_key is not set and no --public-key given",
            hint="set it to the .pub file of the signing key pair (`pipelines keys generate`)",
        )
    _require_env_key(public, os.environ, "the public key", "--public-key")
    return public if public.startswith("env://") else str(Path(public).expanduser().resolve())


def require_signed(cfg: Config, env: str, public_key: str | None = None) -> list[ImageTrust]:
    """For deploy: every service image of ``env``'s build verified, or SignatureError naming each refused one."""
    public = public_key_for(cfg, public_key)
    record = pushed_record(cfg, env)
    registry.check(cfg.registry_for(env).address)
    full = cfg.env(env).require_full_coverage
    trusts = [
        check_image(i, public, attestations=cfg.signing.attest, require_full_coverage=full) for i in record.services
    ]
    bad = [f"{t.name} ({t.ref}): {c.detail}" for t in trusts for c in t.checks if not c.ok]
    if bad:
        raise SignatureError(
            f"refusing the build of {env!r}: {len(bad)} signature check(s) failed against {public}",
            ref=", ".join(t.ref for t in trusts if not t.ok),
            seen="\n".join(bad),
            hint=f"sign the build after a passing scan (`pipelines sign --env {env}`) with the matching key",
        )
    return trusts
