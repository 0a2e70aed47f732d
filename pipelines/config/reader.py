"""Find ``pipeline.toml``, read it as TOML, and walk its sections in order into one :class:`Config`.

The ``PIPELINES_*`` variables that override some of its keys (:mod:`.variables`) are applied here, once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import inputs
from ..errors import ConfigError, ConfigNotFound
from . import environments, image_tables, release, scan, sections, stack_checks, variables
from .images import check_bases
from .model import Config
from .table import Table

DEFAULT_FILE = "pipeline.toml"


def find_config(start: Path | None = None) -> Path:
    """``pipeline.toml`` in ``start`` or the nearest parent directory."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / DEFAULT_FILE
        if candidate.is_file():
            return candidate
    raise ConfigNotFound(
        DEFAULT_FILE,
        "",
        f"not found in {here} or any parent directory",
        hint="run from the project directory or pass --config PATH",
    )


def load(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """The config in ``path`` with the ``PIPELINES_*`` overrides of ``environ`` (default: the process's)."""
    name = str(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(name, "", "file not found", hint="pass --config PATH or create pipeline.toml")
    text = inputs.read_text(path, name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(name, "", "is not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an impossible date such as 2026-02-30 (older tomllib)
        raise ConfigError(name, "", f"is not valid TOML: {exc}") from None
    if not data:
        raise ConfigError(name, "", "is empty", hint="a config needs at least [project], [registry] and a service")
    return parse(data, path, environ)


def _keys_set(data: Mapping[str, Any]) -> set[str]:
    """The key paths of the file that a variable may override, where it sets them (sources of the values)."""
    out = {"default_env"} & set(data)
    reg = data.get("registry")
    out |= {f"registry.{k}" for k in ("address", "namespace") if isinstance(reg, dict) and k in reg}
    envs = data.get("environments")
    for name, table in envs.items() if isinstance(envs, dict) else ():
        if isinstance(table, dict):
            out |= {f"environments.{name}.{k}" for k in ("registry", "namespace") if k in table}
    return out


def parse(data: Mapping[str, Any], path: Path, environ: Mapping[str, str] | None = None) -> Config:
    file = str(path)
    root = path.resolve().parent
    top = Table(file, "", data)

    project = sections.project(top.table("project", required=True), root)
    registry = sections.registry(top.table("registry", required=True))
    build = sections.build(top.table("build"), root)
    images = image_tables.read(top, root)
    check_bases(file, images)
    envs = environments.read(top, root, registry)
    default_env = top.string("default_env", next(iter(envs)))
    if default_env not in envs:
        raise top.error("default_env", f"names unknown environment {default_env!r}")
    effective = variables.apply(
        path, registry, envs, default_env, _keys_set(data), os.environ if environ is None else environ
    )
    registry, envs, default_env = effective.registry, effective.environments, effective.default_env
    bench = stack_checks.bench(top.table("bench"), images)
    lint = sections.lint(top.table("lint"), root)
    scan_settings = scan.scan(top.table("scan"), root)
    compose = sections.compose(top.table("compose"), root)
    smoke = stack_checks.smoke(top.table("smoke"), root, envs)
    load_settings = stack_checks.load(top.table("load")) if "load" in top.data else None
    verify = sections.verify(top.table("verify"), images)
    signing = release.signing(top.table("signing"), root)
    for e in envs.values():
        # Promotion and deploy read the coverage from the signed scan verdict: without attestations there is none.
        if e.require_full_coverage and not signing.attest:
            raise ConfigError(
                file,
                f"environments.{e.name}.require_full_coverage",
                "needs [signing].attest = true: the coverage is read from the signed scan verdict",
                hint="set [signing].attest = true, or drop require_full_coverage",
            )
    deploy = release.deploy(top.table("deploy"), root, project.artifacts, project.name)
    top.done()
    return Config(
        file=path,
        root=root,
        project=project,
        registry=registry,
        build=build,
        images=images,
        environments=envs,
        bench=bench,
        lint=lint,
        compose=compose,
        scan=scan_settings,
        default_env=default_env,
        smoke=smoke,
        load=load_settings,
        verify=verify,
        signing=signing,
        deploy=deploy,
        settings=effective.settings,
    )
