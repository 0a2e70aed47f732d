"""Build command construction and output parsing (no engine needed)."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import build, config, lockfile
from pipelines.errors import CommandFailed, ConfigError, ToolNotFound
from pipelines.gitinfo import GitInfo
from pipelines.tools import BuilderInfo
from tests.config.test_config import GOOD, OWN_REGISTRY, project

REC = Path(__file__).parent / "data" / "recorded"
GIT = GitInfo("0123456789abcdef0123456789abcdef01234567", False, 1_700_000_000)
DOCKER_DRIVER = BuilderInfo("default", "docker", "v0.8")
CONTAINER_DRIVER = BuilderInfo("ci", "docker-container", "v0.13")


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(
        project(tmp_path, textwrap.dedent(GOOD).replace('name = "demo"', 'name = "demo"\nsource = "https://x/y"'))
    )


def command(cfg: config.Config, env: str = "dev", **kw: object) -> list[str]:
    params: dict[str, object] = dict(
        env=cfg.env(env),
        git=GIT,
        tags=["r/web:git-0123", "r/web:dev"],
        base_refs={"runtime": "reg/runtime@sha256:" + "a" * 64},
        cache="inline",
        driver="docker",
        push=False,
        ca_bundle=None,
        iidfile=Path("/t/iid"),
        metadata=Path("/t/meta.json"),
        progress="plain",
        no_cache=False,
    )
    params.update(kw)
    return build.buildx_command("docker", cfg, cfg.images["web"], **params)  # type: ignore[arg-type]


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_service_command_carries_args_labels_tags_and_files(cfg: config.Config) -> None:
    argv = command(cfg)
    assert argv[:3] == ["docker", "buildx", "build"]
    assert argv[-1] == str(cfg.images["web"].context)
    assert pairs(argv, "--target") == ["runtime"]
    assert pairs(argv, "--iidfile") == ["/t/iid"] and pairs(argv, "--metadata-file") == ["/t/meta.json"]
    assert pairs(argv, "--build-arg") == ["GREETING=hi", "RUNTIME_IMAGE=reg/runtime@sha256:" + "a" * 64]
    labels = dict(x.split("=", 1) for x in pairs(argv, "--label"))
    assert labels == {
        "org.opencontainers.image.title": "web",
        "org.opencontainers.image.version": "0.0.0",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.revision": GIT.commit,
        "org.opencontainers.image.source": "https://x/y",
    }
    assert pairs(argv, "--tag") == ["r/web:git-0123", "r/web:dev"]
    assert "--load" in argv and "--push" not in argv
    assert "--secret" not in argv and "--no-cache" not in argv


def test_environment_args_override_and_push(cfg: config.Config) -> None:
    argv = command(cfg, "prod", push=True)
    assert "MODE=prod" in pairs(argv, "--build-arg")
    # docker driver: the image exporter loads into the engine and pushes.
    assert pairs(argv, "--output") == ["type=image,push=true"] and "--load" not in argv
    argv = command(cfg, "prod", push=True, driver="docker-container")
    assert "--push" in argv and "--output" not in argv


def test_ca_bundle_is_a_secret_never_a_build_arg(cfg: config.Config) -> None:
    argv = command(cfg, ca_bundle=Path("/etc/ssl/bundle.pem"))
    assert pairs(argv, "--secret") == ["id=ca-bundle,src=/etc/ssl/bundle.pem"]
    assert not any("bundle.pem" in a for a in pairs(argv, "--build-arg"))


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        # dev does not push: no inline cache to carry (it would only make the image ID differ per build).
        ("inline", ["--cache-from", "type=registry,ref=127.0.0.1:5000/demo/web:dev"]),
        (
            "registry",
            [
                "--cache-to",
                "type=registry,ref=127.0.0.1:5000/demo/web:buildcache,mode=max",
                "--cache-from",
                "type=registry,ref=127.0.0.1:5000/demo/web:buildcache",
            ],
        ),
        ("gha", ["--cache-to", "type=gha,scope=web,mode=max", "--cache-from", "type=gha,scope=web"]),
        ("none", []),
    ],
)
def test_cache_flags(cfg: config.Config, backend: str, expected: list[str]) -> None:
    assert build.cache_flags(backend, cfg, cfg.images["web"], cfg.env("dev")) == expected


def test_inline_cache_is_exported_where_the_image_is_pushed(cfg: config.Config) -> None:
    assert cfg.env("prod").push and not cfg.env("dev").push
    assert build.cache_flags("inline", cfg, cfg.images["web"], cfg.env("prod")) == [
        "--cache-to",
        "type=inline",
        "--cache-from",
        "type=registry,ref=127.0.0.1:5000/demo/web:prod",
    ]


def test_an_environments_own_registry_reaches_its_tags_and_cache(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, OWN_REGISTRY), {})
    web, runtime, prod = cfg.images["web"], cfg.images["runtime"], cfg.env("prod")
    own = "registry.example.com:5443/apps/web"
    assert build.service_tags(cfg, web, prod, GIT) == [f"{own}:{GIT.tag('prod')}", f"{own}:prod", f"{own}:stable"]
    assert command(cfg, "prod", tags=build.service_tags(cfg, web, prod, GIT), push=True).count(f"{own}:prod") == 1
    assert build.cache_flags("registry", cfg, web, prod)[1] == f"type=registry,ref={own}:buildcache,mode=max"
    assert build.cache_flags("inline", cfg, web, prod)[-1] == f"type=registry,ref={own}:prod"
    # A golden base serves every environment: its cache (like its lock entry) stays in [registry].
    base_cache = build.cache_flags("registry", cfg, runtime, prod)[1]
    assert base_cache == "type=registry,ref=127.0.0.1:5000/demo/runtime:buildcache,mode=max"
    assert build.service_tags(cfg, web, cfg.env("dev"), GIT)[0] == f"127.0.0.1:5000/demo/web:{GIT.tag('dev')}"


def test_local_cache_goes_under_the_cache_dir(cfg: config.Config) -> None:
    flags = build.cache_flags("local", cfg, cfg.images["web"], cfg.env("dev"))
    assert flags[1] == f"type=local,dest={cfg.build.cache_dir / 'web'},mode=max"


def test_cache_choice_follows_the_builder(cfg: config.Config) -> None:
    assert build.choose_cache(cfg, cfg.env("dev"), DOCKER_DRIVER) == "inline"
    assert build.choose_cache(cfg, cfg.env("dev"), CONTAINER_DRIVER) == "registry"
    wants_registry = config.Environment("dev", False, ("dev",), {}, "registry")
    with pytest.raises(ConfigError, match=r"environments.dev.cache: cache backend 'registry' is not supported"):
        build.choose_cache(cfg, wants_registry, DOCKER_DRIVER)


def test_ca_bundle_resolution_order(cfg: config.Config, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    a.write_text("A")
    b.write_text("B")
    assert build.resolve_ca_bundle(cfg, {"SSL_CERT_FILE": str(a), "REQUESTS_CA_BUNDLE": str(b)}) == a
    assert build.resolve_ca_bundle(cfg, {"PIP_CERT": str(tmp_path / "missing"), "REQUESTS_CA_BUNDLE": str(b)}) == b
    assert build.resolve_ca_bundle(cfg, {}) is None


def test_metadata_from_recorded_buildx_output() -> None:
    digest, config_digest = build.parse_metadata(REC / "buildx-metadata-pushed.json")
    assert digest.startswith("sha256:") and config_digest.startswith("sha256:") and digest != config_digest
    digest, config_digest = build.parse_metadata(REC / "buildx-metadata-loaded.json")
    assert digest == config_digest


def test_missing_or_empty_metadata_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed, match="no usable metadata"):
        build.parse_metadata(tmp_path / "absent.json")
    (tmp_path / "m.json").write_text('{"buildx.build.ref": "x"}')
    with pytest.raises(CommandFailed, match="no image digest"):
        build.parse_metadata(tmp_path / "m.json")


def test_input_hash_follows_files_settings_and_bases(cfg: config.Config) -> None:
    img = cfg.images["runtime"]
    refs = {"debian": "r/debian@sha256:" + "1" * 64}
    first = build.input_hash(img, refs)
    assert first == build.input_hash(img, refs)
    assert build.input_hash(img, {"debian": "r/debian@sha256:" + "2" * 64}) != first
    assert img.context is not None
    (img.context / "extra.txt").write_text("changed")
    assert build.input_hash(img, refs) != first


def test_a_rootfs_base_is_rebuilt_when_the_keys_it_was_verified_with_change(cfg: config.Config, tmp_path: Path) -> None:
    rootfs = next(i for i in cfg.images.values() if i.kind == "rootfs")
    a, b = tmp_path / "a.gpg", tmp_path / "b.gpg"
    a.write_bytes(b"keys of one archive")
    b.write_bytes(b"keys of another archive")
    first = build.input_hash(dataclasses.replace(rootfs, keyring=a), {})
    # The same keys under another path are the same trust: no rebuild.
    (tmp_path / "c.gpg").write_bytes(a.read_bytes())
    assert build.input_hash(dataclasses.replace(rootfs, keyring=tmp_path / "c.gpg"), {}) == first
    assert build.input_hash(dataclasses.replace(rootfs, keyring=b), {}) != first


def test_git_tags() -> None:
    assert GIT.tag("dev") == "git-0123456789ab-dev"
    assert GitInfo(GIT.commit, True, 0, "0f0f0f0f0f0f").tag("dev") == "git-0123456789ab-dev-dirty-0f0f0f0f0f0f"
    assert GitInfo("unknown", True, 0).tag("dev") == "nogit-dev"


def test_created_time_is_the_commit_time_or_source_date_epoch(tmp_path: Path) -> None:
    from pipelines import gitinfo
    from tests.harness import ROOT

    info = gitinfo.read(ROOT, {})
    assert len(info.commit) == 40
    committed = int(subprocess_out(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"]))
    assert info.timestamp == committed  # dirty or not: an unchanged rebuild keeps its image ID
    assert gitinfo.read(ROOT, {"SOURCE_DATE_EPOCH": "1234"}).timestamp == 1234
    assert gitinfo.read(tmp_path, {}).commit == "unknown"


def subprocess_out(argv: list[str]) -> str:
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


# --------------------------------------------------------------------------- suites and the package lock


def test_rootfs_suites_default_to_release_updates_and_security(cfg: config.Config) -> None:
    img = cfg.images["debian"]
    assert img.suites == ("bookworm", "bookworm-updates", "bookworm-security")
    assert img.security_mirror == "http://deb.debian.org/debian-security"
    assert cfg.scan.os_updates == "fail"


def test_suites_change_the_rootfs_inputs(tmp_path: Path) -> None:
    only_release = GOOD.replace('kind = "rootfs"', 'kind = "rootfs"\nsuites = ["bookworm"]')
    a = config.load(project(tmp_path / "a", textwrap.dedent(only_release))).images["debian"]
    b = config.load(project(tmp_path / "b")).images["debian"]
    assert a.suites == ("bookworm",)
    assert build.input_hash(a, {}) != build.input_hash(b, {})


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('suite = "bookworm"\nsuites = ["bookworm-security"]', "must start with the debootstrap suite"),
        ("suites = [1]", r"suites\[0\]: expected a string"),
        ('suites = ["bookworm", "bookworm-security [trusted=yes]"]', r"suites\[1\]: .* is not a Debian suite name"),
        ('suites = ["bookworm", "../../etc"]', r"suites\[1\]: '\.\./\.\./etc' is not a Debian suite name"),
    ],
)
def test_bad_suites_are_config_errors(tmp_path: Path, snippet: str, message: str) -> None:
    text = GOOD.replace('kind = "rootfs"', f'kind = "rootfs"\n{snippet}')
    with pytest.raises(ConfigError, match=message):
        config.load(project(tmp_path, textwrap.dedent(text)))


def test_bad_os_updates_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scan\.os_updates: must be one of fail, warn, off"):
        config.load(project(tmp_path, textwrap.dedent(GOOD) + '\n[scan]\nos_updates = "maybe"\n'))


def test_package_lock_sits_beside_the_base_lock() -> None:
    assert lockfile.packages_path(Path("/p/pipeline.lock.json")) == Path("/p/pipeline.packages.json")
    assert lockfile.packages_path(Path("/p/bases.json")) == Path("/p/bases.packages.json")


def test_package_lock_round_trip_and_diff(tmp_path: Path) -> None:
    from pipelines import osupdates

    status = (Path(__file__).parent / "data" / "os-updates" / "status").read_text()
    before = osupdates.lock_entries(osupdates.parse_status(status))
    assert "libexpat1" not in before
    after = dict(before)
    after["tzdata"] = {**before["tzdata"], "version": "2099z-0+deb12u1"}
    del after["adduser"]
    after["libexpat1"] = {"version": "2.5.0-1+deb12u1", "source": "expat", "arch": "amd64"}
    path = tmp_path / "pipeline.packages.json"
    lockfile.save_packages(path, {"debian": lockfile.Packages("r/debian@sha256:" + "1" * 64, after)})
    loaded = lockfile.load_packages(path)
    assert loaded["debian"].packages == after
    assert lockfile.diff_packages(before, after) == [
        f"- adduser {before['adduser']['version']}",
        "+ libexpat1 2.5.0-1+deb12u1",
        f"~ tzdata {before['tzdata']['version']} -> 2099z-0+deb12u1",
    ]
    assert lockfile.diff_packages(after, after) == []


def test_broken_package_lock_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.packages.json"
    path.write_text('{"version": 1, "images": {"debian": {"ref": "x"}}}')
    with pytest.raises(ConfigError, match="is not a valid package lock"):
        lockfile.load_packages(path)


def test_bake_target_carries_everything_the_build_command_does(cfg: config.Config, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    argv = command(cfg, ca_bundle=ca, no_cache=True)
    target = build.bake_target(argv)
    assert target["context"] == argv[-1]
    assert target["dockerfile"] == pairs(argv, "--file")[0]
    assert target["tags"] == pairs(argv, "--tag")
    assert target["secret"] == pairs(argv, "--secret") == [f"id=ca-bundle,src={ca}"]
    assert target["args"] == dict(a.split("=", 1) for a in pairs(argv, "--build-arg"))
    assert target["labels"] == dict(a.split("=", 1) for a in pairs(argv, "--label"))
    assert target.get("cache-to", []) == pairs(argv, "--cache-to")
    assert target["cache-from"] == pairs(argv, "--cache-from")
    assert target["no-cache"] is True
    assert target["output"] == ["type=docker"]
    pushed = build.bake_target(command(cfg, env="prod", push=True, driver="docker-container"))
    assert pushed["output"] == ["type=registry"]


def test_bake_target_refuses_a_flag_it_cannot_carry(cfg: config.Config) -> None:
    argv = command(cfg)
    argv[-1:-1] = ["--platform", "linux/arm64"]
    with pytest.raises(TypeError, match="--platform"):
        build.bake_target(argv)


def test_bake_names_and_metadata_from_recorded_bake_output(tmp_path: Path) -> None:
    """bake-metadata-loaded.json: `docker buildx bake --metadata-file` with two targets s1, s2 loaded
    into the engine (docker driver, buildx 0.13.1, engine 20.10.24; 2026-11-24)."""
    assert build.bake_name("python-runtime") == "python-runtime"
    assert build.bake_name("web.v2") == "web_v2"
    got = build.parse_bake_metadata(REC / "bake-metadata-loaded.json", {"a": "s1", "b": "s2"})
    assert set(got) == {"a", "b"} and got["a"][0] != got["b"][0]
    assert all(d.startswith("sha256:") and d == c for d, c in got.values())
    with pytest.raises(CommandFailed, match="no image digest for c"):
        build.parse_bake_metadata(REC / "bake-metadata-loaded.json", {"c": "s3"})
    with pytest.raises(CommandFailed, match="no usable metadata"):
        build.parse_bake_metadata(tmp_path / "absent.json", {"a": "s1"})


def test_failed_targets_are_named_from_the_bake_output() -> None:
    output = (
        "#14 [s2 builder 4/6] RUN pip install\n#14 ERROR: executor failed running\n"
        " > [s2 builder 4/6] RUN pip install:\n#15 [s1 runtime 2/3] COPY\n#15 DONE 0.1s\n"
    )
    assert build.failed_targets(output, {"one": "s1", "two": "s2"}) == ["two"]
    assert build.failed_targets("ERROR: failed to solve", {"one": "s1"}) == []


# --------------------------------------------------------------------------- debootstrap verifies the archive


def test_debootstrap_runs_with_the_archive_keyring_and_forced_signature_checks(
    cfg: config.Config, tmp_path: Path
) -> None:
    img = cfg.images["debian"]
    argv = build.debootstrap_argv("/usr/sbin/debootstrap", img, tmp_path / "root")
    assert "--force-check-gpg" in argv and "--no-check-gpg" not in argv
    assert argv[argv.index("--keyring") + 1] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert argv[-3:] == ["bookworm", str(tmp_path / "root"), "http://deb.debian.org/debian"]
    # The keyring of the config is the one debootstrap gets.
    mine = tmp_path / "mirror.gpg"
    shutil.copy(config.DEBIAN_KEYRING, mine)
    argv = build.debootstrap_argv("/usr/sbin/debootstrap", replace(img, keyring=mine), tmp_path / "root")
    assert argv[argv.index("--keyring") + 1] == str(mine)


def test_no_rootfs_is_built_without_the_keyring_or_gpgv(cfg: config.Config, tmp_path: Path) -> None:
    img = replace(cfg.images["debian"], keyring=tmp_path / "gone.gpg")
    with pytest.raises(ToolNotFound) as err:
        build.debootstrap_argv("/usr/sbin/debootstrap", img, tmp_path / "root")
    assert err.value.exit_code == 2
    assert f"the archive keyring {tmp_path / 'gone.gpg'} of rootfs image 'debian' does not exist" in err.value.what
    assert "apt-get install debian-archive-keyring" in (err.value.hint or "")
    with pytest.raises(ToolNotFound, match="gpgv is not installed") as err:
        build.debootstrap_argv("/usr/sbin/debootstrap", cfg.images["debian"], tmp_path, gpgv=str(tmp_path / "gpgv"))
    assert "apt-get install gpgv" in (err.value.hint or "")


@pytest.mark.usefixtures("root")
def test_debootstrap_stops_at_a_release_whose_signature_fails(
    cfg: config.Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real debootstrap with our argv, against a plain-HTTP mirror on 127.0.0.1 serving a real InRelease.

    Tampered, it stops at the signature; intact, the signature passes and it goes on (to the next
    problem: the file, this host's apt list, is bookworm-updates', not bookworm's).
    """
    from pipelines import _proc
    from tests.harness import IN_CI
    from tests.osupdates.test_osupdates import _serve, host_inrelease

    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if debootstrap is None:
        message = "debootstrap is not installed (CI builds rootfs bases, so it has it)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    real = host_inrelease("bookworm-updates").read_bytes()
    tampered = real.replace(b"Codename: bookworm-updates", b"Codename: bookworm-updatez")
    assert tampered != real
    files = {"/debian/dists/bookworm/InRelease": tampered}
    mirror, asked, stop = _serve(files, monkeypatch)
    mirror = mirror.removesuffix("/debian-security") + "/debian"
    try:
        img = replace(cfg.images["debian"], mirror=mirror)
        r = _proc.run(build.debootstrap_argv(debootstrap, img, tmp_path / "a"), timeout=120, check=False, quiet=True)
        assert r.returncode != 0
        assert "E: Invalid Release signature" in r.stdout + r.stderr
        files["/debian/dists/bookworm/InRelease"] = real
        r = _proc.run(build.debootstrap_argv(debootstrap, img, tmp_path / "b"), timeout=120, check=False, quiet=True)
        assert "I: Valid Release signature" in r.stdout + r.stderr
    finally:
        stop()
    assert "/debian/dists/bookworm/InRelease" in asked


