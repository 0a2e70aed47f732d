"""Many services: cold builds of 1 to 10 copies of one service, one bake against one build each."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from .. import _proc, build
from ..config import Config, Image
from ..errors import ConfigError, GateFailed
from ..report import markdown_table
from ..result import Check, Context, Result
from ..tools import Toolchain
from .build import timed_build
from .report import check, checks_md, now, result, write_files

FLEET_SIZES = (1, 2, 5, 10)
FLEET_TARGET_RATIO = 2.5  # ten services cold within 2.5x the time of two


def fleet_config(cfg: Config, root: Path, count: int, tag: str) -> Config:
    """cfg with its services replaced by `count` copies of the benchmark service.

    Each copy gets its own context under root (same requirements, one source
    file of its own, so no two images are equal) and its own repository name;
    the bases and their lock are the project's, so they are reused, not built.
    """
    name = cfg.bench.change_service or cfg.services[0].name
    src = cfg.images.get(name)
    if src is None or src.is_base or src.context is None or src.dockerfile is None:
        raise ConfigError(str(cfg.file), "bench.change_service", f"{name!r} is not a service with a Dockerfile")
    lock = root / "pipeline.lock.json"
    if cfg.project.lock.is_file():
        shutil.copy2(cfg.project.lock, lock)
    images: dict[str, Image] = {b.name: b for b in cfg.bases}
    for k in range(1, count + 1):
        ctx = root / f"{tag}-{k}"
        if not ctx.exists():
            shutil.copytree(src.context, ctx, ignore=shutil.ignore_patterns("__pycache__"))
            first = sorted(p for p in ctx.rglob("*.py"))
            if first:
                first[0].write_text(first[0].read_text() + f"\n# fleet service {k}\n")
        svc = replace(
            src,
            name=f"{tag}-{k}",
            image=f"{tag}-{k}",
            context=ctx,
            dockerfile=ctx / src.dockerfile.relative_to(src.context),
        )
        images[svc.name] = svc
    project = replace(cfg.project, artifacts=root / "artifacts", lock=lock)
    return replace(cfg, images=images, project=project)


def _remove_images(tools: Toolchain, rep: build.Report) -> None:
    refs = [t for b in rep.images.values() if b.kind == "service" for t in b.tags]
    if refs:
        _proc.run([tools.docker, "image", "rm", "--force", *refs], timeout=300, check=False, quiet=True)


def run_fleet(
    ctx: Context,
    *,
    env: str | None = None,
    out: Path | None = None,
    sizes: tuple[int, ...] = FLEET_SIZES,
) -> Result:
    """Cold builds of 1, 2, 5 and 10 services from the same bases: one bake per level against one build each.

    Cold means no layer cache for the service stages (--no-cache); the bases
    are the project's, already built. Every image is removed afterwards.
    """
    import tempfile

    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    env_name = cfg.env(env).name
    if cfg.env(env).push:
        raise ConfigError(str(cfg.file), f"environments.{env_name}.push", "the fleet benchmark builds locally only")
    tag = f"bench-fleet-{os.getpid()}"
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="pipelines-fleet-") as tmp:
        for n in sizes:
            fleet = fleet_config(cfg, Path(tmp), n, tag)
            row: dict[str, object] = {"services": n}
            for mode, bake in (("bake", True), ("per_image", False)):
                load = os.getloadavg()[0]
                secs, rep = timed_build(fleet, tools, build.Options(env=env_name, no_cache=True, bake=bake))
                built = [b for b in rep.images.values() if b.kind == "service"]
                if len(built) != n or not all(b.image_id.startswith("sha256:") for b in built):
                    raise GateFailed(f"fleet of {n}: {len(built)} service images recorded, {n} expected")
                row[f"{mode}_s"] = secs
                row[f"{mode}_load"] = round(load, 1)
                _remove_images(tools, rep)
            rows.append(row)
            ctx.log(f"fleet: {row}")
    by_n = {int(str(r["services"])): r for r in rows}
    checks: list[Check] = []
    if 2 in by_n and 10 in by_n:
        for mode in ("bake", "per_image"):
            ratio = float(str(by_n[10][f"{mode}_s"])) / float(str(by_n[2][f"{mode}_s"]))
            checks.append(
                check(
                    f"10 services / 2 services, cold ({mode.replace('_', ' ')})",
                    f"{ratio:.2f}x",
                    f"<= {FLEET_TARGET_RATIO}x",
                    ratio <= FLEET_TARGET_RATIO,
                    # One build each is the comparison; only the bake is held to the target.
                    gate=mode == "bake",
                )
            )
    results: dict[str, object] = {
        "when": now(),
        "machine": {"cpus": os.cpu_count() or 0, "engine": tools.engine_version, "buildx": tools.buildx_version},
        "builder": f"{tools.builder.name} ({tools.builder.driver}, BuildKit {tools.builder.buildkit})",
        "rows": rows,
    }
    res = result("fleet", out, results, checks)
    md = [
        f"## Many services, cold ({results['when']})",
        "",
        f"Builder: {results['builder']}; engine {tools.engine_version}; buildx {tools.buildx_version}",
        "",
        markdown_table(
            ["services", "one bake", "one build each", "load (bake / each)"],
            [
                [
                    str(r["services"]),
                    f"{r['bake_s']:.1f} s",
                    f"{r['per_image_s']:.1f} s",
                    f"{r['bake_load']} / {r['per_image_load']}",
                ]
                for r in rows
            ],
        ),
        "",
        checks_md(checks),
    ]
    write_files(out, res, "\n".join(md))
    return res
