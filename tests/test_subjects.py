"""A verdict's subject is what was examined: recorded images by ID or digest, never through a movable tag.

The engine test moves a recorded build's local tag to another image (what
`docker tag OTHER REPO:TAG` does between `build` and `scan`) and checks that
scan, verify and smoke refuse to examine anything, naming both image IDs.
The unit tests hold Trivy's answer to the image it was asked about, and the
build's tags to what they name.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines import _proc, build, gitinfo, manifest, scan
from pipelines.config import Config
from pipelines.errors import ScanError
from pipelines.gitinfo import GitInfo
from pipelines.trivyresult import read_result
from tests.harness import docker, run_cli

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


# --------------------------------------------------------------------------- the tag swap, on the real engine


@pytest.fixture
def current(built: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """The dev build as recorded now: other tests rebuild dev (a refreshed base moves every service), so the
    session's first record (``built``) may name images the tags no longer do."""
    return dict(json.loads((cfg.project.artifacts / "build" / "dev.json").read_text()))


@pytest.mark.exclusive("dev", "reports")  # it moves a dev tag for a while; scan and verify write `latest`
@pytest.mark.parametrize("stage", ["scan", "verify", "smoke"])
def test_a_moved_local_tag_is_refused_naming_both_image_ids(current: dict[str, Any], stage: str) -> None:
    services = [i for i in current["images"].values() if i["kind"] == "service" and not i["pushed"]]
    # The api: the dev stack runs it (smoke's Compose would take it by tag), and it is the example.
    victim = next((i for i in services if i["name"] == "api"), services[0])
    other = next(i for i in services if i["image_id"] != victim["image_id"])
    tag, recorded, moved = victim["tags"][0], victim["image_id"], other["image_id"]
    assert docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip() == recorded
    docker("tag", moved, tag)
    try:
        r = run_cli(stage, "--env", "dev", timeout=900)
    finally:
        # Other tests (and the other stages here) rely on the tag naming the build's image.
        docker("tag", recorded, tag)
    out = r.stdout + r.stderr
    assert r.returncode == 2, f"{stage} exited {r.returncode}, not 2:\n{out[-4000:]}"
    assert recorded in out and moved in out, out[-4000:]
    assert tag in out, out[-4000:]
    assert docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip() == recorded


