"""Real engine, real registry, real cosign: signing after a passing scan, verification before deploy.

The prod build is pushed to the local registry, scanned (the reference config
accepts the limited coverage of the shipped data, so the scan passes), signed
with a key pair made in a temporary directory and verified against it. Every
cosign run here is made with a dead HTTP(S) proxy for everything but loopback:
a call to a transparency log or any other service would fail the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines import _proc, config, manifest, subjects, verdicts
from pipelines import cosign as signing  # `cosign` is this module's fixture (the binary)
from pipelines.deploy import plan
from pipelines.errors import InputError, PipelineError, RegistryUnavailable
from pipelines.result import Context
from pipelines.signing import Options, run_verify
from pipelines.tools import Toolchain
from tests.harness import IN_CI, ROOT, RunLocks, docker, run_cli, run_cli_outcome

PASSWORD = "Zq-81-never-shown-7c3e"
OTHER_PASSWORD = "other-key-password-55aa"
REGISTRY = "127.0.0.1:5000"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def offline_env(home: Path, password: str = PASSWORD) -> dict[str, str]:
    """Only loopback is reachable: a proxy that answers nothing for every other address."""
    dead = "http://127.0.0.1:9"
    return {
        "COSIGN_PASSWORD": password,
        "HOME": str(home),
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="module")
def cosign(tools: Toolchain) -> str:
    path = shutil.which("cosign")
    if path is None:
        msg = "cosign is not installed (scripts/provision.sh installs Debian trixie's)"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def keys(cosign: str, tmp_path_factory: pytest.TempPathFactory, home: Path) -> dict[str, signing.KeyPair]:
    out: dict[str, signing.KeyPair] = {}
    for name, password in (("ours", PASSWORD), ("theirs", OTHER_PASSWORD)):
        d = tmp_path_factory.mktemp(f"keys-{name}")
        r = run_cli("keys", "generate", "--out", str(d / "pair"), env=offline_env(home, password))
        assert r.returncode == 0, r.stderr
        assert password not in r.stdout + r.stderr
        pair = signing.KeyPair(d / "pair" / "cosign.key", d / "pair" / "cosign.pub")
        assert pair.private.stat().st_mode & 0o077 == 0, "the private key must be readable by its owner only"
        assert "ENCRYPTED SIGSTORE PRIVATE KEY" in pair.private.read_text()
        assert "PUBLIC KEY" in pair.public.read_text()
        out[name] = pair
    return out


@pytest.fixture(scope="module")
def prod(tools: Toolchain, cfg: config.Config, cosign: str, locks: RunLocks) -> Iterator[manifest.BuildRecord]:
    """prod built, pushed and scanned (passing); the signatures made on it are deleted afterwards."""
    locks.build(cfg, "prod")
    with locks.exclusive("reports"):
        r = run_cli("scan", "--env", "prod")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    record = manifest.load(cfg.project.artifacts, "prod")
    assert record.services and all("@sha256:" in i.ref for i in record.services)
    yield record
    for img in record.services:
        delete_cosign_tags(img.ref)


@pytest.fixture(scope="module")
def signed(prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path) -> dict[str, Any]:
    ours = keys["ours"]
    r = run_cli(
        "sign",
        "--env",
        "prod",
        "--key",
        str(ours.private),
        "--public-key",
        str(ours.public),
        "--format",
        "json",
        env=offline_env(home),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert PASSWORD not in r.stdout + r.stderr
    return dict(json.loads(r.stdout))


# ---- registry helpers: the test's own pushes are removed again -----------------------------------


def _manifest_digest(repo: str, reference: str) -> str | None:
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repo}/manifests/{reference}", method="HEAD", headers={"Accept": ACCEPT}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError:
        return None


def _delete(repo: str, digest: str) -> None:
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{repo}/manifests/{digest}", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=10).close()  # noqa: S310
    except urllib.error.HTTPError as exc:
        if exc.code == 405:
            pytest.fail(
                f"the registry {REGISTRY} does not allow deletes (405): these tests remove the signatures they "
                "made. Provision the test machine's registry with PIPELINES_REGISTRY_DELETE=1 (CI does)."
            )
        if exc.code != 404:
            raise


def delete_cosign_tags(ref: str) -> None:
    """cosign stores signatures and attestations under sha256-HEX.sig / .att tags of the image's repository."""
    repo, digest = ref.split("@", 1)
    repo = repo.split("/", 1)[1]
    for suffix in ("sig", "att"):
        found = _manifest_digest(repo, f"{digest.replace(':', '-')}.{suffix}")
        if found:
            _delete(repo, found)


