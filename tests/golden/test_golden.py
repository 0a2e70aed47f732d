"""The golden images the package ships: the catalog, naming them in a config, and that a wheel carries them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines import build, config, golden, report
from pipelines.adopt import write
from pipelines.errors import ConfigError
from tests.harness import ROOT, run_cli, run_cli_outcome

HEAD = """
[project]
name = "adopter"

[registry]
address = "127.0.0.1:5000"

[services.web]
context = "services/web"
bases = { RUNTIME_IMAGE = "python-runtime" }

[environments.dev]
"""
RUNTIME = '[images.python-runtime]\ngolden = "python-runtime"\n'


def project(tmp_path: Path, images: str) -> Path:
    """A repository with nothing of this one: a service and the [images.*] tables given."""
    (tmp_path / "services/web").mkdir(parents=True, exist_ok=True)
    (tmp_path / "services/web/Dockerfile").write_text("ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n")
    path = tmp_path / "pipeline.toml"
    path.write_text(textwrap.dedent(HEAD) + textwrap.dedent(images))
    return path


def golden_files() -> list[str]:
    """Every file of the golden definitions, relative to the package's parent (as a wheel names them)."""
    return sorted(
        p.relative_to(golden.HERE.parent.parent).as_posix()
        for p in golden.HERE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


# --------------------------------------------------------------------------- the catalog


def test_the_catalog_names_the_golden_images() -> None:
    cat = golden.catalog()
    assert {"debian-bookworm", "python-builder", "python-runtime"} <= set(cat)
    debian = cat["debian-bookworm"]
    assert debian.kind == "rootfs" and debian.context is None and not debian.bases
    assert dict(debian.settings) == {
        "kind": "rootfs",
        "suite": "bookworm",
        "variant": "minbase",
        "mirror": "http://deb.debian.org/debian",
        "suites": ["bookworm", "bookworm-updates", "bookworm-security"],
        "security_mirror": "http://deb.debian.org/debian-security",
    }
    for name, role in (("python-builder", "builder"), ("python-runtime", "runtime")):
        assert cat[name].kind == "dockerfile"
        assert cat[name].settings["role"] == role
        assert dict(cat[name].bases) == {"BASE_IMAGE": "debian-bookworm"}
        assert cat[name].python == "3.11"


# Each Debian suite of the matrix: its status, its Python, and the suites apt reads (what deb.debian.org and
# its debian-security serve: forky has -updates and -security suites too, the latter without the security
# team's support).
MATRIX = {
    "bookworm": ("oldstable", "3.11", "debian-bookworm", "python-builder", "python-runtime"),
    "trixie": ("stable", "3.13", "debian-trixie", "python-builder-trixie", "python-runtime-trixie"),
    "forky": ("testing", "3.14", "debian-forky", "python-builder-forky", "python-runtime-forky"),
}


@pytest.mark.parametrize("suite", sorted(MATRIX))
def test_each_debian_suite_has_a_rootfs_a_builder_and_a_runtime(suite: str) -> None:
    status, python, rootfs, builder, runtime = MATRIX[suite]
    cat = golden.catalog()
    debian = cat[rootfs]
    assert debian.kind == "rootfs" and debian.status == status and not debian.python
    assert debian.settings["suite"] == suite
    assert debian.settings["suites"] == [suite, f"{suite}-updates", f"{suite}-security"]
    assert debian.settings["security_mirror"] == "http://deb.debian.org/debian-security"
    for name, role in ((builder, "builder"), (runtime, "runtime")):
        g = cat[name]
        assert (g.python, g.settings["role"], dict(g.bases)) == (python, role, {"BASE_IMAGE": rootfs})
        assert g.context == golden.HERE / f"python-{role}"  # one definition for every suite
        assert f"python{python}" in g.description and rootfs in g.description
    assert golden.suite_status(suite) == status


@pytest.mark.parametrize(
    ("name", "python", "chosen"),
    [
        ("python-runtime", "3.11", "python-runtime"),
        ("python-runtime", "3.9", "python-runtime"),
        ("python-runtime", "3.12", "python-runtime-trixie"),
        ("python-runtime", "3.13", "python-runtime-trixie"),
        ("python-runtime", "3.14", "python-runtime-forky"),
        ("python-runtime-forky", "3.11", "python-runtime"),
        ("python-builder", "3.12", "python-builder-trixie"),
        ("python-builder-trixie", "3.14", "python-builder-forky"),
        ("python-runtime", "3.15", None),
    ],
)
def test_a_python_version_takes_the_oldest_python_not_older(name: str, python: str, chosen: str | None) -> None:
    got = golden.select(name, python)
    assert (got.name if got is not None else None) == chosen
    assert [g.python for g in golden.family(name)] == ["3.11", "3.13", "3.14"]
    assert golden.family("debian-trixie") == []


def test_every_context_is_a_directory_of_the_package_with_its_dockerfile() -> None:
    for g in golden.catalog().values():
        assert g.description.strip(), g.name
        if g.kind != "dockerfile":
            continue
        assert g.context is not None and g.dockerfile is not None
        assert g.context.is_dir() and g.context.parent == golden.HERE, g.name
        assert g.dockerfile.is_file() and g.dockerfile.parent == g.context, g.name
        # Its Dockerfile takes every base the catalog gives it as a build arg.
        text = g.dockerfile.read_text()
        assert all(f"ARG {arg}" in text for arg in g.bases), g.name


@pytest.mark.parametrize("name", sorted(golden.catalog()))
def test_each_golden_image_alone_is_a_valid_config(tmp_path: Path, name: str) -> None:
    """The config reader's own rules accept every entry, with the bases it needs added by their golden names."""
    cfg = config.load(project(tmp_path, RUNTIME + f'[images.x]\ngolden = "{name}"\n'))
    assert cfg.images["x"].golden == name


def test_a_broken_catalog_is_the_packages_bug_not_the_users(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text('[one]\ndescription = "a"\ncontext = "missing"\n')
    with pytest.raises(golden.CatalogError, match=r"one\.context"):
        golden._load(bad)
    bad.write_text(
        '[one]\ndescription = "a"\nkind = "rootfs"\nstatus = "stable"\n'
        '[two]\ndescription = "b"\nkind = "rootfs"\nstatus = "stable"\nbases = { B = "one" }\n'
    )
    with pytest.raises(golden.CatalogError, match="rootfs image has no context"):
        golden._load(bad)
    bad.write_text('[one]\ndescription = "a"\nkind = "rootfs"\n')
    with pytest.raises(golden.CatalogError, match=r"one\.status: a rootfs image's Debian status"):
        golden._load(bad)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    bad.write_text('[one]\ndescription = "a"\ncontext = "ctx"\npython = 3.13\n')
    with pytest.raises(golden.CatalogError, match=r"one\.python: a Python image's version"):
        golden._load(bad)
    bad.write_text('[one]\ndescription = "a"\ncontext = "ctx"\nstatus = "stable"\n')
    with pytest.raises(golden.CatalogError, match=r"one\.status: only a rootfs image has one"):
        golden._load(bad)


# --------------------------------------------------------------------------- naming one in pipeline.toml


def test_a_golden_runtime_alone_brings_its_debian_base(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, RUNTIME))
    debian, runtime = cfg.images["debian-bookworm"], cfg.images["python-runtime"]
    assert debian.golden == "debian-bookworm" and debian.kind == "rootfs" and debian.is_base
    assert (debian.suite, debian.variant) == ("bookworm", "minbase")
    assert debian.suites == ("bookworm", "bookworm-updates", "bookworm-security")
    assert runtime.golden == "python-runtime" and runtime.role == "runtime"
    assert runtime.context == golden.HERE / "python-runtime"
    assert runtime.dockerfile == golden.HERE / "python-runtime" / "Dockerfile"
    assert dict(runtime.bases) == {"BASE_IMAGE": "debian-bookworm"}
    assert [[i.name for i in level] for level in cfg.build_order()] == [
        ["debian-bookworm"],
        ["python-runtime"],
        ["web"],
    ]


def test_a_golden_base_resolves_to_the_image_of_that_golden_name(tmp_path: Path) -> None:
    cfg = config.load(
        project(
            tmp_path,
            """
            [images.debian]
            golden = "debian-bookworm"
            [images.python-builder]
            golden = "python-builder"
            [images.python-runtime]
            golden = "python-runtime"
            """,
        )
    )
    assert "debian-bookworm" not in cfg.images
    assert (
        dict(cfg.images["python-builder"].bases) == dict(cfg.images["python-runtime"].bases) == {"BASE_IMAGE": "debian"}
    )
    assert cfg.images["python-builder"].role == "builder"


def test_keys_beside_golden_override_the_catalogs(tmp_path: Path) -> None:
    cfg = config.load(
        project(
            tmp_path,
            """
            [images.debian]
            golden = "debian-bookworm"
            mirror = "http://mirror.example.org/debian"
            image = "base/debian"
            [images.mine]
            kind = "rootfs"
            suite = "trixie"
            [images.python-runtime]
            golden = "python-runtime"
            bases = { BASE_IMAGE = "mine" }
            args = { EXTRA = "1" }
            """,
        )
    )
    debian = cfg.images["debian"]
    assert debian.mirror == "http://mirror.example.org/debian" and debian.image == "base/debian"
    assert debian.security_mirror == "http://deb.debian.org/debian-security"  # the catalog's, not overridden
    runtime = cfg.images["python-runtime"]
    assert dict(runtime.bases) == {"BASE_IMAGE": "mine"} and dict(runtime.args) == {"EXTRA": "1"}
    assert runtime.context == golden.HERE / "python-runtime"


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            '[images.python-runtime]\ngolden = "python-runtimes"\n',
            r"images\.python-runtime\.golden: names no golden image of this package: 'python-runtimes'",
        ),
        (
            '[images.python-runtime]\ngolden = "python-runtime"\ncontext = "services/web"\n',
            r"images\.python-runtime\.context: cannot be set beside golden = 'python-runtime'",
        ),
        (
            '[images.python-runtime]\ngolden = "python-runtime"\ndockerfile = "Other"\n',
            r"images\.python-runtime\.dockerfile: cannot be set beside golden",
        ),
        (
            '[images.python-runtime]\ngolden = "debian-bookworm"\nkind = "rootfs"\n',
            r"images\.python-runtime\.kind: cannot be set beside golden",
        ),
        ("[images.python-runtime]\ngolden = 3\n", r"images\.python-runtime\.golden: expected a string"),
        (
            '[images.debian]\ngolden = "debian-bookworm"\nmirror = "ftp://x"\n' + RUNTIME,
            r"images\.debian\.mirror: 'ftp://x' is not a plain http",
        ),
        (
            '[images.debian]\ngolden = "debian-bookworm"\ncolour = "blue"\n' + RUNTIME,
            r"images\.debian\.colour: unknown key",
        ),
        (
            # The name its base would be added under is taken by an image that is something else.
            '[images.debian-bookworm]\nkind = "rootfs"\nsuite = "trixie"\n' + RUNTIME,
            r"images\.python-runtime\.golden: .*'debian-bookworm'.* is not golden = 'debian-bookworm'",
        ),
        (
            '[images.a]\ngolden = "debian-bookworm"\n[images.b]\ngolden = "debian-bookworm"\n'
            '[images.python-runtime]\ngolden = "python-runtime"\n',
            r"images\.python-runtime\.golden: .*several images here are that one: a, b",
        ),
    ],
)
def test_bad_golden_tables_name_the_file_and_key(tmp_path: Path, images: str, message: str) -> None:
    path = project(tmp_path, images)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path)
    assert info.value.file == str(path)


