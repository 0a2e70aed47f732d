"""The images to build and the graph their bases make: checked whole at load time, walked in dependency levels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

IMAGE_KINDS = ("rootfs", "dockerfile")
ROLES = ("builder", "runtime")
# What debootstrap and the security-index check trust by default (Debian's debian-archive-keyring package).
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class Image:
    """One image to build: a golden base image or a service."""

    name: str
    kind: str  # rootfs | dockerfile
    is_base: bool
    image: str  # repository name under registry/namespace
    context: Path | None
    dockerfile: Path | None
    target: str | None
    args: Mapping[str, str]
    # build-arg name -> base image name; the arg gets that image's digest ref.
    bases: Mapping[str, str]
    # service | builder | runtime: which lint rules apply (a builder needs root and compilers).
    role: str = "service"
    # The golden image of the package this one is (its catalog name); "" for one defined in the config.
    golden: str = ""
    # Golden Python images: the "3.X" the image carries, and the one the config asked for ("" when none).
    python: str = ""
    python_requested: str = ""
    # The Debian suite the image is (rootfs) or is built on, and its status (oldstable, stable, testing,
    # unstable; "" when not known): testing and unstable have no support from Debian's security team.
    debian_suite: str = ""
    debian_status: str = ""
    # rootfs images only
    suite: str = ""
    variant: str = ""
    mirror: str = ""
    include: tuple[str, ...] = ()
    # Every suite apt uses, updates applied at build time; "*-security" ones come from security_mirror.
    suites: tuple[str, ...] = ()
    security_mirror: str = ""
    # The OpenPGP keyring the mirrors' InRelease files must be signed by.
    keyring: Path = DEBIAN_KEYRING


def check_bases(file: str, images: Mapping[str, Image]) -> None:
    """Every base a build-arg names is a known base image (never a service), and no bases form a cycle."""
    for img in images.values():
        for arg, base in img.bases.items():
            key = f"{'images' if img.is_base else 'services'}.{img.name}.bases.{arg}"
            if base not in images:
                raise ConfigError(
                    file,
                    key,
                    f"names unknown image {base!r}",
                    hint=f"base images: {', '.join(i.name for i in images.values() if i.is_base)}",
                )
            if not images[base].is_base:
                raise ConfigError(file, key, f"{base!r} is a service; only [images.*] can be bases")
    reject_cycles(file, images)


def reject_cycles(file: str, images: Mapping[str, Image]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = [*path[path.index(n) :], n]
            raise ConfigError(file, f"images.{n}.bases", f"cycle between images: {' -> '.join(cycle)}")
        state[n] = 1
        for dep in images[n].bases.values():
            visit(dep, [*path, n])
        state[n] = 2

    for n in images:
        visit(n, [])


def build_order(file: str, images: Mapping[str, Image], names: list[str] | None = None) -> list[list[Image]]:
    """Images in dependency levels: each level only needs earlier ones.

    ``names`` restricts the result to those images and what they need.
    """
    wanted: set[str] = set()

    def want(n: str) -> None:
        if n not in wanted:
            wanted.add(n)
            for dep in images[n].bases.values():
                want(dep)

    for n in names if names is not None else list(images):
        if n not in images:
            raise ConfigError(file, "", f"no image or service named {n!r}", hint=f"known: {', '.join(images)}")
        want(n)
    levels: list[list[Image]] = []
    done: set[str] = set()
    while len(done) < len(wanted):
        level = [images[n] for n in images if n in wanted and n not in done and set(images[n].bases.values()) <= done]
        if not level:  # cycles are rejected at load time; this guards against a bug there
            raise ConfigError(file, "images", "the images' bases form a cycle")
        levels.append(level)
        done.update(i.name for i in level)
    return levels
