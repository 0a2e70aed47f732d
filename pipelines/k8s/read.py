"""The renderer's inputs: the environment's merged Compose config and the built images' configuration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .. import _proc, compose_model
from ..compose_model import Project
from ..config import Config
from ..engine import Engine, ImageInfo
from ..errors import InputError, PipelineError
from ..manifest import BuildRecord
from ..tools import Toolchain


def compose_config(
    cfg: Config, env: str, record: BuildRecord, tools: Toolchain, extra_files: Sequence[Path] = ()
) -> Project:
    """The environment's merged Compose config, rendered as the pipeline's stacks render it."""
    files = [*cfg.compose.files, *cfg.env(env).compose, *extra_files]
    for f in extra_files:
        if not f.is_file():
            raise InputError(f"--compose-file {f}: no such file", hint="name an existing Compose overlay")
    if not files:
        raise InputError(f"{cfg.file}: [compose].files is empty: there is nothing to render")
    argv: list[str] = [tools.docker, "compose", "--project-directory", str(files[0].parent)]
    for f in files:
        argv += ["-f", str(f)]
    reg = cfg.registry_for(env)
    environ = {
        "REGISTRY": reg.address,
        "NAMESPACE": reg.namespace,
        "IMAGE_TAG": record.image_tag(),
        # Secret files are never read here: only their names reach the manifests.
        "SECRETS_DIR": "/nonexistent/pipelines-render",
    }
    r = _proc.run([*argv, "config", "--format", "json"], timeout=120, env=environ, quiet=True, what="compose config")
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise PipelineError("docker compose config printed no JSON", seen=str(exc)) from None
    return compose_model.parse(data, source=f"the Compose config of {env!r}")


def image_infos(compose: Project, record: BuildRecord) -> dict[str, ImageInfo]:
    """Each Compose image the recorded build produced -> the engine's facts about it (user, healthcheck, ports)."""
    images = sorted({s.image for s in compose} - {""})
    by_tag = {t: img for img in record.services for t in img.tags}
    infos: dict[str, ImageInfo] = {}
    with Engine.connect() as engine:
        for image in images:
            if image in by_tag:
                infos[image] = engine.image(by_tag[image].local_ref)
    return infos
