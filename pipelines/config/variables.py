"""The environment variables that override pipeline.toml: the one table of them, applied in one place.

A CI points a job at its registry, or names the environment it is for, without editing the committed
file, as ``TRIVY_*`` does for Trivy. A command-line flag (``--env``) beats a variable, which beats the
file. Each value is validated exactly as the key it replaces, and a bad one is reported under the
variable's name (exit 2). An empty variable counts as unset, as a shell's ``${VAR:-default}`` does, so a
CI may pass an unset setting of its own through as "".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .. import refs
from ..errors import ConfigError
from .model import Environment, Registry, Setting


@dataclass(frozen=True)
class Variable:
    name: str
    key: str  # the pipeline.toml key it replaces
    meaning: str
    older: tuple[str, ...] = ()  # earlier names, read when this one is unset


REGISTRY = Variable(
    "PIPELINES_REGISTRY",
    "registry.address",
    "registry address (host[:port]) of every environment: [registry].address and each environment's own registry",
    # The older name ./noxw and scripts/provision.sh read: where the local registry listens.
    older=("PIPELINES_REGISTRY_ADDR",),
)
NAMESPACE = Variable(
    "PIPELINES_NAMESPACE",
    "registry.namespace",
    "registry namespace of every environment: [registry].namespace and each environment's own namespace",
)
ENV = Variable("PIPELINES_ENV", "default_env", "the environment of a command given no --env")
VARIABLES = (REGISTRY, NAMESPACE, ENV)


@dataclass(frozen=True)
class Given:
    """A variable that is set: the name it was read under and its value."""

    name: str
    value: str

    def error(self, problem: str, *, hint: str | None = None) -> ConfigError:
        return ConfigError(f"environment variable {self.name}", "", problem, hint=hint)


def given(var: Variable, environ: Mapping[str, str]) -> Given | None:
    """The variable's value (under its name, else an older one); None when unset or empty."""
    found = [Given(n, environ[n]) for n in (var.name, *var.older) if environ.get(n)]
    if not found:
        return None
    first = found[0]
    for other in found[1:]:
        if other.value != first.value:
            raise first.error(
                f"{first.value!r} contradicts {other.name}={other.value!r}",
                hint=f"{other.name} is the older name of {var.name}: set one of them, or both to the same value",
            )
    return first


@dataclass(frozen=True)
class Effective:
    """[registry], the environments and default_env with every variable applied, and where each came from."""

    registry: Registry
    environments: dict[str, Environment]
    default_env: str
    settings: tuple[Setting, ...]


def apply(
    file: Path,
    registry: Registry,
    envs: Mapping[str, Environment],
    default_env: str,
    in_file: Collection[str],
    environ: Mapping[str, str],
) -> Effective:
    """The file's values (``in_file``: the key paths it sets) overridden by the variables that are set."""
    address = given(REGISTRY, environ)
    if address is not None and (problem := refs.address_problem(address.value)):
        raise address.error(problem, hint=f"it replaces {REGISTRY.key}: give host[:port], or unset it")
    namespace = given(NAMESPACE, environ)
    if namespace is not None and (problem := refs.repository_problem(namespace.value)):
        raise namespace.error(problem, hint=f"it replaces {NAMESPACE.key}: give e.g. 'team/apps', or unset it")
    env = given(ENV, environ)
    if env is not None and env.value not in envs:
        raise env.error(
            f"names unknown environment {env.value!r}",
            hint=f"it replaces {ENV.key}: choose one of {', '.join(envs)}, or unset it",
        )

    def over(r: Registry) -> Registry:
        return Registry(
            address=address.value if address else r.address, namespace=namespace.value if namespace else r.namespace
        )

    def source(var: Given | None, *keys: str) -> str:
        """The variable, else the first of ``keys`` the file sets, else the default the last one names."""
        if var is not None:
            return var.name
        key = next((k for k in keys if k in in_file), None)
        return f"{file.name}: {key}" if key else keys[-1]

    top, chosen = over(registry), env.value if env else default_env
    settings = [
        Setting("registry.address", top.address, source(address, "registry.address")),
        Setting("registry.namespace", top.namespace, source(namespace, "registry.namespace", "default: none")),
        Setting("default_env", chosen, source(env, "default_env", "default: the first environment")),
    ]
    for name, e in envs.items():
        own = over(e.registry or registry)
        reg_keys = (f"environments.{name}.registry", "registry.address")
        ns_keys = (f"environments.{name}.namespace", "registry.namespace", "default: none")
        settings += [
            Setting(f"environments.{name}.registry", own.address, source(address, *reg_keys)),
            Setting(f"environments.{name}.namespace", own.namespace, source(namespace, *ns_keys)),
        ]
    return Effective(
        registry=top,
        environments={n: replace(e, registry=over(e.registry or registry)) for n, e in envs.items()},
        default_env=chosen,
        settings=tuple(settings),
    )
