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
