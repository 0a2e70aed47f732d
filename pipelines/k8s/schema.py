"""Offline validation of the rendered objects against the Kubernetes schemas (kubernetes-validate)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import PipelineError


def validate(objects: Iterable[Mapping[str, Any]], versions: Sequence[str]) -> list[str]:
    """Schema errors of every object against every Kubernetes version (strict: unknown fields are errors)."""
    try:
        import kubernetes_validate
        import kubernetes_validate.utils as kv
    except ImportError:
        raise PipelineError(
            "kubernetes-validate is not installed: the manifests cannot be validated offline",
            hint="install kubernetes-validate (pinned in requirements/dev.txt) or pass --no-validate",
        ) from None
    errors: list[str] = []
    for o in objects:
        where = f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"
        for v in versions:
            try:
                kubernetes_validate.validate(dict(o), v, strict=True)
            except kv.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path) or "(object)"
                errors.append(f"{where}: {path}: {exc.message} (Kubernetes {v})")
            except kv.VersionNotSupportedError:
                raise PipelineError(
                    f"kubernetes-validate has no schemas for Kubernetes {v}",
                    hint=f"choose among {', '.join(kv.all_versions())}",
                ) from None
            except kv.SchemaNotFoundError as exc:
                errors.append(f"{where}: {exc.message}")
    return errors
