"""The [environments.*] tables: tags, build args, hardening profile, scan overrides, registry and promotion chains."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import refs
from ..errors import ConfigError
from . import paths
from .model import CACHE_BACKENDS, PROFILES, SCAN_LEVELS, SCANNERS, Environment, Registry
from .table import Table, build_args

# Environment names end up in tags, file names and Compose project names (lowercase only).
_ENV = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def read(top: Table, root: Path, registry: Registry) -> dict[str, Environment]:
    """Every environment (at least one), each promotion chain ending in one that deploys its own build.

    ``registry``: [registry], which an environment's own ``registry`` (address) and ``namespace`` override.
    """
    envs: dict[str, Environment] = {}
    for name, et in top.tables("environments"):
        if not _ENV.match(name):
            raise et.error(
                "",
                "environment names are 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
            )
        tags = et.strings("tags")
        for i, tag in enumerate(tags):
            if problem := refs.tag_problem(tag):
                raise et.error(f"tags[{i}]", problem)
            if tag in tags[:i]:
                raise et.error(f"tags[{i}]", f"{tag!r} is listed twice")
        cache = et.opt_string("cache")
        if cache is not None and cache not in CACHE_BACKENDS:
            raise et.error("cache", f"must be one of {', '.join(CACHE_BACKENDS)}; got {cache!r}")
        envs[name] = Environment(
            name=name,
            push=et.boolean("push", False),
            tags=tags or (name,),
            args=build_args(et, "args"),
            cache=cache,
            compose=paths.files(et, "compose", root),
            # A "dev" environment may relax runtime hardening (bind mounts, reload); every other one is held
            # to the production rules unless it says otherwise.
            profile=et.choice("profile", PROFILES, "dev" if name == "dev" else "prod"),
            scan=_scan_overrides(et.table("scan")),
            promote_from=et.opt_string("promote_from"),
            require_full_coverage=et.boolean("require_full_coverage", False),
            registry=_registry(et, registry),
        )
        et.done()
    if not envs:
        raise ConfigError(top.file, "environments", "at least one environment is required (e.g. [environments.dev])")
    _check_promotions(top.file, envs)
    _check_promotion_registries(top.file, envs, registry)
    return envs


def _registry(et: Table, default: Registry) -> Registry | None:
    """The environment's own registry, validated as [registry]'s keys are; None when it sets neither key."""
    address = et.opt_string("registry")
    if address is not None and (problem := refs.address_problem(address)):
        raise et.error("registry", problem)
    namespace = et.opt_string("namespace")
    # An empty namespace is allowed, as in [registry]: images directly under the address.
    if namespace and (problem := refs.repository_problem(namespace)):
        raise et.error("namespace", problem)
    if address is None and namespace is None:
        return None
    return Registry(
        address=default.address if address is None else address,
        namespace=default.namespace if namespace is None else namespace,
    )


def _check_promotion_registries(file: str, envs: Mapping[str, Environment], default: Registry) -> None:
    """An environment promoted from another uses the same registry and namespace.

    Promotion deploys the source's live release by its recorded references: with another registry the
    promoted environment would pull from the source's registry, not its own. Copying images between
    registries is not part of promotion, so such a config is refused.
    """
    for name, e in envs.items():
        if e.promote_from is None:
            continue
        mine, theirs = e.registry or default, envs[e.promote_from].registry or default
        if mine != theirs:
            raise ConfigError(
                file,
                f"environments.{name}",
                f"is promoted from {e.promote_from!r} but uses another registry "
                f"({mine.repo('') or '(none)'} vs {theirs.repo('') or '(none)'}): promotion deploys the "
                f"digests of {e.promote_from!r}'s live release where they are, and copies nothing",
                hint=f"give both environments the same registry and namespace, or drop promote_from and build "
                f"{name!r} itself",
            )


def _check_promotions(file: str, envs: Mapping[str, Environment]) -> None:
    """promote_from names another environment, and following it never comes back (no cycles)."""
    for name, e in envs.items():
        if e.promote_from is None:
            continue
        key = f"environments.{name}.promote_from"
        if e.promote_from not in envs:
            raise ConfigError(
                file, key, f"names unknown environment {e.promote_from!r}", hint=f"choose one of: {', '.join(envs)}"
            )
        seen = [name]
        step: str | None = e.promote_from
        while step is not None:
            if step in seen:
                raise ConfigError(
                    file,
                    key,
                    f"promotion goes round in a circle: {' <- '.join([*seen, step])}",
                    hint="one environment at the start of the chain must deploy its own build",
                )
            seen.append(step)
            step = envs[step].promote_from


def _scan_overrides(t: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "severity" in t.data:
        out["severity"] = t.choice("severity", SCAN_LEVELS, "HIGH")
    if "ignore_unfixed" in t.data:
        out["ignore_unfixed"] = t.boolean("ignore_unfixed", False)
    if "scanners" in t.data:
        out["scanners"] = t.strings("scanners")
        for v in out["scanners"]:
            if v not in SCANNERS:
                raise t.error("scanners", f"{v!r} is not one of {', '.join(SCANNERS)}")
    t.done()
    return out
