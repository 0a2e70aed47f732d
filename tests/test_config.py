"""Config validation: good files load, bad ones name the file and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipelines import config
from pipelines.errors import ConfigError

from .conftest import ROOT, run_cli

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
