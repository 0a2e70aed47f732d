"""Config validation: good files load, bad ones name the file and key path."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import config, inputs, refs
from pipelines.errors import ConfigError
from tests.harness import ROOT, examples, run_cli, run_cli_outcome

GOOD = """
default_env = "dev"

[project]
name = "demo"

[registry]
address = "127.0.0.1:5000"
namespace = "demo"

[images.debian]
kind = "rootfs"

[images.runtime]
context = "images/runtime"
bases = { BASE_IMAGE = "debian" }

[services.web]
context = "services/web"
target = "runtime"
args = { GREETING = "hi" }
bases = { RUNTIME_IMAGE = "runtime" }

[environments.dev]

[environments.prod]
push = true
tags = ["prod", "stable"]
args = { MODE = "prod" }
"""


def project(tmp_path: Path, text: str = GOOD) -> Path:
    for d in ("images/runtime", "services/web"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        (tmp_path / d / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "pipeline.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_config_loads_into_frozen_objects(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path))
    assert [i.name for i in cfg.bases] == ["debian", "runtime"]
    assert [i.name for i in cfg.services] == ["web"]
    web = cfg.images["web"]
    assert web.context == tmp_path / "services/web"
    assert web.dockerfile == tmp_path / "services/web/Dockerfile"
    assert dict(web.bases) == {"RUNTIME_IMAGE": "runtime"}
    assert cfg.env("dev").tags == ("dev",)  # defaults to the env name
    assert cfg.env("prod").tags == ("prod", "stable")
    assert cfg.env("prod").push is True
    assert cfg.registry.repo("web") == "127.0.0.1:5000/demo/web"
    with pytest.raises(AttributeError):
        cfg.project.name = "x"  # type: ignore[misc]


def test_build_order_puts_bases_first_and_groups_independent_images(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path))
    assert [[i.name for i in level] for level in cfg.build_order()] == [["debian"], ["runtime"], ["web"]]
    assert [[i.name for i in level] for level in cfg.build_order(["runtime"])] == [["debian"], ["runtime"]]


def test_the_repository_config_is_valid() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    assert {"dev", "staging", "prod"} <= set(cfg.environments)
    levels = [[i.name for i in level] for level in cfg.build_order()]
    assert levels[0] == ["debian"]
    # Every image comes after the bases it names.
    position = {name: n for n, level in enumerate(levels) for name in level}
    for img in cfg.images.values():
        assert all(position[base] < position[img.name] for base in img.bases.values()), img.name


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "demo"', 'name = "demo"\ncolour = "blue"', "pipeline.toml: project.colour: unknown key"),
        ('context = "services/web"', "context = 3", "services.web.context: expected a string, got an integer 3"),
        ('context = "services/web"', 'context = "services/nope"', "services.web.context: directory"),
        (
            'target = "runtime"',
            'target = "runtime"\ndockerfile = "Missing.Dockerfile"',
            "services.web.dockerfile: file",
        ),
        (
            "[environments.prod]\npush = true",
            '[environments.prod]\npush = "yes"',
            "environments.prod.push: expected true or false",
        ),
        (
            'bases = { RUNTIME_IMAGE = "runtime" }',
            'bases = { RUNTIME_IMAGE = "nothing" }',
            "services.web.bases.RUNTIME_IMAGE: names unknown image 'nothing'",
        ),
        ('kind = "rootfs"', 'kind = "rootfs"\nbases = { X = "runtime" }', "images.debian.bases: unknown key"),
        ('kind = "rootfs"', 'kind = "iso"', "images.debian.kind: must be one of rootfs, dockerfile; got 'iso'"),
        ('address = "127.0.0.1:5000"\n', "", "registry.address: is required but missing"),
        ('default_env = "dev"', 'default_env = "qa"', "default_env: names unknown environment 'qa'"),
        (
            'tags = ["prod", "stable"]',
            'tags = ["prod", "no spaces"]',
            "environments.prod.tags[1]: 'no spaces' is not a valid image tag",
        ),
        ('args = { GREETING = "hi" }', "args = { GREETING = 1 }", "services.web.args.GREETING: expected a string"),
        (
            'args = { GREETING = "hi" }',
            'args = { "BAD-NAME" = "x" }',
            "services.web.args.BAD-NAME: is not a valid build-arg name",
        ),
        ("[services.web]", "[services.Web]", "services.Web: image names must be lowercase"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = textwrap.dedent(GOOD)
    assert old in text, old
    path = project(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert message in err.value.render()
    assert str(path) in err.value.render()


def test_cycle_between_images_is_rejected(tmp_path: Path) -> None:
    text = textwrap.dedent(GOOD).replace('kind = "rootfs"', 'context = "images/runtime"\nbases = { B = "runtime" }')
    with pytest.raises(
        ConfigError, match=r"cycle between images: (debian -> runtime -> debian|runtime -> debian -> runtime)"
    ):
        config.load(project(tmp_path, text))


def test_service_cannot_be_a_base(tmp_path: Path) -> None:
    text = textwrap.dedent(GOOD) + '\n[services.other]\ncontext = "services/web"\nbases = { B = "web" }\n'
    with pytest.raises(ConfigError, match=r"services.other.bases.B: 'web' is a service"):
        config.load(project(tmp_path, text))


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    path = project(tmp_path, "[project\nname=1")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.load(path)
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "absent.toml")


def test_bench_targets_must_name_real_images(tmp_path: Path) -> None:
    path = project(tmp_path, textwrap.dedent(GOOD) + "\n[bench]\nsize_budgets_mb = { ghost = 10 }\n")
    with pytest.raises(ConfigError, match=r"bench\.size_budgets_mb\.ghost: names no image or service"):
        config.load(path)


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    path = project(tmp_path, textwrap.dedent(GOOD).replace('name = "demo"', 'name = "demo"\nnmae = "typo"'))
    r = run_cli("--config", str(path), "build")
    assert r.returncode == 2
    assert "project.nmae: unknown key" in r.stderr
    assert "keys allowed here:" in r.stderr
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- [smoke] and [load]

SMOKE = """
[smoke]
deadline = 90
suite = "tests/smoke"

