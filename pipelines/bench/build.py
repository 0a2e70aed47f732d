"""The build benchmark: cold, unchanged and one-line-change builds, and the images' sizes."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from .. import build
from ..config import Config
from ..engine import Engine
from ..errors import ConfigError
from ..report import markdown_table
from ..result import Context, Result
from ..tools import Toolchain
from .report import MB, bench_json, check, checks_md, now, result, write_files


def timed_build(cfg: Config, tools: Toolchain, opts: build.Options) -> tuple[float, build.Report]:
    start = time.monotonic()
    rep = build.build_images(cfg, opts, tools)
    return round(time.monotonic() - start, 2), rep


def _changed_file(cfg: Config, service: str | None) -> Path:
    name = service or cfg.bench.change_service or cfg.services[0].name
    img = cfg.images.get(name)
    if img is None or img.is_base or img.context is None:
        raise ConfigError(str(cfg.file), "bench.change_service", f"{name!r} is not a service")
    sources = sorted(p for p in img.context.rglob("*.py") if "__pycache__" not in p.parts)
    if not sources:
        raise ConfigError(str(cfg.file), f"services.{name}.context", "has no .py file to change for the benchmark")
    return sources[0]


def target_service(cfg: Config, changed: Path) -> str:
    return next(s.name for s in cfg.services if s.context is not None and changed.is_relative_to(s.context))


def layers(tools: Toolchain, ref: str) -> list[str]:
    with Engine.connect() as engine:
        return list(engine.image(ref).layers)


def image_size(tools: Toolchain, ref: str) -> int:
    with Engine.connect() as engine:
        return engine.image(ref).size


def run_build(
    ctx: Context,
    *,
    env: str | None = None,
    service: str | None = None,
    out: Path | None = None,
    skip_cold: bool = False,
) -> Result:
    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    target = _changed_file(cfg, service)
    results: dict[str, object] = {
        "when": now(),
        "machine": {
            "cpus": os.cpu_count() or 0,
            "python": platform.python_version(),
            "engine": tools.engine_version,
            "buildx": tools.buildx_version,
        },
    }
    timings: dict[str, float] = {}
    if not skip_cold:
        # Cold: no layer cache and base images rebuilt from debootstrap up.
        # BuildKit's cache mounts (apt and pip downloads) are not layer cache
        # and stay warm; `docker builder prune -af` first for a network-cold number.
        timings["cold"], _ = timed_build(cfg, tools, build.Options(env=env, no_cache=True, rebuild_bases=True))
    timings["no_change"], before = timed_build(cfg, tools, build.Options(env=env))
    original = target.read_bytes()
    try:
        target.write_bytes(original + f"\n# bench {time.time_ns()}\n".encode())
        timings["one_line_change"], rep = timed_build(cfg, tools, build.Options(env=env))
    finally:
        target.write_bytes(original)
    results["timings_s"] = timings
    results["changed_file"] = str(target.relative_to(cfg.root))
    changed = target_service(cfg, target)
    # A fast "rebuild" that reused the old image measured nothing: prove the
    # change reached the image. Layer digests, not image IDs: BuildKit stamps
    # the config with the build time, so IDs differ even when nothing changed.
    rebuilt = layers(tools, before.images[changed].image_id) != layers(tools, rep.images[changed].image_id)
    sizes = {name: image_size(tools, b.image_id or b.ref) for name, b in rep.images.items()}
    results["sizes_mb"] = {n: round(s / MB, 1) for n, s in sizes.items()}

    checks = [check(f"one-line change produced a new {changed} image", "yes" if rebuilt else "no", "yes", rebuilt)]
    if "cold" in timings:
        ratio = timings["one_line_change"] / timings["cold"]
        checks.append(
            check(
                "one-line change rebuild / cold build",
                f"{ratio:.1%}",
                f"<= {cfg.bench.max_rebuild_ratio:.0%}",
                ratio <= cfg.bench.max_rebuild_ratio,
            )
        )
    for name, budget in cfg.bench.size_budgets_mb.items():
        mb = sizes[name] / MB if name in sizes else float("nan")
        checks.append(check(f"{name} image size", f"{mb:.1f} MB", f"<= {budget} MB", mb <= budget))
    res = result("build", out, results, checks)
    write(out, res)
    return res


def write(out: Path, res: Result) -> None:
    results = bench_json(res)
    timings = results["timings_s"]
    sizes = results["sizes_mb"]
    machine = results["machine"]
    if not (isinstance(timings, dict) and isinstance(sizes, dict) and isinstance(machine, dict)):
        raise TypeError("bench results lack their timings, sizes or machine")
    md = [
        f"## Build benchmark ({results['when']})",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        f"One-line change: `{results['changed_file']}`",
        "",
        markdown_table(["build", "wall time"], [[k.replace("_", " "), f"{v:.1f} s"] for k, v in timings.items()]),
        "",
        markdown_table(["image", "size"], [[k, f"{v:.1f} MB"] for k, v in sizes.items()]),
        "",
        checks_md(res.checks),
    ]
    write_files(out, res, "\n".join(md))
