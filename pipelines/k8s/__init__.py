"""Kubernetes manifests from an environment's Compose stack, held to the restricted Pod Security Standard.

``pipelines render k8s --env ENV`` reads three things and nothing else: the
environment's merged Compose config (rendered by ``docker compose config``
exactly as the stack runs it), the build record (which image, by digest when
the build pushed it) and the images' own configuration (numeric user,
healthcheck, exposed ports). Every field it writes comes from one of those or
from a named default in :data:`DEFAULTS`; ``provenance.json`` says which, per
object and field path, and each object carries the summary in its
``pipelines.dev/source`` annotation.

Output is byte-identical for identical input (sorted keys, fixed order, no
timestamps, no temporary paths), validated offline against the Kubernetes
schemas of several versions, and checked against the restricted profile
(https://kubernetes.io/docs/concepts/security/pod-security-standards/) by
:func:`restricted_violations` before anything is written.

:mod:`.read` gathers the inputs, :mod:`.render` builds the objects (a
service's container in :mod:`.container`, Compose values converted in
:mod:`.values`), :mod:`.policy` holds them to the restricted profile,
:mod:`.schema` validates them and :mod:`.output` writes them; :mod:`.model`
is what those share.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import manifest
from ..config import Config
from ..errors import InputError
from ..tools import Toolchain
from .container import _resources
from .model import (
    DEFAULTS,
    IMAGE_REF_ANNOTATION,
    K8S_VERSIONS,
    MANIFESTS,
    NOT_RENDERED_ANNOTATION,
    PROVENANCE,
    SECRETS,
    SOURCE_ANNOTATION,
    SUPPLY_ANNOTATION,
    Obj,
    RenderError,
)
from .output import dump, field_paths, provenance, untraced, write
from .policy import restricted_violations
from .read import compose_config, image_infos
from .render import render
from .schema import validate
from .values import _bytes, _cpu, _duration_ns, _quantity, _seconds

__all__ = [
    "DEFAULTS",
    "IMAGE_REF_ANNOTATION",
    "K8S_VERSIONS",
    "MANIFESTS",
    "NOT_RENDERED_ANNOTATION",
    "PROVENANCE",
    "SECRETS",
    "SOURCE_ANNOTATION",
    "SUPPLY_ANNOTATION",
    "Obj",
    "RenderError",
    "Rendered",
    "_bytes",
    "_cpu",
    "_duration_ns",
    "_quantity",
    "_resources",
    "_seconds",
    "compose_config",
    "dump",
    "field_paths",
    "provenance",
    "render",
    "restricted_violations",
    "run",
    "untraced",
    "validate",
]


@dataclass(frozen=True)
class Rendered:
    env: str
    objects: tuple[Obj, ...]
    files: tuple[Path, ...]
    versions: tuple[str, ...]
    seconds: float


def run(
    cfg: Config,
    tools: Toolchain,
    *,
    env: str | None,
    out: Path | None = None,
    versions: Sequence[str] = K8S_VERSIONS,
    check_schemas: bool = True,
    extra_files: Sequence[Path] = (),
) -> Rendered:
    started = time.monotonic()
    env_name = cfg.env(env).name
    for f in extra_files:
        if not f.is_file():
            raise InputError(f"--compose-file {f}: no such file", hint="name an existing Compose overlay")
    record = manifest.load(cfg.project.artifacts, env_name)
    compose = compose_config(cfg, env_name, record, tools, extra_files)
    infos = image_infos(compose, record)
    objects = render(cfg, env_name, record, compose, infos)
    bad = restricted_violations(o.body for o in objects)
    if bad:
        # The renderer writes the profile into every pod: a violation here is our bug, not the input's.
        raise RuntimeError("rendered manifests break the restricted profile: " + "; ".join(bad))
    if check_schemas:
        errors = validate((o.body for o in objects), versions)
        if errors:
            raise RenderError(
                f"the rendered manifests of {env_name!r} do not validate against the Kubernetes schemas",
                seen="\n".join(errors[:20]),
                hint="the first field named is where the Compose value does not fit; fix it in the Compose file",
            )
    files = write(objects, out or cfg.project.artifacts / "k8s" / env_name)
    return Rendered(
        env_name, tuple(objects), tuple(files), tuple(versions) if check_schemas else (), time.monotonic() - started
    )
