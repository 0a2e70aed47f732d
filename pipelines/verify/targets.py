"""What verify examines: the stage's options, and the images they name (by default, the env's last build)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Config, Image
from ..engine import Engine
from ..errors import PipelineError
from .specs import ROLE_RULES, Role

if TYPE_CHECKING:
    from .. import manifest


@dataclass(frozen=True)
class Options:
    images: tuple[str, ...] = ()  # local references; default: every image of the env's last build
    env: str | None = None
    explain: bool = False
    fresh: bool = False  # run every throwaway container again, even for an unchanged image and config


@dataclass(frozen=True)
class Target:
    name: str
    ref: str  # what is examined: once the run starts (pinned()), the image ID, never a tag
    role: Role
    image: Image | None  # its config entry, when the build record names it
    record: manifest.BuildRecord | None = None
    built: manifest.BuiltImage | None = None  # the build record's entry for it
    named: str = ""  # how it was named (a tag, a digest, the reference given), for the report

    def pinned(self, engine: Engine) -> Target:
        """This target examined by image ID: a recorded image proven to be the record's, a named one as named now."""
        from .. import subjects

        if self.built is not None:
            subject = subjects.resolve(engine, self.built)
            return dataclasses.replace(self, ref=subject.ref, named=subject.source)
        return dataclasses.replace(self, ref=subjects.pin(engine, self.ref), named=self.ref)


def targets(cfg: Config, opts: Options) -> list[Target]:
    # Here, not at the top: the build record's models (pydantic) load while Compose renders (see verify.run).
    from .. import manifest

    env = cfg.env(opts.env)
    try:
        record: manifest.BuildRecord | None = manifest.load(cfg.project.artifacts, env.name)
    except PipelineError:
        if not opts.images:
            raise
        record = None
    runtime_bases = {b.name for b in cfg.bases if b.role == "runtime" and b.kind != "rootfs"}

    def role_of(img: Image) -> Role:
        if img.is_base:
            if img.kind == "rootfs":
                return ROLE_RULES["rootfs"]
            return ROLE_RULES["builder" if img.role == "builder" else "runtime-base"]
        return ROLE_RULES["runtime" if runtime_bases & set(img.bases.values()) else "service"]

    if not opts.images:
        if record is None:  # pragma: no cover - load raised above
            raise PipelineError("no build record")
        return [
            Target(b.name, b.local_ref, role_of(cfg.images[b.name]), cfg.images[b.name], record, b)
            for b in record.images.values()
            if b.name in cfg.images
        ]
    out = []
    known: dict[str, manifest.BuiltImage] = {}
    if record is not None:
        for b in record.images.values():
            for r in (b.ref, b.local_ref, *b.tags):
                known[r] = b
    for ref in opts.images:
        built = known.get(ref)
        if built is not None and built.name in cfg.images:
            name = built.name
            out.append(Target(name, ref, role_of(cfg.images[name]), cfg.images[name], record, built))
        else:
            # Not from this build: held to the strictest role (an application on a runtime base).
            out.append(Target(ref.rpartition("/")[2], ref, ROLE_RULES["runtime"], None, None))
    return out