def test_the_build_refuses_a_rootfs_when_its_keyring_is_missing(tmp_path: Path, tools: object) -> None:
    """`pipelines build` stops with exit 2 before debootstrap runs: no unverified rootfs is ever built."""
    import os

    from tests.harness import run_cli

    text = (
        textwrap.dedent(GOOD)
        .replace('kind = "rootfs"', f'kind = "rootfs"\nkeyring = "{tmp_path / "gone.gpg"}"', 1)
        .replace('namespace = "demo"', f'namespace = "keyring-missing-{os.getpid()}"', 1)
    )
    path = project(tmp_path, text)
    r = run_cli("--config", str(path), "build", "--env", "dev", "--bases-only", timeout=600)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"error: the archive keyring {tmp_path / 'gone.gpg'} of rootfs image 'debian' does not exist" in r.stderr
    assert "hint: apt-get install debian-archive-keyring" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_suite_newer_than_debootstrap_gets_the_sid_script(cfg: config.Config, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "sid").write_text("# sid\n")
    (scripts / "trixie").symlink_to("sid")
    img = cfg.images["debian"]
    for suite, extra in (("trixie", []), ("forky", [str(scripts / "sid")])):
        argv = build.debootstrap_argv(
            "/usr/sbin/debootstrap", replace(img, suite=suite), tmp_path / "r", scripts=scripts
        )
        assert argv[argv.index(suite) :] == [suite, str(tmp_path / "r"), img.mirror, *extra]
        # Signatures are checked whichever script runs.
        assert "--force-check-gpg" in argv and "--keyring" in argv


def test_an_expired_index_is_said_as_such_and_never_overridden(cfg: config.Config) -> None:
    img = replace(cfg.images["debian"], suite="forky", suites=("forky", "forky-updates"))
    seen = (
        "E: Release file for http://deb.debian.org/debian/dists/forky/InRelease is expired "
        "(invalid since 31d 7h 0min 49s). Updates for this repository will not be applied.\n"
    )
    err = build.expired_index(img, CommandFailed("apt-get update failed", seen=seen, returncode=100))
    assert err is not None
    assert (
        "serve expired indexes: http://deb.debian.org/debian/dists/forky/InRelease (expired 31d 7h 0min 49s ago)"
        in (err.what)
    )
    assert "use a mirror that is current for forky, forky-updates" in (err.hint or "")
    assert build.expired_index(img, CommandFailed("x", seen="E: Could not resolve host")) is None
