"""Benchmark helpers that need no engine: interval arithmetic and the throwaway fleet project."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import bench, config

from .conftest import ROOT


def test_union_counts_overlapping_intervals_once() -> None:
    assert bench._union([]) == 0
    assert bench._union([(0, 1), (0.5, 2), (3, 4)]) == 3
    assert bench._union([(0, 10), (1, 2), (3, 4)]) == 10
    assert bench._union([(5, 6), (0, 1)]) == 2


def test_fleet_config_copies_the_service_and_keeps_the_bases(tmp_path: Path) -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    fleet = bench.fleet_config(cfg, tmp_path, 3, "bench-fleet-t")
    services = fleet.services
    assert [s.name for s in services] == ["bench-fleet-t-1", "bench-fleet-t-2", "bench-fleet-t-3"]
    assert {s.image for s in services} == {s.name for s in services}
    assert {b.name for b in fleet.bases} == {b.name for b in cfg.bases}
    assert fleet.project.lock.parent == tmp_path and fleet.project.artifacts.parent == tmp_path
    if cfg.project.lock.is_file():
        assert json.loads(fleet.project.lock.read_text()) == json.loads(cfg.project.lock.read_text())
    src = cfg.images[cfg.bench.change_service or cfg.services[0].name]
    assert src.context is not None
    contents = []
    for s in services:
        assert s.context is not None and s.dockerfile is not None
        assert s.context.parent == tmp_path and s.dockerfile.is_file()
        assert (s.context / "requirements.txt").read_bytes() == (src.context / "requirements.txt").read_bytes()
        contents.append(b"".join(p.read_bytes() for p in sorted(s.context.rglob("*.py"))))
    # Each copy differs from the others (one source line of its own), so no two images are equal.
    assert len(set(contents)) == 3
    # A second call with more services reuses the contexts already there.
    assert len(bench.fleet_config(cfg, tmp_path, 4, "bench-fleet-t").services) == 4


def test_session_breakdown_of_a_recorded_pipeline_run() -> None:
    data = json.loads((ROOT / "tests" / "data" / "recorded" / "bench" / "pipeline-run.json").read_text())
    lines = [(float(t), str(line)) for t, line in data["lines"]]
    out = bench.session_breakdown(lines, data["records"], data["start"], data["wall"])
    rows = {r["session"]: r for r in out["sessions"]}  # type: ignore[union-attr]
    assert list(rows) == ["build", "scan", "verify", "smoke"]
    assert out["before_first_session_s"] == 0.14
    # Each session's time is its start-up, its tools and what lies between and after them; nothing is lost.
    for r in rows.values():
        assert r["wall_s"] >= r["in_tools_s"] > 0
        assert abs(r["wall_s"] - r["in_tools_s"] - r["outside_s"]) < 0.02
        assert r["outside_s"] >= r["start_up_s"] + r["after_last_tool_s"] - 0.02
    assert rows["smoke"]["up_to_healthy_s"] == 5.9 and "up_to_healthy_s" not in rows["verify"]
    assert rows["smoke"]["by_tool_s"]["docker compose"] > rows["smoke"]["by_tool_s"]["container wait"] > 0
    # The sessions cover the run between nox's first and last session lines.
    assert abs(sum(r["wall_s"] for r in rows.values()) - (31.403 - 0.139)) < 0.05
    assert "| 1 | smoke |" in bench.session_table([out])
