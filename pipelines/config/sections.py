"""The small sections: [project], [registry], [build], [lint], [compose] and [verify]."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .. import inputs, refs
from ..findings import Severity
from . import paths
from .images import Image
from .model import (
    CACHE_BACKENDS,
    DAY,
    MAX_PARALLEL,
    PROGRESS_MODES,
    BuildSettings,
    ComposeSettings,
    LintSettings,
    Project,
    Registry,
    VerifyRun,
    VerifySettings,
)
from .table import Table


def project(t: Table, root: Path) -> Project:
    name = t.string("name", required=True)
    if not name.strip():
        raise t.error("name", "must not be empty")
    artifacts = paths.inside(t, "artifacts", t.string("artifacts", "artifacts"), root)
    inputs.check_output_dir(artifacts, t.file, "project.artifacts")
    lock = paths.inside(t, "lock", t.string("lock", "pipeline.lock.json"), root)
    if lock.exists() and not lock.is_file():
        raise t.error("lock", f"{lock} exists and is not a file")
    out = Project(
        name=name,
        version=t.string("version", "0.0.0"),
        source=t.string("source", ""),
        artifacts=artifacts,
        lock=lock,
    )
    t.done()
    return out


def registry(t: Table) -> Registry:
    address = t.string("address", required=True)
    if problem := refs.address_problem(address):
        raise t.error("address", problem)
    namespace = t.string("namespace", "")
    if namespace and (problem := refs.repository_problem(namespace)):
        raise t.error("namespace", problem)
    out = Registry(address=address, namespace=namespace)
    t.done()
    return out


def build(t: Table, root: Path) -> BuildSettings:
    ca = t.opt_string("ca_bundle")
    ca_path = None
    if ca:
        ca_path = (root / ca).resolve()
        if not ca_path.is_file():
            raise t.error("ca_bundle", f"file {ca_path} does not exist")
    out = BuildSettings(
        cache=t.choice("cache", CACHE_BACKENDS, "auto"),
        ca_bundle=ca_path,
        parallel=t.integer("parallel", 2, minimum=1, maximum=MAX_PARALLEL),
        progress=t.choice("progress", PROGRESS_MODES, "auto"),
        timeout=t.integer("timeout", 1800, minimum=1, maximum=DAY),
        cache_dir=root / t.string("cache_dir", ".pipelines/cache"),
    )
    t.done()
    return out


def lint(t: Table, root: Path) -> LintSettings:
    threshold = t.choice("threshold", ("error", "warning", "info", "style"), "warning")
    hadolint_explicit = "hadolint_config" in t.data
    hadolint_cfg = paths.inside(t, "hadolint_config", t.string("hadolint_config", ".hadolint.yaml"), root)
    if hadolint_cfg.exists() and not hadolint_cfg.is_file():
        raise t.error("hadolint_config", f"{hadolint_cfg} is not a file")
    if hadolint_explicit and not hadolint_cfg.exists():
        raise t.error("hadolint_config", f"file {hadolint_cfg} does not exist")
    out = LintSettings(
        threshold=Severity.parse(threshold),
        waivers=paths.inside(t, "waivers", t.string("waivers", "security/waivers.yaml"), root),
        hadolint_config=hadolint_cfg if hadolint_cfg.is_file() else None,
        waiver_max_days=t.integer("waiver_max_days", 90, minimum=1, maximum=3650),
        require_labels=t.boolean("require_labels", False),
        baseline=paths.inside(t, "baseline", t.string("baseline", "security/baseline.json"), root),
        baseline_days=t.integer("baseline_days", 90, minimum=1, maximum=3650),
    )
    t.done()
    return out


def compose(t: Table, root: Path) -> ComposeSettings:
    env_file = t.opt_string("env_file")
    out = ComposeSettings(
        files=paths.files(t, "files", root), env_file=paths.inside(t, "env_file", env_file, root) if env_file else None
    )
    t.done()
    return out


def verify(t: Table, images: Mapping[str, Image]) -> VerifySettings:
    stack_only = t.strings("stack_only")
    for n in stack_only:
        if n not in images:
            raise t.error("stack_only", f"{n!r} names no image or service")
    writable = t.strings("writable_paths") or VerifySettings.writable_paths
    for w in writable:
        if not w.startswith("/"):
            raise t.error("writable_paths", f"{w!r} is not an absolute path")
    runs = {}
    for name, rt in t.tables("run"):
        if name not in images:
            raise rt.error("", f"{name!r} names no image or service")
        tmpfs = rt.strings("tmpfs")
        if any(not p.startswith("/") for p in tmpfs):
            raise rt.error("tmpfs", "every entry must be an absolute path")
        runs[name] = VerifyRun(tmpfs=tmpfs, environment=rt.string_map("environment"))
        rt.done()
    out = VerifySettings(
        health_deadline=t.integer("health_deadline", 60, minimum=1),
        stack_only=stack_only,
        memory_mb=t.integer("memory_mb", 256, minimum=16),
        pids=t.integer("pids", 128, minimum=8),
        writable_paths=writable,
        run=runs,
    )
    t.done()
    return out