@pytest.fixture
def pushed_image(tmp_path: Path, tools: Toolchain) -> Iterator[str]:
    """A tiny image of our own, pushed under a unique name and deleted (image, signatures) afterwards."""
    (tmp_path / "marker").write_text(f"signing test {os.getpid()} {tmp_path.name}\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(tar), "marker"], check=True)
    repo = f"pipelines-test/signing-{os.getpid()}-{tmp_path.name[-12:].lower().replace('_', '-')}"
    tag = f"{REGISTRY}/{repo}:unsigned"
    docker("import", str(tar), tag)
    ref = ""
    try:
        docker("push", tag, timeout=120)
        ref = docker("inspect", "--format", "{{index .RepoDigests 0}}", tag).stdout.strip()
        assert ref.startswith(f"{REGISTRY}/{repo}@sha256:"), ref
        yield ref
    finally:
        if ref:
            delete_cosign_tags(ref)
            _delete(repo, ref.split("@", 1)[1])
        docker("rmi", "-f", tag, check=False)


# ---- the stages, end to end ----------------------------------------------------------------------


def test_signed_build_verifies_offline_and_the_password_never_shows(
    signed: dict[str, Any], prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path, cfg: config.Config
) -> None:
    names = {i.name for i in prod.services}
    checks = signed["checks"]
    # Every service: signed, both attestations made, and the signature checked with the public key right away.
    for name in names:
        mine = {c["name"] for c in checks if c["group"] == name}
        assert mine == {"signed", "scan verdict attested", "SBOM attested", "verifies with the public key"}, mine
    assert all(c["outcome"] == "pass" for c in checks)

    r = run_cli(
        "verify-signatures", "--env", "prod", "--public-key", str(keys["ours"].public), "--format", "json",
        env=offline_env(home),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(r.stdout)
    by_image = {(c["group"], c["name"]): c for c in report["checks"]}
    for img in prod.services:
        assert by_image[(img.name, "signature")]["outcome"] == "pass"
        assert f"pipelines.image={img.name}" in by_image[(img.name, "signature")]["detail"]
        assert by_image[(img.name, "scan verdict attested")]["outcome"] == "pass"
        assert img.image_id[:19] in by_image[(img.name, "scan verdict attested")]["detail"]
        assert "CycloneDX" in by_image[(img.name, "SBOM attested")]["detail"]
    # Offline: with every non-loopback address dead, nothing was fetched or cached for a trust root.
    assert not (home / ".sigstore").exists()
    # The verdict deploy reads: for exactly these images.
    v = verdicts.load(cfg.project.artifacts, "prod", "verify-signatures")
    assert not verdicts.covers(v, {i.name: i.image_id for i in prod.services})
    # The password is nowhere in what the runs wrote.
    written = [p for p in (cfg.project.artifacts / "signing").rglob("*") if p.is_file()]
    assert written
    for p in written:
        assert PASSWORD not in p.read_text(errors="replace"), p


def test_another_key_is_refused_naming_every_image(
    signed: dict[str, Any], prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path, cfg: config.Config
) -> None:
    theirs = keys["theirs"].public
    r = run_cli("verify-signatures", "--env", "prod", "--public-key", str(theirs), env=offline_env(home))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    text = " ".join(r.stdout.split())
    for img in prod.services:
        assert img.ref in r.stdout  # references are never wrapped
    assert "not by the key" in text
    assert "refused:" in text
    # Deploy's entry point says the same, as one error naming each refused image.
    with pytest.raises(signing.SignatureError) as exc:
        signing.require_signed(cfg, "prod", str(theirs))
    for img in prod.services:
        assert img.name in (exc.value.seen or "")
    assert exc.value.exit_code == 1


def test_signing_needs_a_passing_scan_of_exactly_these_images(
    prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path, cfg: config.Config
) -> None:
    file = verdicts.path(cfg.project.artifacts, "prod", "scan")
    saved = file.read_text()
    ours = keys["ours"]
    sign = ("sign", "--env", "prod", "--key", str(ours.private))
    try:
        v = json.loads(saved)
        v["subjects"] = {n: "sha256:" + "0" * 64 for n in v["subjects"]}
        file.write_text(json.dumps(v))
        r = run_cli(*sign, env=offline_env(home))
        assert r.returncode == 1, r.stderr
        assert "refusing to sign" in r.stderr and "other images" in r.stderr

        v = json.loads(saved)
        v["passed"] = False
        file.write_text(json.dumps(v))
        r = run_cli(*sign, env=offline_env(home))
        assert r.returncode == 1, r.stderr
        assert "refusing to sign" in r.stderr and "failed at" in r.stderr

        file.unlink()
        r = run_cli(*sign, env=offline_env(home))
        assert r.returncode == 1, r.stderr
        assert "never ran on this build" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        file.write_text(saved)


def test_wrong_password_and_missing_key_are_clear_errors(
    prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path, tmp_path: Path
) -> None:
    ours = keys["ours"]
    r = run_cli("sign", "--env", "prod", "--key", str(ours.private), env=offline_env(home, "not-the-password-91"))
    assert r.returncode == 2, r.stderr
    assert "cannot be decrypted" in r.stderr
    assert "not-the-password-91" not in r.stdout + r.stderr
    r = run_cli("sign", "--env", "prod", "--key", str(tmp_path / "none.key"), env=offline_env(home))
    assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr
    env = {**os.environ, **offline_env(home)}
    del env["COSIGN_PASSWORD"]
    r = subprocess.run(
        [sys.executable, "-m", "pipelines", "sign", "--env", "prod", "--key", str(ours.private)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 2 and "COSIGN_PASSWORD" in r.stderr, r.stderr


def _cosign_tags(record: manifest.BuildRecord) -> dict[str, str | None]:
    """Every service's signature and attestation manifests as the registry has them now (None: none)."""
    out: dict[str, str | None] = {}
    for img in record.services:
        repo, digest = img.ref.split("@", 1)
        for suffix in ("sig", "att"):
            tag = f"{digest.replace(':', '-')}.{suffix}"
            out[f"{img.name} {tag}"] = _manifest_digest(repo.split("/", 1)[1], tag)
    return out


def _record_pointing_elsewhere(cfg: config.Config) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """prod's build record with one service's ref and digest moved to another service's pushed image."""
    saved = manifest.path(cfg.project.artifacts, "prod").read_text()
    data = json.loads(saved)
    services = [i for i in data["images"].values() if i["kind"] == "service"]
    victim = services[0]
    other = next(i for i in services if i["image_id"] != victim["image_id"] and i["digest"] != victim["digest"])
    wrong = {**victim, "ref": other["ref"], "digest": other["digest"]}  # the image ID stays the examined one
    data["images"][victim["name"]] = wrong
    return saved, data, other


def test_signing_refuses_a_record_whose_digest_is_another_image(
    prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], home: Path, cfg: config.Config
) -> None:
    file = manifest.path(cfg.project.artifacts, "prod")
    saved, data, other = _record_pointing_elsewhere(cfg)
    victim = next(i for i in data["images"].values() if i["ref"] == other["ref"] and i["name"] != other["name"])
    before = _cosign_tags(prod)
    ours = keys["ours"]
    file.write_text(json.dumps(data, indent=2))
    try:
        r = run_cli("sign", "--env", "prod", "--key", str(ours.private), "--public-key", str(ours.public),
                    env=offline_env(home))  # fmt: skip
    finally:
        file.write_text(saved)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out[-4000:]
    assert victim["image_id"] in out and other["image_id"] in out, out[-4000:]
    assert "Traceback" not in out
    # Nothing was signed or attested: not the other image under this one's name, nor any other.
    assert _cosign_tags(prod) == before


def test_deploy_refuses_a_record_whose_digest_is_another_image(
    signed: dict[str, Any], prod: manifest.BuildRecord, keys: dict[str, signing.KeyPair], cfg: config.Config
) -> None:
    # Without attestations nothing signed ties a digest to an image ID: only the registry's image can.
    plain = replace(cfg, signing=replace(cfg.signing, attest=False))
    record = manifest.path(cfg.project.artifacts, "prod")
    saved, data, other = _record_pointing_elsewhere(cfg)
    victim = next(i for i in data["images"].values() if i["ref"] == other["ref"] and i["name"] != other["name"])
    # Every gate passed for the recorded image IDs (scan really ran; verify and smoke are recorded as passed).
    ids = {i.name: i.image_id for i in prod.services}
    gates = {s: verdicts.path(cfg.project.artifacts, "prod", s) for s in ("verify", "smoke")}
    kept = {s: f.read_text() for s, f in gates.items() if f.is_file()}
    try:
        for stage in gates:
            verdicts.record(cfg.project.artifacts, stage=stage, env="prod", passed=True, subjects=ids,
                            headline=f"{stage} passed (test)", reports="")  # fmt: skip
        # The record as built: a candidate (the test's gates hold).
        assert plan._from_build(plain, "prod", str(keys["ours"].public)).image_ids == ids
        record.write_text(json.dumps(data, indent=2))
        with pytest.raises(subjects.SubjectMismatch) as exc:
            plan._from_build(plain, "prod", str(keys["ours"].public))
    finally:
        record.write_text(saved)
        for stage, f in gates.items():
            if stage in kept:
                f.write_text(kept[stage])
            else:
                f.unlink(missing_ok=True)
    assert victim["image_id"] in exc.value.render() and other["image_id"] in exc.value.render()
    assert exc.value.exit_code == 2


# ---- the primitives on an image of the test's own ------------------------------------------------


def test_unsigned_and_wrongly_signed_images_are_told_apart(
    pushed_image: str, keys: dict[str, signing.KeyPair], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in offline_env(home).items():
        monkeypatch.setenv(k, v)
    ours, theirs = keys["ours"], keys["theirs"]
    with pytest.raises(signing.NotSigned, match="is not signed") as exc:
        signing.verify(pushed_image, ours.public)
    assert pushed_image in exc.value.what

    seconds = signing.sign(pushed_image, ours.private, PASSWORD, {"pipelines.test": "yes"})
    assert seconds > 0
    v = signing.verify(pushed_image, ours.public)
    assert v.digest == pushed_image.split("@", 1)[1] and v.signatures == 1
    assert v.annotations == {"pipelines.test": "yes"}
    assert PASSWORD not in v.command

    # The private key may come from the environment instead of a file (CI secrets); the public one too.
    monkeypatch.setenv("PIPELINES_TEST_SIGNING_KEY", ours.private.read_text())
    monkeypatch.setenv("PIPELINES_TEST_SIGNING_PUB", ours.public.read_text())
    signing.sign(pushed_image, "env://PIPELINES_TEST_SIGNING_KEY", PASSWORD, {"pipelines.via": "env"})
    both = signing.verify(pushed_image, "env://PIPELINES_TEST_SIGNING_PUB")
    assert both.signatures == 2 and both.annotations == {"pipelines.test": "yes", "pipelines.via": "env"}

    with pytest.raises(signing.WrongKey, match="not by the key") as wrong:
        signing.verify(pushed_image, theirs.public)
    assert pushed_image in wrong.value.what

    # A tag is never signed or verified: it can move after the fact.
    with pytest.raises(InputError, match="by digest"):
        signing.verify(pushed_image.split("@", 1)[0] + ":unsigned", ours.public)
    # A digest the registry does not have is not "unsigned": it is missing.
    absent = pushed_image.split("@", 1)[0] + "@sha256:" + "1" * 64
    with pytest.raises(signing.ImageMissing):
        signing.verify(absent, ours.public)
    # No registry at all: could not verify (exit 2), not a verdict on the image.
    unreachable = "127.0.0.1:9/" + pushed_image.split("/", 1)[1]
    with pytest.raises(RegistryUnavailable) as down:
        signing.verify(unreachable, ours.public)
    assert down.value.exit_code == 2


def test_attestations_work_offline(
    pushed_image: str, keys: dict[str, signing.KeyPair], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in offline_env(home).items():
        monkeypatch.setenv(k, v)
    ours, theirs = keys["ours"], keys["theirs"]
    with pytest.raises(signing.AttestationMissing):
        signing.verify_attestation(pushed_image, ours.public, signing.SCAN_VERDICT_TYPE)
    pred = tmp_path / "verdict.json"
    pred.write_text(json.dumps({"passed": True, "image_id": "sha256:" + "a" * 64}))
    signing.attest(pushed_image, pred, signing.SCAN_VERDICT_TYPE, ours.private, PASSWORD)
    # Attesting again replaces the earlier statement of the same type.
    pred.write_text(json.dumps({"passed": True, "image_id": "sha256:" + "b" * 64}))
    signing.attest(pushed_image, pred, signing.SCAN_VERDICT_TYPE, ours.private, PASSWORD)
    got = signing.verify_attestation(pushed_image, ours.public, signing.SCAN_VERDICT_TYPE)
    assert [p["image_id"] for p in got.predicates] == ["sha256:" + "b" * 64]
    with pytest.raises(signing.AttestationMissing):
        signing.verify_attestation(pushed_image, theirs.public, signing.SCAN_VERDICT_TYPE)
    with pytest.raises(signing.AttestationMissing):
        signing.verify_attestation(pushed_image, ours.public, signing.SBOM_TYPE)
    assert not (home / ".sigstore").exists()


# ---- coverage: the data the scan verdict rests on travels in its attestation ------------------------


def test_the_attested_scan_verdict_carries_its_coverage(
    signed: dict[str, Any],
    prod: manifest.BuildRecord,
    keys: dict[str, signing.KeyPair],
    home: Path,
    cfg: config.Config,
    tools: Toolchain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in offline_env(home).items():
        monkeypatch.setenv(k, v)
    public = str(keys["ours"].public)
    verdict = verdicts.load(cfg.project.artifacts, "prod", "scan")
    assert verdict is not None and verdict.coverage is not None
    cov = verdict.coverage.model_dump(mode="json")
    assert set(cov) >= {"source", "date", "ecosystems", "limited", "reason"} and cov["source"] and cov["date"]
    for img in prod.services:
        got = signing.verify_attestation(img.ref, public, signing.SCAN_VERDICT_TYPE)
        assert got.predicates[-1]["coverage"] == cov  # signed with the verdict, exactly as recorded
    # verify-signatures where prod requires full coverage: refused exactly when the signed coverage is limited.
    strict_prod = replace(cfg.env("prod"), require_full_coverage=True)
    strict = replace(cfg, environments={**cfg.environments, "prod": strict_prod})
    res = run_verify(Context(strict, tools), Options(env="prod", public_key=public))
    assert res.passed is not verdict.coverage.limited
    if verdict.coverage.limited:  # offline, the reference scan falls back to the PyPI-only bundle
        refused = [c for c in res.checks if not c.ok]
        assert {c.name for c in refused} == {"scan verdict attested"}
        assert {c.group for c in refused} == {i.name for i in prod.services}
        assert all("full coverage is required" in c.detail and verdict.coverage.reason in c.detail for c in refused)
    assert run_verify(Context(cfg, tools), Options(env="prod", public_key=public)).passed


def _coverage(limited: bool) -> verdicts.Coverage:
    return verdicts.Coverage(
        source="bundle: PyPA advisory database (test)" if limited else "download: Trivy DB",
        date="2024-10-10" if limited else "2026-12-06",
        ecosystems=("pip",) if limited else ("debian 12", "pip"),
        limited=limited,
        reason="the data does not cover debian 12 (its source declares pip)" if limited else "",
        fallback="download: connection refused" if limited else "",
    )


def test_a_limited_coverage_attestation_is_refused_where_full_coverage_is_required(
    pushed_image: str,
    keys: dict[str, signing.KeyPair],
    home: Path,
    tmp_path: Path,
    cfg: config.Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in offline_env(home).items():
        monkeypatch.setenv(k, v)
    ours = keys["ours"]
    image_id = "sha256:" + "c" * 64
    name = "coverage-test"
    img = manifest.BuiltImage(
        name=name, kind="service", ref=pushed_image, tags=(), image_id=image_id,
        digest=pushed_image.split("@", 1)[1], seconds=0.0, pushed=True,
    )  # fmt: skip
    signing.sign(pushed_image, ours.private, PASSWORD)
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}))
    signing.attest(pushed_image, sbom, signing.SBOM_TYPE, ours.private, PASSWORD)

    def attest_verdict(coverage: verdicts.Coverage | None) -> None:
        pred = tmp_path / "verdict.json"
        body = {"passed": True, "image_id": image_id, "digest": img.digest, "at": "2026-12-07T00:00:00Z"}
        pred.write_text(json.dumps({**body, "coverage": coverage.model_dump(mode="json") if coverage else None}))
        signing.attest(pushed_image, pred, signing.SCAN_VERDICT_TYPE, ours.private, PASSWORD)

    def promote(required: bool) -> Any:
        # Deploy's gate for a promoted (or restored) release: every image verified again against the key.
        return plan.verify_release(
            cfg, {name: pushed_image}, {name: image_id}, str(ours.public),
            refusing="refusing to promote the test release", require_full_coverage=required,
        )  # fmt: skip

    attest_verdict(_coverage(limited=True))
    assert signing.check_image(img, str(ours.public), attestations=True).ok  # not required: accepted
    assert promote(required=False)
    trust = signing.check_image(img, str(ours.public), attestations=True, require_full_coverage=True)
    (bad,) = [c for c in trust.checks if not c.ok]
    assert bad.name == "scan verdict attested" and "full coverage is required" in bad.detail
    assert "the data does not cover debian 12" in bad.detail and "bundle: PyPA advisory database" in bad.detail
    with pytest.raises(signing.SignatureError, match="refusing to promote the test release") as refused:
        promote(required=True)
    assert "coverage is limited" in (refused.value.seen or "")
    # A verdict signed before coverage travelled with it says nothing about it: refused where it is required.
    attest_verdict(None)
    trust = signing.check_image(img, str(ours.public), attestations=True, require_full_coverage=True)
    assert not trust.ok and "records no vulnerability data coverage" in json.dumps([c.detail for c in trust.checks])
    # Full coverage passes where it is required, and says so.
    attest_verdict(_coverage(limited=False))
    trust = signing.check_image(img, str(ours.public), attestations=True, require_full_coverage=True)
    assert trust.ok and any("full vulnerability data coverage" in c.detail for c in trust.checks)
    assert promote(required=True)


def test_an_attested_scan_verdict_is_held_to_the_digest_it_is_attached_to(
    pushed_image: str, keys: dict[str, signing.KeyPair], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in offline_env(home).items():
        monkeypatch.setenv(k, v)
    ours = keys["ours"]
    image_id, digest = "sha256:" + "c" * 64, pushed_image.split("@", 1)[1]
    img = manifest.BuiltImage(
        name="digest-test", kind="service", ref=pushed_image, tags=(), image_id=image_id,
        digest=digest, seconds=0.0, pushed=True,
    )  # fmt: skip
    signing.sign(pushed_image, ours.private, PASSWORD)
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}))
    signing.attest(pushed_image, sbom, signing.SBOM_TYPE, ours.private, PASSWORD)

    def verdict_for(**fields: Any) -> signing.ImageTrust:
        pred = tmp_path / "verdict.json"
        pred.write_text(json.dumps({"passed": True, "image_id": image_id, "at": "2026-12-07T00:00:00Z", **fields}))
        signing.attest(pushed_image, pred, signing.SCAN_VERDICT_TYPE, ours.private, PASSWORD)
        return signing.check_image(img, str(ours.public), attestations=True)

    # The verdict says it judged another digest (a sign run handed a record whose digest was not its image's).
    elsewhere = "sha256:" + "e" * 64
    trust = verdict_for(digest=elsewhere)
    (bad,) = [c for c in trust.checks if not c.ok]
    assert bad.name == "scan verdict attested" and elsewhere in bad.detail and digest in bad.detail
    # `pipelines sign` always records the digest: a verdict that names none is not one of its.
    trust = verdict_for()
    (bad,) = [c for c in trust.checks if not c.ok]
    assert bad.name == "scan verdict attested"
    assert verdict_for(digest=digest).ok


# ---- keys and config -----------------------------------------------------------------------------


def test_keys_are_never_generated_inside_the_project(cosign: str, tmp_path: Path) -> None:
    r = run_cli("keys", "generate", "--out", str(ROOT / "artifacts" / "keys-here"), env={"COSIGN_PASSWORD": "x1"})
    assert r.returncode == 2 and "inside the project tree" in r.stderr, r.stderr
    assert not (ROOT / "artifacts" / "keys-here" / "cosign.key").exists()
    r = run_cli("keys", "generate", "--out", str(tmp_path), env={"COSIGN_PASSWORD": ""})
    assert r.returncode == 2 and "password" in r.stderr, r.stderr
    assert not (tmp_path / "cosign.key").exists()


def _cfg(tmp_path: Path, signing_toml: str) -> config.Config:
    doc = tomllib.loads((ROOT / "pipeline.toml").read_text())
    doc["signing"] = tomllib.loads(signing_toml)
    return config.parse(doc, ROOT / "pipeline.toml")


def test_signing_config(tmp_path: Path) -> None:
    default = config.load(ROOT / "pipeline.toml").signing
    assert (default.key, default.public_key) == ("env://COSIGN_KEY", "env://COSIGN_PUBLIC_KEY")  # never a file here
    assert (default.password_env, default.attest) == ("COSIGN_PASSWORD", True)
    unset = _cfg(tmp_path, "").signing
    assert (unset.key, unset.public_key, unset.password_env, unset.attest) == ("", "", "COSIGN_PASSWORD", True)
    s = _cfg(tmp_path, f'key = "{tmp_path}/k.key"\npublic_key = "security/cosign.pub"\npassword_env = "SIGN_PW"')
    assert s.signing.key == str(tmp_path / "k.key")
    assert s.signing.public_key == str(ROOT / "security" / "cosign.pub")  # a public key may live in the repository
    assert s.signing.password_env == "SIGN_PW"
    assert _cfg(tmp_path, 'key = "env://SIGNING_KEY"').signing.key == "env://SIGNING_KEY"
    for bad, says in (
        ('key = "keys/cosign.key"', "inside the project tree"),
        ('key = "env://"', "names no environment variable"),
        ('password_env = "not a name"', "not an environment variable name"),
        ('keyfile = "x"', "unknown key"),
        ("attest = 1", "true or false"),
    ):
        with pytest.raises(PipelineError, match=says) as exc:
            _cfg(tmp_path, bad)
        assert "signing." in exc.value.what


def test_an_env_key_whose_variable_is_unset_is_one_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COSIGN_PUBLIC_KEY", "COSIGN_KEY")}
    r = run_cli_outcome("verify-signatures", "--env", "staging", env=env | {"COSIGN_PUBLIC_KEY": ""})
    assert r.returncode == 2, r.stderr
    assert "env://COSIGN_PUBLIC_KEY, but $COSIGN_PUBLIC_KEY is not set" in r.stderr and "Traceback" not in r.stderr
    r = run_cli_outcome("sign", "--env", "staging", env=env | {"COSIGN_KEY": "", "COSIGN_PASSWORD": "x"})
    assert r.returncode == 2, r.stderr
    assert "env://COSIGN_KEY, but $COSIGN_KEY is not set" in r.stderr


# ---- the signing secrets reach cosign only -------------------------------------------------------

SECRET_CONFIG = """
[compose]
files = ["compose.yaml"]

[signing]
key = "env://PLTEST_SIGNING_KEY"
public_key = "env://PLTEST_SIGNING_PUB"
password_env = "PLTEST_KEY_PASSWORD"
"""
FAKE_DOCKER = """#!{python}
import json, os, sys
with open({record!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, f)
sys.exit(1)  # the command stops here: only what this child was given matters
"""


def test_no_child_of_a_command_inherits_the_signing_key_or_its_password(tmp_path: Path) -> None:
    """A real `pipelines` run whose `docker compose config` (Compose would interpolate them) records its environment."""
    from tests.config.test_config import GOOD
    from tests.config.test_config import project as make_project

    proj = make_project(tmp_path / "proj", GOOD + SECRET_CONFIG)
    (proj.parent / "compose.yaml").write_text("services:\n  web:\n    image: demo/web\n")
    cfg = config.load(proj)
    web = manifest.BuiltImage(
        name="web", kind="service", ref="127.0.0.1:5000/demo/web@sha256:" + "1" * 64, tags=("demo/web:git-a1a1",),
        image_id="sha256:" + "2" * 64, digest="sha256:" + "1" * 64, seconds=1.0, pushed=True,
    )  # fmt: skip
    manifest.save(
        cfg.project.artifacts,
        manifest.BuildRecord(env="dev", commit="a1" * 20, dirty=False, builder="b", cache="none",
                             started="2026-01-01T00:00:00Z", seconds=1.0, images={"web": web}),
    )  # fmt: skip
    bin_dir, record = tmp_path / "bin", tmp_path / "docker-env.json"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(FAKE_DOCKER.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    secrets_ = {
        "PLTEST_SIGNING_KEY": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY----- pltest",
        "PLTEST_KEY_PASSWORD": "pltest-password-e7f1",
        "COSIGN_PASSWORD": "pltest-cosign-password-91c2",  # cosign's own variable: a password wherever it is set
        "PLTEST_OTHER_KEY": "pltest-other-key-3b8d",  # a --key env://VAR of the command line
    }
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PLTEST_SIGNING_PUB": "public", **secrets_}
    r = run_cli("--config", str(proj), "render", "k8s", "--env", "dev", "--out", str(tmp_path / "out"),
                cwd=proj.parent, env=env)  # fmt: skip
    assert r.returncode == 2 and "compose config failed" in r.stderr, r.stdout + r.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"][0] == "compose" and seen["argv"][-3:] == ["config", "--format", "json"]
    # What the child needs still reaches it: PATH, the public key (not a secret), the stage's own variables.
    assert seen["env"]["PATH"] == env["PATH"] and seen["env"]["PLTEST_SIGNING_PUB"] == "public"
    assert seen["env"]["REGISTRY"] == "127.0.0.1:5000"
    leaked = sorted(k for k in ("PLTEST_SIGNING_KEY", "PLTEST_KEY_PASSWORD", "COSIGN_PASSWORD") if k in seen["env"])
    assert leaked == [], leaked
    assert seen["env"]["PLTEST_OTHER_KEY"] == secrets_["PLTEST_OTHER_KEY"]  # named by nothing: not a secret here
    assert not any(v in json.dumps(seen) for k, v in secrets_.items() if k != "PLTEST_OTHER_KEY")

    # A --key env://VAR of the command line is withheld as well as the config's key, which it overrides.
    assert cfg.signing.secret_variables("env://PLTEST_OTHER_KEY") == {
        "PLTEST_SIGNING_KEY", "PLTEST_KEY_PASSWORD", "COSIGN_PASSWORD", "PLTEST_OTHER_KEY",
    }  # fmt: skip
    assert cfg.signing.secret_variables("/keys/cosign.key") == {
        "PLTEST_SIGNING_KEY", "PLTEST_KEY_PASSWORD", "COSIGN_PASSWORD",
    }  # fmt: skip


def test_cosign_alone_is_given_the_key_and_password_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With both withheld (as a command withholds them), a release record is still signed with an env:// key."""
    if shutil.which("cosign") is None:
        msg = "cosign is not installed (scripts/provision.sh installs Debian trixie's)"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    pair = signing.generate_keys(tmp_path / "pair", PASSWORD)
    monkeypatch.setenv("PLTEST_SIGNING_KEY", pair.private.read_text())
    monkeypatch.setenv("PLTEST_KEY_PASSWORD", PASSWORD)
    blob = tmp_path / "release.json"
    blob.write_text('{"release": "r1"}\n')
    with _proc.withholding(["PLTEST_SIGNING_KEY", "PLTEST_KEY_PASSWORD", "COSIGN_PASSWORD"]):
        signing.sign_blob(blob, "env://PLTEST_SIGNING_KEY", PASSWORD)
        assert signing.verify_blob(blob, pair.public)
        blob.write_text('{"release": "r2"}\n')
        with pytest.raises(signing.WrongKey):
            signing.verify_blob(blob, pair.public)
