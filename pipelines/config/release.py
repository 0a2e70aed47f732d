"""What deploys and signs: [deploy] (release history, waits, readiness routes) and [signing] (cosign keys)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from .model import DAY, DeploySettings, Readiness, SigningSettings, default_state
from .table import ARG_NAME, Table, json_scalars, required_int, url_path


def deploy(t: Table, root: Path, artifacts: Path, project: str) -> DeploySettings:
    state_rel = t.opt_string("state")
    if state_rel is not None and not state_rel.strip():
        raise t.error("state", "must not be empty")
    state = (root / Path(state_rel).expanduser()).resolve() if state_rel else default_state(project)
    # The artifacts directory is disposable (CI throws it away); release history must outlive it.
    if state.is_relative_to(artifacts.resolve()):
        raise t.error(
            "state",
            f"{state} is inside the artifacts directory {artifacts}, which is disposable",
            hint=f"leave it unset (default: {default_state(project)}) or name a directory outside the checkout",
        )
    # A checkout's clean (git clean -ffdx) wipes the tree, and the code under review can write it: history
    # kept there is lost, or rewritten, by the next run.
    if state.is_relative_to(root.resolve()):
        raise t.error(
            "state",
            f"{state} is inside the project tree {root}, where a checkout's clean wipes it",
            hint=f"leave it unset (default: {default_state(project)}) or name a directory outside the checkout",
        )
    if state.exists() and not state.is_dir():
        raise t.error("state", f"{state} exists and is not a directory")
    stateful = t.strings("stateful")
    for i, name in enumerate(stateful):
        if not name.strip() or name in stateful[:i]:
            raise t.error(f"stateful[{i}]", f"{name!r} is empty or listed twice")
    out = DeploySettings(
        state=state,
        lock_wait=t.integer("lock_wait", 600, minimum=0, maximum=DAY),
        stateful=stateful,
        gate_deadline=t.integer("gate_deadline", 0, minimum=0, maximum=DAY),
        readiness=MappingProxyType({name: _readiness(name, rt) for name, rt in t.tables("readiness")}),
    )
    t.done()
    return out


def _readiness(service: str, t: Table) -> Readiness:
    if not service.strip():
        raise t.error("", "needs a service name: [deploy.readiness.SERVICE]")
    port = required_int(t, "port", 1, 65535)
    path = url_path(t, "path", t.string("path", required=True))
    status = t.integer("status", 200, minimum=100, maximum=599)
    json_values = json_scalars(t)
    timeout = t.number("timeout", 2.0, low=0, high=60, low_open=True)
    t.done()
    return Readiness(service, port, path, status, MappingProxyType(json_values), timeout)


def signing(t: Table, root: Path) -> SigningSettings:
    def where(name: str, *, private: bool) -> str:
        value = t.string(name, "")
        if not value or value.startswith("env://"):
            if value == "env://" or (value and not ARG_NAME.match(value[6:])):
                raise t.error(name, f"{value!r} names no environment variable", hint='write "env://VARIABLE"')
            return value
        path = (root / Path(value).expanduser()).resolve()
        # A private key inside the project tree is one `git add -A` away from being published.
        if private and path.is_relative_to(root):
            raise t.error(
                name,
                f"{path} is inside the project tree ({root}); a private key never lives in the repository",
                hint='keep it outside (e.g. ~/.config/pipelines/cosign.key) or use "env://VARIABLE"',
            )
        return str(path)

    out = SigningSettings(
        key=where("key", private=True),
        public_key=where("public_key", private=False),
        password_env=t.string("password_env", "COSIGN_PASSWORD"),
        attest=t.boolean("attest", True),
    )
    if not ARG_NAME.match(out.password_env):
        raise t.error("password_env", f"{out.password_env!r} is not an environment variable name")
    t.done()
    return out