def test_an_unknown_golden_name_lists_the_available_ones(tmp_path: Path) -> None:
    path = project(tmp_path, '[images.python-runtime]\ngolden = "python3.13-runtime"\n')
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.hint is not None
    assert all(name in info.value.hint for name in golden.names())
    r = run_cli("--config", str(path), "config", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "images.python-runtime.golden" in out and "python-runtime (" in out and "Traceback" not in out


def test_a_python_version_chooses_the_golden_image_and_the_mismatch_is_said(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        """
        [images.python-builder]
        golden = "python-builder"
        python = "3.12"
        [images.python-runtime]
        golden = "python-runtime"
        python = "3.12"
        """,
    )
    path.write_text(path.read_text().replace("RUNTIME_IMAGE = ", 'BUILDER_IMAGE = "python-builder", RUNTIME_IMAGE = '))
    cfg = config.load(path)
    runtime, builder = cfg.images["python-runtime"], cfg.images["python-builder"]
    assert (runtime.golden, runtime.python, runtime.python_requested) == ("python-runtime-trixie", "3.13", "3.12")
    assert (builder.golden, builder.python) == ("python-builder-trixie", "3.13")
    assert dict(runtime.bases) == dict(builder.bases) == {"BASE_IMAGE": "debian-trixie"}
    assert cfg.images["debian-trixie"].suites == ("trixie", "trixie-updates", "trixie-security")
    assert (runtime.debian_suite, runtime.debian_status) == ("trixie", "stable")
    assert (cfg.images["web"].debian_suite, cfg.images["web"].debian_status) == ("trixie", "stable")
    assert cfg.golden_notices() == [
        "python-builder: python 3.12 requested, 3.13 used (python-builder-trixie, Debian trixie)",
        "python-runtime: python 3.12 requested, 3.13 used (python-runtime-trixie, Debian trixie)",
    ]
    r = run_cli_outcome("--config", str(path), "config", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "python-runtime: python 3.12 requested, 3.13 used (python-runtime-trixie, Debian trixie)" in out["notices"]
    assert out["config"]["images"]["python-runtime"]["python"] == "3.13"


def test_an_exact_python_version_is_no_mismatch_and_the_default_stays_bookworm(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, RUNTIME.replace("\n", '\npython = "3.11"\n', 1)))
    assert cfg.images["python-runtime"].golden == "python-runtime" and cfg.golden_notices() == []
    cfg = config.load(project(tmp_path, RUNTIME))
    runtime = cfg.images["python-runtime"]
    assert (runtime.golden, runtime.python, runtime.python_requested) == ("python-runtime", "3.11", "")
    assert (runtime.debian_suite, runtime.debian_status) == ("bookworm", "oldstable")


def test_every_report_on_forky_says_it_is_testing_without_security_support(tmp_path: Path) -> None:
    path = project(tmp_path, RUNTIME.replace("\n", '\npython = "3.14"\n', 1))
    cfg = config.load(path)
    assert cfg.images["python-runtime"].golden == "python-runtime-forky"
    assert {n: i.debian_status for n, i in cfg.images.items()} == {
        "python-runtime": "testing",
        "debian-forky": "testing",
        "web": "testing",
    }
    (line,) = cfg.golden_notices()
    assert line.startswith("python-runtime, debian-forky, web: Debian forky is Debian testing, without the Debian ")
    assert "security team's support" in line
    # A build names only what it built.
    assert cfg.golden_notices(["debian-forky"])[0].startswith("debian-forky: Debian forky is Debian testing")
    r = run_cli_outcome("--config", str(path), "config", "--format", "table", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Debian forky is Debian testing, without the Debian security team's support" in r.stdout + r.stderr
    row = next(line.split() for line in r.stdout.splitlines() if line.startswith("python-runtime "))
    assert row[-3:] == ["3.14", "forky", "(testing)"]


def test_a_builder_and_runtime_of_different_pythons_are_said(tmp_path: Path) -> None:
    path = project(
        tmp_path, RUNTIME.replace("\n", '\npython = "3.13"\n', 1) + '[images.b]\ngolden = "python-builder"\n'
    )
    path.write_text(path.read_text().replace("RUNTIME_IMAGE = ", 'BUILDER_IMAGE = "b", RUNTIME_IMAGE = '))
    notices = config.load(path).golden_notices()
    assert "web: its bases carry different Pythons (b 3.11, python-runtime 3.13)" in "\n".join(notices)


@pytest.mark.parametrize(
    ("images", "message", "hint"),
    [
        (
            RUNTIME + 'python = "3.15"\n',
            r"images\.python-runtime\.python: Python 3\.15 is newer than every golden 'python-runtime' image",
            "available: 3.11 (python-runtime), 3.13 (python-runtime-trixie), 3.14 (python-runtime-forky)",
        ),
        (
            RUNTIME + "python = 3.12\n",
            r"images\.python-runtime\.python: expected a Python version as a quoted string "
            r"such as \"3\.13\", got 3\.12",
            "available: 3.11",
        ),
        (
            RUNTIME + 'python = "3.x"\n',
            r"images\.python-runtime\.python: expected a Python version",
            "available: 3.11",
        ),
        (
            RUNTIME + '[images.d]\ngolden = "debian-trixie"\npython = "3.13"\n',
            r"images\.d\.python: only a golden Python image takes a Python version, and 'debian-trixie' is none",
            "python-runtime-trixie",
        ),
    ],
)
def test_a_bad_python_version_names_the_key_and_what_is_available(
    tmp_path: Path, images: str, message: str, hint: str
) -> None:
    path = project(tmp_path, images)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path)
    assert hint in (info.value.hint or "")
    r = run_cli("--config", str(path), "config", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "images." in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr


def test_golden_is_no_key_of_a_service(tmp_path: Path) -> None:
    path = project(tmp_path, RUNTIME)
    text = path.read_text().replace('context = "services/web"', 'context = "services/web"\ngolden = "python-runtime"')
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"services\.web\.golden: unknown key"):
        config.load(path)


def test_the_repository_takes_its_golden_images_by_name() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    assert {n: i.golden for n, i in cfg.images.items() if i.golden} == {
        "debian": "debian-bookworm",
        "python-builder": "python-builder",
        "python-runtime": "python-runtime",
    }
    assert not (ROOT / "images" / "builder").exists() and not (ROOT / "images" / "runtime").exists()


def test_config_shows_which_golden_image_each_one_is(tmp_path: Path) -> None:
    path = project(tmp_path, RUNTIME)
    r = run_cli_outcome("--config", str(path), "config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    images = json.loads(r.stdout)["config"]["images"]
    assert images["python-runtime"]["golden"] == "python-runtime"
    assert images["debian-bookworm"]["golden"] == "debian-bookworm" and images["web"]["golden"] == ""
    r = run_cli_outcome("--config", str(path), "config", "--format", "table", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line.split() for line in r.stdout.splitlines() if line.startswith("python-runtime "))
    assert row[:4] == ["python-runtime", "base", "python-runtime", "golden:python-runtime"]


# --------------------------------------------------------------------------- consumers of a context in the package


def test_golden_files_are_named_by_their_place_in_the_package(tmp_path: Path) -> None:
    dockerfile = golden.HERE / "python-builder" / "Dockerfile"
    assert report.display_path(dockerfile, tmp_path) == "golden:python-builder/Dockerfile"
    assert report.display_path(dockerfile, ROOT) == "golden:python-builder/Dockerfile"
    assert report.display_path(ROOT / "images" / "proxy" / "Dockerfile", ROOT) == "images/proxy/Dockerfile"


def test_lint_leaves_out_golden_definitions_installed_outside_the_project_and_says_so(tmp_path: Path) -> None:
    # An adopting repository cannot edit the package's Dockerfiles: their findings are the package's, so the
    # verdict covers the project's own files and names what it left out.
    from pipelines.lint import targets_from_config

    cfg = config.load(project(tmp_path, RUNTIME))
    assert [t.display for t in targets_from_config(cfg)[0]] == ["services/web/Dockerfile"]
    r = run_cli_outcome("--config", str(tmp_path / "pipeline.toml"), "lint", "--format", "json", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    out = json.loads(r.stdout)
    assert not any(f["file"].startswith("golden:") for f in out["findings"]), out["findings"]
    assert any(
        "not examined: the golden definitions shipped with the package (python-runtime)" in n for n in out["notices"]
    ), out["notices"]


def test_in_the_packages_own_checkout_the_golden_definitions_are_linted() -> None:
    from pipelines.lint import targets_from_config

    shown = [t.display for t in targets_from_config(config.load(ROOT / "pipeline.toml"))[0]]
    assert {"golden:python-builder/Dockerfile", "golden:python-runtime/Dockerfile"} <= set(shown)


def test_the_input_hash_of_a_golden_image_does_not_depend_on_where_the_package_is(tmp_path: Path) -> None:
    cfg = config.load(project(tmp_path, RUNTIME))
    runtime = cfg.images["python-runtime"]
    assert runtime.context is not None
    elsewhere = tmp_path / "site-packages" / "pipelines" / "golden" / "python-runtime"
    shutil.copytree(runtime.context, elsewhere, ignore=shutil.ignore_patterns("__pycache__"))
    # An installer compiles the .py files it installs: bytecode is no input.
    (elsewhere / "__pycache__").mkdir()
    (elsewhere / "__pycache__" / "assemble.cpython-311.pyc").write_bytes(b"\0")
    moved = replace(runtime, context=elsewhere, dockerfile=elsewhere / "Dockerfile")
    refs = {"debian-bookworm": "127.0.0.1:5000/debian-bookworm@sha256:" + "0" * 64}
    assert build.input_hash(moved, refs) == build.input_hash(runtime, refs)
    (elsewhere / "drop.txt").write_text("changed\n")
    assert build.input_hash(moved, refs) != build.input_hash(runtime, refs)


def test_init_writes_a_commented_golden_example_that_is_valid_once_uncommented(tmp_path: Path) -> None:
    assert all(line.startswith("# ") for line in write.GOLDEN_EXAMPLE)
    tables = [line[2:] for line in write.GOLDEN_EXAMPLE if line.startswith(("# [images.", "# golden = "))]
    assert tables, write.GOLDEN_EXAMPLE
    cfg = config.load(project(tmp_path, "\n".join(tables) + "\n"))
    assert {i.golden for i in cfg.bases} == {"debian-bookworm", "python-builder", "python-runtime"}


# --------------------------------------------------------------------------- the package carries them


def _copy_source(dest: Path) -> Path:
    """What building the distribution reads, without this checkout's build leftovers."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _python_with(tmp_path: Path, *modules: str) -> str:
    """A Python with ``modules`` importable: this one, or a fresh venv from the interpreter's own bundled wheels."""
    if all(importlib.util.find_spec(m) is not None for m in modules):
        return sys.executable
    venv = tmp_path / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300, check=False
    )
    python = venv / "bin" / "python"
    probe = f"import {', '.join(modules)}"
    if made.returncode != 0 or subprocess.run([python, "-c", probe], timeout=60, check=False).returncode != 0:
        why = f"no Python with {', '.join(modules)} without the network (venv: {made.stderr.strip()[-200:]})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {why}")
        pytest.skip(why)
    return str(python)


def test_the_built_package_carries_every_golden_file(tmp_path: Path) -> None:
    """What a wheel packs (setuptools' build_py, no build isolation) and the sdist hold every golden file."""
    src = _copy_source(tmp_path / "src")
    python = _python_with(tmp_path, "setuptools")
    lib, dist = tmp_path / "lib", tmp_path / "dist"
    code = "import sys, setuptools; setuptools.setup(script_args=['-q', 'build_py', '--build-lib', sys.argv[1]])"
    r = subprocess.run([python, "-c", code, str(lib)], cwd=src, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    code = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    r = subprocess.run([python, "-c", code, str(dist)], cwd=src, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    sdist = dist / r.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        in_sdist = {"/".join(n.split("/")[1:]) for n in tar.getnames()}
    files = golden_files()
    assert "pipelines/golden/catalog.toml" in files and "pipelines/golden/python-runtime/.dockerignore" in files
    assert [f for f in files if not (lib / f).is_file()] == []
    assert [f for f in files if f not in in_sdist] == []


def test_the_wheel_carries_every_golden_file(tmp_path: Path, network: None) -> None:
    """The real wheel, built in isolation as pip builds it (setuptools from the package index)."""
    src = _copy_source(tmp_path / "src")
    python = _python_with(tmp_path, "pip")
    out = tmp_path / "wheels"
    r = subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = out.glob("hardened_pipelines-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert [f for f in golden_files() if f not in names] == []


# --------------------------------------------------------------------------- one runtime definition for every Python


def _assemble() -> Any:
    spec = importlib.util.spec_from_file_location("assemble", golden.HERE / "python-runtime" / "assemble.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runtime_definition_names_no_python_version() -> None:
    folder = golden.HERE / "python-runtime"
    for name in ("assemble.py", "drop.txt", "Dockerfile"):
        code = [line.split("#", 1)[0] for line in (folder / name).read_text().splitlines()]
        assert not [line for line in code if re.search(r"python3\.\d|cpython-3\d", line)], name


@pytest.mark.parametrize("version", ["3.11", "3.13", "3.14"])
def test_drop_list_patterns_follow_the_stdlib_of_the_python_assembling(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assemble = _assemble()
    monkeypatch.setattr(assemble, "STDLIB", f"/usr/lib/python{version}/")
    drop = assemble.stdlib_patterns(assemble.read_list(golden.HERE / "python-runtime" / "drop.txt"))
    assert not [p for p in drop if "{" in p]
    stdlib = f"/usr/lib/python{version}"
    assert assemble.dropped(f"{stdlib}/test/test_os.py", drop)
    tag = version.replace(".", "")
    assert assemble.dropped(f"{stdlib}/lib-dynload/_sqlite3.cpython-{tag}-x86_64-linux-gnu.so", drop)
    assert not assemble.dropped(f"{stdlib}/json/__init__.py", drop)
    # Another version's files are none of this one's: the list does not reach past its own stdlib.
    assert not assemble.dropped("/usr/lib/python3.9/test/test_os.py", drop)
    # The running interpreter is the one assembled: its stdlib and bytecode tag.
    assert sysconfig.get_paths()["stdlib"].rstrip("/") + "/" == _assemble().STDLIB


def test_a_rootfs_of_the_configs_own_on_testing_is_said_too(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        """
        [images.mine]
        kind = "rootfs"
        suite = "forky"
        [images.python-runtime]
        golden = "python-runtime"
        bases = { BASE_IMAGE = "mine" }
        """,
    )
    cfg = config.load(path)
    assert {n: (i.debian_suite, i.debian_status) for n, i in cfg.images.items()} == {
        "mine": ("forky", "testing"),
        "python-runtime": ("forky", "testing"),
        "web": ("forky", "testing"),
    }
    assert cfg.golden_notices()[0].startswith("mine, python-runtime, web: Debian forky is Debian testing")
    with pytest.raises(ConfigError, match=r"images\.mine\.python: unknown key"):
        config.load(project(tmp_path, '[images.mine]\nkind = "rootfs"\npython = "3.13"\n' + RUNTIME))
