"""The speed of the lint, scan and verify stages: warm (and cold) wall times against their targets."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from .. import _proc, manifest
from ..errors import GateFailed
from ..report import markdown_table
from ..result import Context, Result
from .report import bench_json, check, now, result, write_files

LINT_TARGET_S = 3.0


def run_lint(ctx: Context, *, out: Path | None = None, runs: int = 5) -> Result:
    """Warm wall time of `pipelines lint` over the whole project, as a user runs it."""
    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    argv = [sys.executable, "-m", "pipelines", "--config", str(cfg.file), "lint", "--format", "json"]
    # One warm-up run fills the OS page cache and Python's bytecode cache.
    _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
    times = []
    for _ in range(runs):
        start = time.monotonic()
        r = _proc.run(argv, timeout=120, check=False, quiet=True, cwd=cfg.root)
        times.append(round(time.monotonic() - start, 3))
        if r.returncode == 2:
            raise GateFailed("lint could not run during the benchmark", seen=_proc.tail(r.stderr, 10))
    files = len(json.loads(r.stdout)["files"])
    times.sort()
    median = times[len(times) // 2]
    data: dict[str, object] = {
        "when": now(),
        "files": files,
        "runs_s": times,
        "median_s": median,
        "target_s": LINT_TARGET_S,
    }
    res = result(
        "lint",
        out,
        data,
        [check("lint, warm (median)", f"{median:.2f} s", f"<= {LINT_TARGET_S:.0f} s", median <= LINT_TARGET_S)],
    )
    results = bench_json(res)
    md = "\n".join(
        [
            f"## Lint benchmark ({results['when']})",
            "",
            markdown_table(
                ["files", "runs", "min", "median", "max", "target"],
                [
                    [
                        str(files),
                        str(runs),
                        f"{times[0]:.2f} s",
                        f"{median:.2f} s",
                        f"{times[-1]:.2f} s",
                        f"<= {LINT_TARGET_S:.0f} s",
                    ]
                ],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res


SCAN_TARGET_S = 1.0  # warm scan of every service image, in total: unchanged images reuse their result


def run_scan(ctx: Context, *, env: str | None = None, out: Path | None = None, runs: int = 3) -> Result:
    """Wall time of scanning the configured images: cold (no DB cache) and warm."""
    from .. import scan

    cfg, tools = ctx.cfg, ctx.tools
    out = out or cfg.project.artifacts / "bench"
    e = cfg.env(env)
    record = manifest.load(cfg.project.artifacts, e.name)
    names = list(cfg.bench.scan_images) or [b.name for b in record.services]
    refs = [record.images[n].local_ref for n in names]
    # Cold: the offline database is rebuilt from its sources; Trivy has no cache.
    shutil.rmtree(cfg.scan_for(e.name).cache_dir, ignore_errors=True)
    start = time.monotonic()
    scan.analyse(cfg, tools, env=e.name, images=refs)
    cold = round(time.monotonic() - start, 2)
    warm_runs = []
    for _ in range(runs):
        start = time.monotonic()
        scan.analyse(cfg, tools, env=e.name, images=refs)
        warm_runs.append(round(time.monotonic() - start, 2))
    warm = sorted(warm_runs)[len(warm_runs) // 2]
    results: dict[str, object] = {
        "when": now(),
        "images": names,
        "cold_s": cold,
        "warm_runs_s": warm_runs,
        "warm_median_s": warm,
        "target_warm_s": SCAN_TARGET_S,
    }
    res = result(
        "scan",
        out,
        results,
        [check("scan, warm (median)", f"{warm:.1f} s", f"<= {SCAN_TARGET_S:g} s", warm <= SCAN_TARGET_S)],
    )
    md = "\n".join(
        [
            f"## Scan benchmark ({results['when']})",
            "",
            markdown_table(
                ["images", "cold", "warm (median of runs)", "target (warm)"],
                [[", ".join(names), f"{cold:.1f} s", f"{warm:.1f} s ({runs} runs)", f"<= {SCAN_TARGET_S:g} s"]],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res


VERIFY_TARGET_S = 3.0


def run_verify(ctx: Context, *, env: str | None = None, out: Path | None = None, runs: int = 3) -> Result:
    """Time of `pipelines verify` per image: cold (no cached filesystem index or secret scan) and warm.

    An image's own time to turn healthy is its start-up, not the stage's: the
    target (3 s per image, warm) is for what the stage adds around it.
    """
    from .. import verdicts, verify

    cfg = ctx.cfg
    out = out or cfg.project.artifacts / "bench"
    e = cfg.env(env)
    ctx.tools.engine_version  # noqa: B018 - the stage runs containers
    shutil.rmtree(cfg.project.artifacts / "verify" / "trees", ignore_errors=True)
    shutil.rmtree(cfg.project.artifacts / "verify" / "secrets", ignore_errors=True)

    def judged() -> Result:
        # A verify run here judges the build like any other: its verdict is recorded as the stage's own.
        r = verify.run(ctx, verify.Options(env=e.name))
        verdicts.conclude(ctx.artifacts, r)
        return r

    cold = judged()
    warm = [judged() for _ in range(runs)]

    def per_image(r: object) -> dict[str, dict[str, float]]:
        images = getattr(r, "data", {}).get("images", [])
        return {i["name"]: {"total": i["seconds"], "own": i["seconds"] - i["app_start_s"]} for i in images}

    cold_t = per_image(cold)
    warm_t = [per_image(r) for r in warm]
    rows = []
    for name in cold_t:
        totals = sorted(w[name]["total"] for w in warm_t)
        owns = sorted(w[name]["own"] for w in warm_t)
        rows.append(
            {
                "image": name,
                "cold_s": round(cold_t[name]["total"], 2),
                "warm_s": round(totals[len(totals) // 2], 2),
                "warm_stage_s": round(owns[len(owns) // 2], 2),
                "ok": owns[len(owns) // 2] <= VERIFY_TARGET_S,
            }
        )
    results: dict[str, object] = {
        "when": now(),
        "env": e.name,
        "checks_per_image": len(verify.CHECKS),
        "images": rows,
        "passed": cold.passed and all(r.passed for r in warm),
        "target_warm_stage_s": VERIFY_TARGET_S,
    }
    checks = [
        check(f"{r['image']}: verify, warm, stage only (median)", f"{r['warm_stage_s']:.1f} s",
              f"<= {VERIFY_TARGET_S:.0f} s", bool(r["ok"]))
        for r in rows
    ]  # fmt: skip
    res = result("verify", out, results, checks)
    md = "\n".join(
        [
            f"## Verify benchmark ({results['when']})",
            "",
            f'{len(verify.CHECKS)} checks per image; warm = median of {runs} runs. "stage" is the warm time minus '
            "the image's own start-up to healthy (and the stay-healthy and stop it is watched for).",
            "",
            markdown_table(
                ["image", "cold", "warm", "warm, stage only", "target"],
                [
                    [
                        str(r["image"]),
                        f"{r['cold_s']:.1f} s",
                        f"{r['warm_s']:.1f} s",
                        f"{r['warm_stage_s']:.1f} s",
                        f"<= {VERIFY_TARGET_S:.0f} s" + ("" if r["ok"] else " MISSED"),
                    ]
                    for r in rows
                ],
            ),
            "",
        ]
    )
    write_files(out, res, md)
    return res