def test_smokes_verdict_names_exactly_the_images_its_stack_ran(current: dict[str, Any], cfg: Config) -> None:
    r = run_cli("smoke", "--env", "dev", timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    verdict = json.loads((cfg.project.artifacts / "verdicts" / "dev" / "smoke.json").read_text())
    # The dev stack (compose.yaml + compose.dev.yaml) runs postgres, api and ingestion; the proxy is
    # built for every environment but only compose.prod.yaml runs it.
    ran = {"postgres", "api", "ingestion"}
    assert "proxy" in current["images"]
    assert set(verdict["subjects"]) == ran
    assert all(verdict["subjects"][n] == current["images"][n]["image_id"] for n in ran)


def test_a_pushed_image_is_examined_by_digest_whatever_its_local_tag_names(current: dict[str, Any]) -> None:
    # A docker-container builder pushes without loading: the local tag may still name an older `--load`.
    base = next(i for i in current["images"].values() if i["pushed"] and "@" in i["ref"])
    pushed_id = docker("image", "inspect", "--format", "{{.Id}}", base["ref"]).stdout.strip()
    stale = next(i for i in current["images"].values() if i["tags"] and i["image_id"] != pushed_id)
    # Recorded as a pushed build whose local tag names another (older) image.
    img = manifest.BuiltImage.model_validate({**base, "image_id": pushed_id, "tags": [stale["tags"][0]]})
    from pipelines import subjects
    from pipelines.engine import Engine

    with Engine.connect() as engine:
        got = subjects.resolve(engine, img)
        assert got.image_id == pushed_id and got.ref == pushed_id and got.source == base["ref"]
        # A record whose pushed digest is another image than it says is refused, naming both.
        wrong = manifest.BuiltImage.model_validate({**base, "image_id": stale["image_id"]})
        with pytest.raises(subjects.SubjectMismatch) as exc:
            subjects.resolve(engine, wrong)
    assert pushed_id in exc.value.render() and stale["image_id"] in exc.value.render()


def test_a_loaded_image_whose_recorded_id_is_gone_is_refused(current: dict[str, Any]) -> None:
    service = next(i for i in current["images"].values() if i["kind"] == "service" and not i["pushed"])
    img = manifest.BuiltImage.model_validate({**service, "image_id": ID_A})
    from pipelines import subjects
    from pipelines.engine import Engine

    with Engine.connect() as engine, pytest.raises(subjects.SubjectMismatch) as exc:
        subjects.resolve(engine, img)
    assert ID_A in exc.value.render() and service["image_id"] in exc.value.render()
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("pushed", [True, False])
def test_a_record_without_an_image_id_is_refused_before_the_engine_is_asked(pushed: bool) -> None:
    from pipelines import subjects

    ref = "127.0.0.1:5000/pipelines/api@sha256:" + "d" * 64 if pushed else "pipelines/api:git-0123456789ab-dev"
    img = manifest.BuiltImage(
        name="api", kind="service", ref=ref, tags=() if pushed else (ref,), image_id="",
        digest="sha256:" + "d" * 64 if pushed else "", seconds=0.0, pushed=pushed,
    )  # fmt: skip
    # No engine is given: an image the record names no ID for is refused whatever the engine would say.
    with pytest.raises(subjects.SubjectMismatch) as exc:
        subjects.resolve(None, img)  # type: ignore[arg-type]
    assert exc.value.exit_code == 2
    assert "api" in exc.value.render() and "no image ID" in exc.value.render()
    # Only a base reused from the lock goes by the lock's digest alone; a base this build made has its ID too.
    base = img.model_copy(update={"kind": "base"})
    with pytest.raises(subjects.SubjectMismatch, match="no image ID"):
        subjects.resolve(None, base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Trivy's answer, held to the question


def trivy_report(image_id: str, *, results: Any = None, os_family: str | None = "debian") -> dict[str, Any]:
    meta: dict[str, Any] = {"ImageID": image_id, "DiffIDs": ["sha256:" + "c" * 64]}
    if os_family:
        meta["OS"] = {"Family": os_family, "Name": "12.15"}
    data: dict[str, Any] = {"SchemaVersion": 2, "ArtifactName": "/tmp/x.tar", "ArtifactType": "container_image"}
    data["Metadata"] = meta
    if results is not None:
        data["Results"] = results
    return data


OS_PKGS = [{"Target": "x.tar (debian 12.15)", "Class": "os-pkgs", "Type": "debian", "Packages": [{"Name": "libc6"}]}]


def test_trivy_reporting_another_image_id_is_an_error_naming_both() -> None:
    with pytest.raises(ScanError) as exc:
        scan.check_image_result(trivy_report(ID_B, results=OS_PKGS), "api", ID_A)
    text = exc.value.render()
    assert ID_A in text and ID_B in text and exc.value.exit_code == 2


def test_trivy_reporting_no_image_id_is_an_error() -> None:
    data = trivy_report(ID_A, results=OS_PKGS)
    del data["Metadata"]["ImageID"]
    with pytest.raises(ScanError, match="image ID"):
        scan.check_image_result(data, "api", ID_A)


@pytest.mark.parametrize(
    "results",
    [
        None,
        [],
        [{"Target": "x.tar (debian 12.15)", "Class": "os-pkgs"}],
        # Python packages listed beside an OS whose packages were not: the OS was still never read.
        [{"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg", "Packages": [{"Name": "fastapi"}]}],
    ],
)
def test_an_image_with_an_os_but_no_packages_listed_is_an_error_not_a_clean_scan(results: Any) -> None:
    with pytest.raises(ScanError, match="no packages"):
        scan.check_image_result(trivy_report(ID_A, results=results), "api", ID_A)


def test_an_image_whose_dpkg_database_lists_packages_trivy_did_not_list_is_an_error() -> None:
    # Trivy did not even recognise the OS: only the image's own dpkg database says there are packages.
    with pytest.raises(ScanError, match="dpkg database of api lists 88 packages"):
        scan.check_image_result(trivy_report(ID_A, results=None, os_family=None), "api", ID_A, dpkg_packages=88)
    scan.check_image_result(trivy_report(ID_A, results=OS_PKGS), "api", ID_A, dpkg_packages=88)


def test_the_checked_result_of_the_asked_image_passes() -> None:
    scan.check_image_result(trivy_report(ID_A, results=OS_PKGS), "api", ID_A)
    # An image with no OS and no packages (FROM scratch, one static binary) has nothing to list.
    scan.check_image_result(trivy_report(ID_A, results=None, os_family=None), "static", ID_A)


def test_a_non_zero_trivy_exit_is_an_error_even_with_a_json_file(tmp_path: Path) -> None:
    raw = tmp_path / "api.trivy.json"
    raw.write_text(json.dumps(trivy_report(ID_A, results=OS_PKGS)))
    failed = _proc.Result(("trivy", "image"), 1, "", "FATAL scan error: analyzer failed", 1.0)
    with pytest.raises(ScanError) as exc:
        read_result(raw, "trivy image api", failed)
    assert "exit 1" in exc.value.render() and "analyzer failed" in exc.value.render()
    assert read_result(raw, "trivy image api", _proc.Result((), 0, "", "", 0.0))["Metadata"]["ImageID"] == ID_A


# --------------------------------------------------------------------------- tags unique to what they name


def test_two_environments_of_one_commit_get_different_tags(cfg: Config) -> None:
    git = GitInfo("0123456789abcdef0123456789abcdef01234567", False, 0)
    api = next(i for i in cfg.images.values() if not i.is_base)
    dev = build.service_tags(cfg, api, cfg.env("dev"), git)[0]
    staging = build.service_tags(cfg, api, cfg.env("staging"), git)[0]
    assert dev != staging
    assert dev.endswith(":git-0123456789ab-dev") and staging.endswith(":git-0123456789ab-staging")


def _repo(path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, timeout=30)

    path.mkdir()
    git("init", "-q")
    git("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    (path / "app.py").write_text("print('one')\n")
    git("add", "app.py")
    git("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-q", "-m", "app")


def test_two_dirty_trees_of_one_commit_get_different_tags(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _repo(first)
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True, capture_output=True, timeout=30)
    clean = gitinfo.read(first, {})
    assert not clean.dirty and clean.tag("dev") == f"git-{clean.short}-dev"
    (first / "app.py").write_text("print('two')\n")
    (second / "app.py").write_text("print('three')\n")
    a, b = gitinfo.read(first, {}), gitinfo.read(second, {})
    assert a.commit == b.commit and a.dirty and b.dirty
    assert a.tag("dev") != b.tag("dev")
    assert a.tag("dev").startswith(f"git-{a.short}-dev-dirty-")
    # The same change is the same tag: an unchanged rebuild does not pile up tags.
    (second / "app.py").write_text("print('two')\n")
    assert gitinfo.read(second, {}).tag("dev") == a.tag("dev")


def test_tags_are_valid_docker_tags_for_the_longest_environment_name() -> None:
    git = GitInfo("0123456789abcdef0123456789abcdef01234567", True, 0, "d" * 12)
    tag = git.tag("e" * 63)
    assert len(tag) <= 128 and tag.replace("-", "").isalnum()
    assert GitInfo("unknown", True, 0).tag("dev") == "nogit-dev"


def test_a_container_is_held_to_the_image_it_was_meant_to_run(
    current: dict[str, Any], container_names: list[str]
) -> None:
    services = [i for i in current["images"].values() if i["kind"] == "service" and i["image_id"]]
    ran, other = (
        services[0]["image_id"],
        next(i["image_id"] for i in services if i["image_id"] != services[0]["image_id"]),
    )
    name = f"pipelines-test-subject-{os.getpid()}"
    container_names.append(name)
    docker("create", "--name", name, "--network", "none", ran)
    from pipelines import subjects
    from pipelines.engine import Engine

    with Engine.connect() as engine:
        subjects.check_container(engine, name, ran, "test")
        with pytest.raises(subjects.SubjectMismatch) as exc:
            subjects.check_container(engine, name, other, "test")
    assert ran in exc.value.render() and other in exc.value.render()
