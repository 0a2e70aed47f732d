"""The engine through docker-py, against the real engine and the images the pipeline built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.engine import Engine, ImageNotFound
from pipelines.errors import EngineUnavailable, InputError


@pytest.fixture(scope="module")
def engine(built: dict[str, Any]) -> Any:
    with Engine.connect() as e:
        yield e


def ref(built: dict[str, Any], name: str) -> str:
    image = built["images"][name]
    return str(image["tags"][0] if image["tags"] else image["ref"])


def test_inspect_reads_user_and_healthcheck(engine: Engine, built: dict[str, Any]) -> None:
    info = engine.image(ref(built, "api"))
    assert info.user == "65532:65532" or info.user.split(":")[0] == "65532", info.user
    assert info.healthcheck and info.healthcheck[0] == "CMD"
    assert info.layers and info.size > 0 and info.id.startswith("sha256:")
    assert engine.history(ref(built, "api"))


def test_files_come_out_of_an_image_without_running_it(engine: Engine, built: dict[str, Any]) -> None:
    files = engine.read_image_files(ref(built, "python-runtime"), ["/etc/passwd", "/var/lib/dpkg/status.d"])
    assert b"65532" in files["/etc/passwd"]
    status = [p for p in files if p.startswith("/var/lib/dpkg/status.d/")]
    assert status and any(b"Package: libc6" in files[p] for p in status)
    assert engine.read_image_files(ref(built, "python-runtime"), ["/no/such/file"]) == {}


def test_missing_images_and_hostile_references(engine: Engine) -> None:
    assert not engine.has_image("127.0.0.1:5000/nothing/here:never")
    with pytest.raises(ImageNotFound, match="not in the local engine"):
        engine.image("127.0.0.1:5000/nothing/here:never")
    for bad in ("--privileged", "", "a b"):
        with pytest.raises(InputError, match="not an image reference"):
            engine.image(bad)


def test_an_engine_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"does not answer|did not answer"):
        Engine.connect({"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}).version()