[[smoke.probes]]
name = "liveness"
service = "web"
port = 8000
path = "/health"
json = { status = "ok", up = true, n = 1, ratio = 0.5 }
json_keys = ["items"]

[[smoke.probes]]
name = "metrics"
service = "web"
port = 8000
path = "/metrics"
method = "POST"
status = 401
auth_user_secret = "metrics_user"
auth_password_secret = "metrics_password"
body = '{"q": 1}'
content_type = "text/plain"
deadline = 2.5
environments = ["prod"]

[load]
service = "web"
port = 8000
paths = ["/health", "/documents/1"]
seed = "tests/smoke/test_x.py::test_seed"
connections = 20
duration = 5
p99_ms = 50
"""


def test_smoke_and_load_settings_load_frozen(tmp_path: Path) -> None:
    (tmp_path / "tests/smoke").mkdir(parents=True)
    cfg = config.load(project(tmp_path, GOOD + SMOKE))
    assert cfg.smoke.deadline == 90.0 and cfg.smoke.suite == tmp_path / "tests/smoke"
    live, metrics = cfg.smoke.probes
    assert (live.name, live.service, live.port, live.path, live.method, live.status) == (
        "liveness",
        "web",
        8000,
        "/health",
        "GET",
        200,
    )
    assert dict(live.json) == {"status": "ok", "up": True, "n": 1, "ratio": 0.5}
    assert live.json_keys == ("items",) and live.deadline == 10.0 and live.environments == ()
    assert live.auth_user_secret is None and live.body is None and live.content_type == "application/json"
    assert metrics.method == "POST" and metrics.status == 401 and metrics.deadline == 2.5
    assert (metrics.auth_user_secret, metrics.auth_password_secret) == ("metrics_user", "metrics_password")
    assert metrics.body == '{"q": 1}' and metrics.content_type == "text/plain"
    assert metrics.environments == ("prod",)
    assert cfg.load is not None
    assert cfg.load.paths == ("/health", "/documents/1") and cfg.load.seed == "tests/smoke/test_x.py::test_seed"
    assert (cfg.load.connections, cfg.load.duration, cfg.load.p99_ms) == (20, 5, 50.0)
    with pytest.raises(AttributeError):
        live.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        live.json["status"] = "bad"  # type: ignore[index]


def test_smoke_and_load_defaults(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path))
    assert cfg.smoke == config.SmokeSettings(deadline=120.0, suite=None, probes=())
    assert cfg.load is None
    cfg = config.load(project(tmp_path, GOOD + '[load]\nservice = "web"\nport = 80\npaths = ["/"]\n'))
    assert cfg.load == config.LoadSettings(service="web", port=80, paths=("/",))
    assert (cfg.load.connections, cfg.load.duration, cfg.load.p99_ms, cfg.load.seed) == (50, 10, 100.0, None)


def test_the_repository_declares_its_probes_and_load_target() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    probes = {p.name: p for p in cfg.smoke.probes}
    assert probes["api liveness"].path == "/health" and dict(probes["api liveness"].json) == {"status": "ok"}
    assert probes["api readiness"].path == "/ready"
    anonymous = probes["metrics refuse anonymous access"]
    assert anonymous.status == 401 and anonymous.auth_user_secret is None
    auth = probes["metrics with the configured credential"]
    assert auth.status == 200 and (auth.auth_user_secret, auth.auth_password_secret) == (
        "metrics_user",
        "metrics_password",
    )
    assert cfg.smoke.suite == ROOT / "smoke"
    assert dict(cfg.smoke.environment) == {"API_PORT": "", "INGEST_POLL_SECONDS": "0.2"}
    # The suite loads only the plugin it needs; unset (the default) keeps pytest's autoload of every one.
    assert cfg.smoke.plugins == ("pytest_timeout",) and config.SmokeSettings().plugins is None
    assert dict(cfg.smoke.via) == {"api:8000": "proxy:8080"}  # staging and prod: only the front door publishes
    # The load check drives what its seed test hands over: /documents/{id} of the seeded documents.
    assert cfg.load is not None and (cfg.load.service, cfg.load.port, cfg.load.paths) == ("api", 8000, ())
    assert cfg.load.seed == "smoke/seed_load.py::test_seed_documents_for_load"


PROBE = '[[smoke.probes]]\nname = "p"\nservice = "web"\nport = 80\npath = "/"\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[smoke]\ndeadline = 0\n", "smoke.deadline: must be from 1 to 3600, got 0"),
        ('[smoke]\nvia = { "api" = "proxy:8080" }\n', "smoke.via.api: 'api' is not SERVICE:PORT"),
        ('[smoke]\nvia = { "api:8000" = "proxy:99999" }\n', "smoke.via.api:8000: 'proxy:99999' is not SERVICE:PORT"),
        ('[smoke]\nvia = { "api:8000" = "api:8080" }\n', "smoke.via.api:8000: reaches a service through itself"),
        ('[smoke]\nvia = { "api:8000" = 8080 }\n', "smoke.via.api:8000"),
        ("[smoke]\ndeadline = 3601\n", "smoke.deadline: must be from 1 to 3600"),
        ("[smoke]\ndeadline = true\n", "smoke.deadline: expected a number, got a boolean"),
        ("[smoke]\ndeadline = nan\n", "smoke.deadline: must be from 1 to 3600, got nan"),
        ('[smoke]\nsuite = "../elsewhere"\n', "smoke.suite: '../elsewhere' is not inside the project"),
        ('[smoke]\nsuite = "tests/none"\n', "smoke.suite:"),
        ('[smoke]\nprobes = "x"\n', "smoke.probes: expected a list of tables"),
        ('[smoke]\nplugins = "pytest_timeout"\n', "smoke.plugins: expected a list of strings"),
        ('[smoke]\nplugins = ["pytest timeout"]\n', "smoke.plugins[0]: 'pytest timeout' is not a pytest plugin"),
        ('[smoke]\nplugins = ["-p"]\n', "smoke.plugins[0]: '-p' is not a pytest plugin"),
        (PROBE.replace('name = "p"\n', ""), "smoke.probes[0].name: is required but missing"),
        (PROBE.replace('service = "web"\n', ""), "smoke.probes[0].service: is required but missing"),
        (PROBE.replace("port = 80\n", ""), "smoke.probes[0].port: is required but missing"),
        (PROBE.replace("port = 80", "port = 65536"), "smoke.probes[0].port: must be from 1 to 65535"),
        (PROBE.replace('path = "/"', 'path = "health"'), "smoke.probes[0].path: 'health' is not a URL path"),
        (PROBE + 'method = "get"\n', "smoke.probes[0].method: must be one of GET, HEAD, POST, PUT, DELETE, PATCH"),
        (PROBE + "status = 600\n", "smoke.probes[0].status: must be from 100 to 599"),
        (PROBE + "json = { a = [1] }\n", "smoke.probes[0].json.a: expected a string, number or boolean"),
        (PROBE + "json_keys = [1]\n", "smoke.probes[0].json_keys[0]: expected a string"),
        (PROBE + 'auth_password_secret = "p"\n', "smoke.probes[0]: auth_user_secret and auth_password_secret"),
        (PROBE + "deadline = 0.05\n", "smoke.probes[0].deadline: must be from 0.1 to 600"),
        (PROBE + "deadline = 601\n", "smoke.probes[0].deadline: must be from 0.1 to 600"),
        (PROBE + 'environments = ["qa"]\n', "smoke.probes[0].environments[0]: names unknown environment 'qa'"),
        (PROBE + "retries = 3\n", "smoke.probes[0].retries: unknown key"),
        (PROBE + PROBE, "smoke.probes[1].name: 'p' is already the name of another probe"),
        ('[load]\nport = 1\npaths = ["/"]\n', "load.service: is required but missing"),
        ('[load]\nservice = "web"\npaths = ["/"]\n', "load.port: is required but missing"),
        ('[load]\nservice = "web"\nport = 1\n', "load.paths: needs at least one path"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/", "x"]\n', "load.paths[1]: 'x' is not a URL path"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\nconnections = 10001\n', "load.connections: must be"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\nduration = 0\n', "load.duration: must be from 1 to 3600"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\np99_ms = 0\n', "load.p99_ms: must be more than 0"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\np99_ms = -1.5\n', "load.p99_ms: must be more than 0"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\nseed = ""\n', "load.seed: must not be empty"),
        ('[load]\nservice = "web"\nport = 1\npaths = ["/"]\nrps = 5\n', "load.rps: unknown key"),
    ],
)
def test_bad_smoke_and_load_settings(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(project(tmp_path, GOOD + extra))
    assert message in err.value.render()


# --------------------------------------------------------------------------- values, not only types


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('context = "services/web"', 'context = "../.."', "services.web.context: '../..' is not inside the project"),
        ('context = "services/web"', 'context = "/etc"', "services.web.context: '/etc' is not inside the project"),
        ('address = "127.0.0.1:5000"', 'address = "https://r.example"', "registry.address: 'https://r.example'"),
        ('address = "127.0.0.1:5000"', 'address = "r.example:65536"', "the port must be a number from 1 to 65535"),
        ('namespace = "demo"', 'namespace = "Demo"', "registry.namespace: 'Demo' is not a valid repository name"),
        ("[environments.prod]", '[environments."Prod"]', "environments.Prod: environment names are"),
        ('tags = ["prod", "stable"]', 'tags = ["-prod"]', "environments.prod.tags[0]: '-prod' is not a valid"),
        ('tags = ["prod", "stable"]', 'tags = ["a", "a"]', "environments.prod.tags[1]: 'a' is listed twice"),
        ('target = "runtime"', 'target = "runtime"\nimage = "web--"', "services.web.image: 'web--'"),
        ('args = { GREETING = "hi" }', 'args = { GREETING = "a\\nb" }', "services.web.args.GREETING: contains"),
        ("[environments.dev]", "[build]\nparallel = 65\n[environments.dev]", "build.parallel: must be from 1 to 64"),
        ("[environments.dev]", "[build]\ntimeout = 86401\n[environments.dev]", "build.timeout: must be from 1 to"),
        ('kind = "rootfs"', 'kind = "rootfs"\nmirror = "ftp://x"', "images.debian.mirror: 'ftp://x' is not a plain"),
        ('name = "demo"', 'name = " "', "project.name: must not be empty"),
    ],
)
def test_values_are_checked_not_only_types(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = textwrap.dedent(GOOD)
    assert old in text, old
    with pytest.raises(ConfigError) as err:
        config.load(project(tmp_path, text.replace(old, new, 1)))
    assert message in err.value.render()


def test_a_symlink_out_of_the_project_is_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    path = project(proj)
    (proj / "services/web/Dockerfile").unlink()
    (proj / "services/web/Dockerfile").symlink_to(outside / "Dockerfile")
    with pytest.raises(ConfigError, match=r"services.web.dockerfile: .* is not inside the project"):
        config.load(path)


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("127.0.0.1:5000", True),
        ("localhost", True),
        ("registry.example.com", True),
        ("registry-1.example.com:443", True),
        ("[::1]:5000", True),
        ("[fe80::1]", True),
        ("", False),
        ("http://127.0.0.1:5000", False),
        ("127.0.0.1:5000/ns", False),
        ("host:", False),
        ("host:0", False),
        ("host:65536", False),
        ("host:５０００", False),  # full-width digits are digits to str.isdigit
        ("-host", False),
        ("host-", False),
        ("a..b", False),
        ("::1", False),
        ("[::1", False),
        ("[nope]:1", False),
        ("my host", False),
    ],
)
def test_registry_addresses(address: str, ok: bool) -> None:
    assert (refs.address_problem(address) is None) is ok, refs.address_problem(address)


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ("api", True),
        ("api:dev", True),
        ("127.0.0.1:5000/pipelines/api:git-abc", True),
        ("localhost/api", True),
        ("registry.example.com/team/api@sha256:" + "a" * 64, True),
        ("api:1@sha256:" + "0" * 64, True),
        ("sha256:" + "f" * 64, True),
        ("abcdef012345", True),
        ("my_app__x.y-z", True),
        ("", False),
        ("-v", False),
        ("--output=/tmp/x", False),
        ("API", False),
        ("api:", False),
        ("api:-x", False),
        ("api@sha256:123", False),
        ("api app", False),
        ("api\n", False),
        ("api/", False),
        ("/api", False),
        ("api..x", False),
        ("host:99999/api", False),
    ],
)
def test_image_references(ref: str, ok: bool) -> None:
    assert (refs.reference_problem(ref) is None) is ok, refs.reference_problem(ref)


@pytest.mark.parametrize("kind", ["directory", "fifo", "huge", "not-utf8", "nested"])
def test_config_file_itself_is_input(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "pipeline.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        path.write_bytes(b"#" * (inputs.SMALL + 1))
    elif kind == "not-utf8":
        path.write_bytes(b'[project]\nname = "caf\xe9"\n')
    else:
        path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    expected = {
        "directory": "is a directory, not a regular file",
        "fifo": "is a FIFO, not a regular file",
        "huge": "is too large",
        "not-utf8": "is not UTF-8 text (line 2: byte 0xe9)",
        "nested": "nested too deeply",
    }[kind]
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path) in err.value.render() and expected in err.value.render()


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from("[]{}=.\"\n abc1-_:/\\#'tfu,"), max_size=200))
def test_any_text_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    """Nothing a user can type makes the loader raise anything but ConfigError."""
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    try:
        config.load(path)
    except ConfigError as exc:
        assert str(path) in exc.render()


@pytest.mark.parametrize("key", ["mirror", "security_mirror"])
@pytest.mark.parametrize(
    "value",
    [
        "[trusted=yes] http://deb.debian.org/debian",
        "http://deb.debian.org/debian [trusted=yes]",
        "http://x y",
        "ftp://deb.debian.org/debian",
        "file:///srv/mirror",
        "copy:///srv/mirror",
        "deb.debian.org/debian",
        "http://user:secret@deb.debian.org/debian",
        "http://deb.debian.org/debian#",
        "http://deb.debian.org/debian?x=1",
        "http://[::1]/debian",
        "http://deb.debian.org/debian]",
        "http://",
        "http:///debian",
    ],
)
def test_mirrors_are_plain_http_urls(tmp_path: Path, key: str, value: str) -> None:
    """A mirror reaches debootstrap's argv and the image's sources.list verbatim: no apt option may ride along."""
    text = textwrap.dedent(GOOD).replace('kind = "rootfs"', f'kind = "rootfs"\n{key} = {value!r}', 1)
    with pytest.raises(ConfigError) as err:
        config.load(project(tmp_path, text))
    assert f"images.debian.{key}: {value!r} is not a plain http:// or https:// mirror URL" in err.value.render()
    assert "[trusted=yes]" in (err.value.hint or "")


@pytest.mark.parametrize(
    "value",
    [
        "http://deb.debian.org/debian",
        "https://deb.debian.org/debian/",
        "http://127.0.0.1:3142/debian",
        "http://mirror.example.org:8080/pub/debian-security",
        "https://snapshot.debian.org/archive/debian/20261201T000000Z",
        "http://mirror.example/debian%2Bx/~user/a_b+c",
    ],
)
def test_plain_mirror_urls_are_taken(tmp_path: Path, value: str) -> None:
    for key in ("mirror", "security_mirror"):
        text = textwrap.dedent(GOOD).replace('kind = "rootfs"', f'kind = "rootfs"\n{key} = {value!r}', 1)
        img = config.load(project(tmp_path / key, text)).images["debian"]
        assert getattr(img, key) == value


def test_the_rootfs_keyring_defaults_to_debians_and_resolves_in_the_project(tmp_path: Path) -> None:
    img = config.load(project(tmp_path / "a")).images["debian"]
    assert img.keyring == config.DEBIAN_KEYRING == Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    text = textwrap.dedent(GOOD).replace('kind = "rootfs"', 'kind = "rootfs"\nkeyring = "keys/mirror.gpg"', 1)
    assert config.load(project(tmp_path / "b", text)).images["debian"].keyring == tmp_path / "b/keys/mirror.gpg"
    empty = textwrap.dedent(GOOD).replace('kind = "rootfs"', 'kind = "rootfs"\nkeyring = ""', 1)
    with pytest.raises(ConfigError, match=r"images\.debian\.keyring: must not be empty"):
        config.load(project(tmp_path / "c", empty))


def test_the_offline_advisories_are_found_beside_the_project_not_at_a_fixed_path() -> None:
    """The one config path allowed outside the tree: relative to pipeline.toml, so CI finds ../shared too."""
    text = (ROOT / "pipeline.toml").read_text()
    assert 'offline_advisories = "../shared/advisories/pypa-advisory-database"' in text
    cfg = config.load(ROOT / "pipeline.toml")
    assert cfg.scan.offline_advisories == ROOT.parent / "shared" / "advisories" / "pypa-advisory-database"


# --------------------------------------------------------------------------- PIPELINES_* variables, registries

# prod pushes to a registry of its own; dev keeps [registry].
OWN_REGISTRY = GOOD.replace(
    'tags = ["prod", "stable"]', 'tags = ["prod", "stable"]\nregistry = "registry.example.com:5443"\nnamespace = "apps"'
)


def test_a_variable_beats_the_file_and_a_flag_beats_the_variable(tmp_path: Path) -> None:
    path = project(tmp_path)
    plain = config.load(path, {})
    assert plain.registry == config.Registry("127.0.0.1:5000", "demo") and plain.env(None).name == "dev"
    cfg = config.load(
        path, {"PIPELINES_REGISTRY": "registry.example.com", "PIPELINES_NAMESPACE": "ci/team", "PIPELINES_ENV": "prod"}
    )
    assert cfg.registry == config.Registry("registry.example.com", "ci/team")
    assert cfg.repo(cfg.images["web"], "dev") == "registry.example.com/ci/team/web"
    assert cfg.env(None).name == "prod"  # a command given no --env
    assert cfg.env("dev").name == "dev"  # --env dev
    # Empty is unset, as ${VAR:-default} is in a shell: a CI may pass an unset setting through.
    blank = config.load(path, {"PIPELINES_REGISTRY": "", "PIPELINES_NAMESPACE": "", "PIPELINES_ENV": ""})
    assert blank.registry == plain.registry and blank.default_env == "dev"


def test_the_older_registry_variable_still_counts_and_may_not_contradict(tmp_path: Path) -> None:
    path = project(tmp_path)
    old = config.load(path, {"PIPELINES_REGISTRY_ADDR": "127.0.0.1:5001"})
    assert old.registry.address == "127.0.0.1:5001"
    assert old.setting("registry.address") == config.Setting(
        "registry.address", "127.0.0.1:5001", "PIPELINES_REGISTRY_ADDR"
    )
    both = {"PIPELINES_REGISTRY": "127.0.0.1:5001", "PIPELINES_REGISTRY_ADDR": "127.0.0.1:5001"}
    assert config.load(path, both).setting("registry.address") == config.Setting(
        "registry.address", "127.0.0.1:5001", "PIPELINES_REGISTRY"
    )
    with pytest.raises(ConfigError) as err:
        config.load(path, {**both, "PIPELINES_REGISTRY_ADDR": "127.0.0.1:5000"})
    assert "PIPELINES_REGISTRY: '127.0.0.1:5001' contradicts PIPELINES_REGISTRY_ADDR='127.0.0.1:5000'" in str(err.value)


def test_the_process_environment_is_read_when_none_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINES_ENV", "prod")
    assert config.load(project(tmp_path)).default_env == "prod"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PIPELINES_REGISTRY", "http://r.example", "'http://r.example' is not host[:port]: no scheme and no path"),
        ("PIPELINES_REGISTRY", "r.example:65536", "the port must be a number from 1 to 65535"),
        ("PIPELINES_REGISTRY_ADDR", "my host", "'my host' is not host[:port]"),
        ("PIPELINES_NAMESPACE", "Team", "'Team' is not a valid repository name"),
        ("PIPELINES_NAMESPACE", "team//apps", "is not a valid repository name"),
        ("PIPELINES_ENV", "qa", "names unknown environment 'qa'"),
    ],
)
def test_a_bad_variable_is_named_not_the_file(tmp_path: Path, variable: str, value: str, message: str) -> None:
    path = project(tmp_path)
    with pytest.raises(ConfigError) as err:
        config.load(path, {variable: value})
    assert err.value.exit_code == 2
    assert err.value.render().startswith(f"error: environment variable {variable}: "), err.value.render()
    assert message in err.value.render() and str(path) not in err.value.render()


def test_a_bad_variable_exits_2_on_the_command_line(tmp_path: Path) -> None:
    r = run_cli_outcome("--config", str(project(tmp_path)), "config", env={"PIPELINES_NAMESPACE": "Team"})
    assert r.returncode == 2 and "environment variable PIPELINES_NAMESPACE: 'Team'" in r.stderr, r.stderr


def test_an_environment_may_have_a_registry_of_its_own(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, OWN_REGISTRY), {})
    web, runtime = cfg.images["web"], cfg.images["runtime"]
    assert cfg.registry_for("prod") == config.Registry("registry.example.com:5443", "apps")
    assert cfg.registry_for("dev") == cfg.registry == config.Registry("127.0.0.1:5000", "demo")
    assert cfg.repo(web, "prod") == "registry.example.com:5443/apps/web"
    assert cfg.repo(web, "dev") == "127.0.0.1:5000/demo/web"
    # The golden bases are one set for every environment, pinned once in the lock: they stay in [registry].
    assert cfg.repo(runtime, "prod") == "127.0.0.1:5000/demo/runtime"
    # Only the address: the namespace is still [registry]'s.
    address_only = OWN_REGISTRY.replace('namespace = "apps"\n', "")
    assert config.load(project(tmp_path, address_only), {}).repo(web, "prod") == "registry.example.com:5443/demo/web"


def test_the_variables_replace_every_environments_registry(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, OWN_REGISTRY), {"PIPELINES_REGISTRY": "ci.example:5000"})
    assert cfg.registry_for("prod") == config.Registry("ci.example:5000", "apps")
    assert cfg.registry_for("dev") == config.Registry("ci.example:5000", "demo")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('registry = "https://r.example"', "environments.prod.registry: 'https://r.example' is not host[:port]"),
        ("registry = 5000", "environments.prod.registry: expected a string"),
        ('namespace = "Apps"', "environments.prod.namespace: 'Apps' is not a valid repository name"),
    ],
)
def test_an_environments_registry_is_checked_as_registry_is(tmp_path: Path, snippet: str, message: str) -> None:
    text = GOOD.replace('tags = ["prod", "stable"]', f'tags = ["prod", "stable"]\n{snippet}')
    with pytest.raises(ConfigError) as err:
        config.load(project(tmp_path, text), {})
    assert message in err.value.render() and "pipeline.toml" in err.value.render()


def test_promotion_between_registries_is_refused_at_load(tmp_path: Path) -> None:
    text = OWN_REGISTRY.replace("[environments.prod]", '[environments.prod]\npromote_from = "dev"')
    with pytest.raises(ConfigError) as err:
        config.load(project(tmp_path, text), {})
    assert "environments.prod: is promoted from 'dev' but uses another registry" in err.value.render()
    assert "registry.example.com:5443/apps vs 127.0.0.1:5000/demo" in err.value.render()
    # The same registry named again is the same registry.
    same = GOOD.replace("[environments.prod]", '[environments.prod]\npromote_from = "dev"\nregistry = "127.0.0.1:5000"')
    assert config.load(project(tmp_path, same), {}).env("prod").promote_from == "dev"


def test_settings_name_the_source_of_each_value(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, OWN_REGISTRY), {"PIPELINES_NAMESPACE": "ci", "PIPELINES_ENV": "prod"})
    assert {s.key: (s.value, s.source) for s in cfg.settings} == {
        "registry.address": ("127.0.0.1:5000", "pipeline.toml: registry.address"),
        "registry.namespace": ("ci", "PIPELINES_NAMESPACE"),
        "default_env": ("prod", "PIPELINES_ENV"),
        "environments.dev.registry": ("127.0.0.1:5000", "pipeline.toml: registry.address"),
        "environments.dev.namespace": ("ci", "PIPELINES_NAMESPACE"),
        "environments.prod.registry": ("registry.example.com:5443", "pipeline.toml: environments.prod.registry"),
        "environments.prod.namespace": ("ci", "PIPELINES_NAMESPACE"),
    }
    bare = "\n".join(line for line in GOOD.splitlines() if not line.startswith(("namespace", "default_env")))
    defaults = config.load(project(tmp_path, bare), {})
    assert defaults.setting("registry.namespace") == config.Setting("registry.namespace", "", "default: none")
    assert defaults.setting("default_env") == config.Setting("default_env", "dev", "default: the first environment")


def test_the_config_command_shows_each_value_and_its_source(tmp_path: Path) -> None:
    path = project(tmp_path, OWN_REGISTRY)
    r = run_cli_outcome(
        "--config", str(path), "config", "--format", "json", env={"PIPELINES_REGISTRY": "ci.example:5000"}
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["config"]
    settings = {s["key"]: (s["value"], s["source"]) for s in data["settings"]}
    assert settings["environments.prod.registry"] == ("ci.example:5000", "PIPELINES_REGISTRY")
    assert settings["environments.prod.namespace"] == ("apps", "pipeline.toml: environments.prod.namespace")
    assert data["environments"]["prod"]["registry"] == {"address": "ci.example:5000", "namespace": "apps"}
    table = run_cli_outcome("--config", str(path), "config", "--format", "table", env={"PIPELINES_ENV": "prod"})
    assert table.returncode == 0, table.stderr
    assert re.search(r"^default_env +prod +PIPELINES_ENV$", table.stdout, re.MULTILINE), table.stdout
    assert re.search(r"^registry\.address +127\.0\.0\.1:5000 +pipeline\.toml: registry\.address$", table.stdout, re.M)


def test_a_flag_beats_pipelines_env_on_the_command_line(tmp_path: Path) -> None:
    path, state = str(project(tmp_path)), str(tmp_path / "state")
    argv = ("--config", path, "releases", "--state", state, "--format", "json")
    by_variable = run_cli_outcome(*argv, env={"PIPELINES_ENV": "prod"})
    assert by_variable.returncode == 0 and json.loads(by_variable.stdout)["env"] == "prod", by_variable.stderr
    by_flag = run_cli_outcome(*argv, "--env", "dev", env={"PIPELINES_ENV": "prod"})
    assert by_flag.returncode == 0 and json.loads(by_flag.stdout)["env"] == "dev", by_flag.stderr
