"""Which image a stage examines for a recorded build, proven to be the one the build record names.

Anyone with the engine can move a tag (`docker tag OTHER REPO:TAG`), and two
builds can write the same one, so no stage examines a recorded image through
a tag. An image the build loaded into the engine is examined by its image ID;
one it pushed, by the digest it was pushed as (pulled when the engine lacks
it: a docker-container builder pushes without loading, and its local tag may
still name whatever an older ``--load`` left there). The build's local tag of
a loaded image must name the recorded ID too: when it names another, the
engine contradicts the record and the stage refuses (exit 2), naming both.

Scan, verify and smoke hand the engine and their tools the image ID this
returns, check what the tool reports back against it (Trivy's ImageID, a
container's image), and record that ID as the verdict's subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .engine import Engine, ImageNotFound
from .errors import PipelineError

if TYPE_CHECKING:  # the record's models (pydantic) are the stage's to load, when it reads the record
    from .manifest import BuiltImage


class SubjectMismatch(PipelineError):
    """What the engine or a tool names is not the image the build record names (exit 2: the stage cannot judge)."""


@dataclass(frozen=True)
class Subject:
    name: str
    image_id: str  # what was examined: handed to the engine and tools by this ID, never by a tag
    source: str  # the reference the record's image was found by: its pushed digest, or its local tag

    @property
    def ref(self) -> str:
        """The reference a stage hands on: the image ID, which no one can move."""
        return self.image_id


def resolve(engine: Engine, image: BuiltImage) -> Subject:
    """The image ID to examine for ``image``; SubjectMismatch when the engine names another than the record."""
    # A base reused from the lock is recorded by the lock's digest alone (no ID); every image a build made has its ID.
    from_lock = image.kind == "base" and image.reused and image.pushed and "@" in image.ref
    if not image.image_id and not from_lock:
        # Without the recorded ID nothing holds the digest or tag to the build: whatever it names would be trusted.
        raise SubjectMismatch(
            f"{image.name}: the build record names no image ID for {image.ref}, so nothing proves which image it is",
            hint="rebuild (`pipelines build`): a build records every image's ID",
        )
    if image.pushed and "@" in image.ref:
        try:
            info = engine.image(image.ref)
        except ImageNotFound:
            info = engine.pull(image.ref)
        if image.image_id and info.id != image.image_id:
            raise SubjectMismatch(
                f"{image.name}: {image.ref} is image {info.id}, but the build record says {image.image_id}",
                hint="the record does not describe what was pushed; rebuild (`pipelines build`)",
            )
        return Subject(image.name, info.id, image.ref)
    tag = image.local_ref
    info = engine.image(tag)
    if image.image_id and info.id != image.image_id:
        raise SubjectMismatch(
            f"{image.name}: the local tag {tag} names image {info.id}, but the build record says {image.image_id}",
            seen=f"recorded: {image.image_id}\nunder the tag now: {info.id}",
            hint="the tag was moved after the build (`docker tag`, or another build writing it): nothing is examined "
            f"under it. Rebuild (`pipelines build`), or put it back: docker tag {image.image_id} {tag}",
        )
    return Subject(image.name, info.id, tag)


def pin(engine: Engine, ref: str) -> str:
    """The image ID a named reference resolves to now: examined by that ID from here on, whatever the tag does."""
    return engine.image(ref).id


def check_container(engine: Engine, container: str, expected: str, what: str) -> None:
    """The engine's own word on which image a container runs, held to the one a stage meant to examine."""
    ran = str(engine.inspect_container(container).get("Image", ""))
    if ran != expected:
        raise SubjectMismatch(
            f"{what}: container {container[:12]} runs image {ran or '(none reported)'}, not {expected}",
            hint="something changed the image between the stage's check and the container's start; run it again",
        )
