"""The typed build record: written by build, read and validated by every later stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import manifest
from pipelines.errors import EXIT_UNUSABLE, InputError, PipelineError


def record(env: str = "dev", **images: dict[str, object]) -> dict[str, object]:
    return {
        "env": env,
        "commit": "0" * 40,
        "dirty": False,
        "builder": "default (docker, BuildKit v0.13)",
        "cache": "inline",
        "started": "2026-11-24T00:00:00Z",
        "seconds": 1.5,
        "images": images,
    }


API = {
    "name": "api",
    "kind": "service",
    "ref": "127.0.0.1:5000/p/api:git-abc",
    "tags": ["127.0.0.1:5000/p/api:git-abc", "127.0.0.1:5000/p/api:dev"],
    "image_id": "sha256:1",
    "digest": "sha256:2",
    "seconds": 0.5,
}


def test_round_trip_and_queries(tmp_path: Path) -> None:
    rec = manifest.BuildRecord.model_validate(record(api=API, debian={**API, "name": "debian", "kind": "base"}))
    path = manifest.save(tmp_path, rec)
    loaded = manifest.load(tmp_path, "dev")
    assert loaded == rec and path == manifest.path(tmp_path, "dev")
    assert [i.name for i in loaded.services] == ["api"] and [i.name for i in loaded.bases] == ["debian"]
    assert loaded.image_tag() == "git-abc" and loaded.images["api"].local_ref.endswith(":git-abc")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no build of environment 'dev' is recorded"),
        ("{not json", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        (json.dumps(record(api={**API, "kind": "sidecar"})), "images.api.kind"),
        (json.dumps(record(api={**API, "extra": 1})), "images.api.extra"),
        (json.dumps({**record(), "seconds": "slow"}), "seconds"),
        (json.dumps(record(env="prod")), "records environment 'prod'"),
        (b"\xff\xfe\x00", "cannot be read"),
    ],
)
def test_bad_records_are_one_clear_error(tmp_path: Path, content: str | bytes | None, expected: str) -> None:
    path = manifest.path(tmp_path, "dev")
    path.parent.mkdir(parents=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(PipelineError) as err:
        manifest.load(tmp_path, "dev")
    assert expected in err.value.what and err.value.exit_code == EXIT_UNUSABLE
    assert "pipelines build --env dev" in (err.value.hint or "")


def test_a_build_without_one_commit_tag_is_refused() -> None:
    other = {**API, "name": "worker", "tags": ["r/worker:git-def"]}
    rec = manifest.BuildRecord.model_validate(record(api=API, worker=other))
    with pytest.raises(PipelineError, match="no single commit tag"):
        rec.image_tag()


def test_a_record_that_is_a_directory_is_an_input_error(tmp_path: Path) -> None:
    manifest.path(tmp_path, "dev").mkdir(parents=True)
    with pytest.raises(InputError, match="cannot be read"):
        manifest.load(tmp_path, "dev")


def test_a_record_says_each_images_python_and_debian_suite_and_older_ones_still_read(tmp_path: Path) -> None:
    forky = {**API, "name": "runtime", "kind": "base", "python": "3.14", "debian": "forky", "debian_status": "testing"}
    rec = manifest.BuildRecord.model_validate(record(api=API, runtime=forky))
    manifest.save(tmp_path, rec)
    loaded = manifest.load(tmp_path, "dev")
    runtime = loaded.images["runtime"]
    assert (runtime.python, runtime.debian, runtime.debian_status) == ("3.14", "forky", "testing")
    assert (loaded.images["api"].debian, loaded.images["api"].debian_status) == ("", "")
