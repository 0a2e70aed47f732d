"""What discovery finds, as records: Dockerfiles and their stages, Compose files and services, the images to
build, and the questions left for a person (:class:`Undecided`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Undecided:
    """A question only a person can answer: where to look, what is open, and which config section it concerns."""

    file: str  # relative to the repository, POSIX
    line: int  # 0: the file as a whole
    what: str
    section: str = ""  # the pipeline.toml table the comment goes next to ("" for the top of the file)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Stage:
    name: str  # "" when the stage is not named
    base: str  # what FROM names (a previous stage, an image, an ARG)
    line: int


@dataclass(frozen=True)
class Dockerfile:
    path: str  # relative to the repository, POSIX
    stages: tuple[Stage, ...]
    copies: tuple[str, ...]  # COPY/ADD sources from the build context (not from other stages)
    expose: tuple[str, ...]
    healthcheck: bool

    def final(self, target: str | None) -> Stage | None:
        """The stage a build with ``target`` ends in (the last stage without one)."""
        if target:
            for s in self.stages:
                if s.name.lower() == target.lower():  # stage names are case-insensitive
                    return s
            return None
        return self.stages[-1] if self.stages else None

    def root_image(self, target: str | None) -> tuple[str, int]:
        """The image the final stage ultimately starts from, following stage names (and its line)."""
        stage = self.final(target)
        seen: set[str] = set()
        while stage is not None:
            named = {s.name.lower(): s for s in self.stages if s.name and s.line < stage.line}
            base = stage.base.lower()
            if base in named and base not in seen:
                seen.add(base)
                stage = named[base]
                continue
            return stage.base, stage.line
        return "", 0


@dataclass(frozen=True)
class ComposeService:
    name: str
    file: str
    line: int
    role: str  # built | datastore | image
    context: str | None = None  # relative to the repository, POSIX ("." for the root)
    dockerfile: str | None = None  # relative to the context
    target: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    datastore: str = ""
    ports: tuple[str, ...] = ()
    healthcheck: bool = False
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeFile:
    path: str
    env: str  # "" for a base file; the environment an overlay belongs to
    services: tuple[ComposeService, ...]
    overlay: bool


@dataclass(frozen=True)
class Service:
    """One image the pipeline builds: a `[services.NAME]` table."""

    name: str
    context: str
    dockerfile: str  # relative to the context
    target: str | None
    source: str  # where it was found (file:line)
    deps: str  # how the context pins its Python dependencies
    python: bool | None  # the final stage starts from a Python image (None: cannot tell)
    base: str
    ports: tuple[str, ...]
    also: tuple[str, ...] = ()  # Compose services that run the same image


@dataclass(frozen=True)
class Discovery:
    root: Path
    project: str
    dockerfiles: tuple[Dockerfile, ...]
    compose: tuple[ComposeFile, ...]
    base_compose: tuple[str, ...]  # [compose].files
    environments: Mapping[str, tuple[str, ...]]  # env -> overlays
    services: tuple[Service, ...]
    compose_services: tuple[ComposeService, ...]
    undecided: tuple[Undecided, ...]
