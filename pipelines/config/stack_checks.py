"""What runs against the live stack: [smoke] and its probes, [load], and the [bench] budgets and deploy benchmark."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import paths
from .images import Image
from .model import HTTP_METHODS, BenchSettings, DeployBench, Environment, LoadSettings, Probe, SmokeSettings
from .table import ARG_NAME, Table, json_scalars, nonempty, required_int, url_path

if TYPE_CHECKING:
    from ..loadgen import Request as LoadRequest

_PLUGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")  # what `pytest -p NAME` takes
_SERVICE_PORT = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*:[0-9]{1,5}$")


def smoke(t: Table, root: Path, envs: Mapping[str, Environment]) -> SmokeSettings:
    deadline = t.number("deadline", 120.0, low=1, high=3600)
    suite_rel = t.opt_string("suite")
    suite = None
    if suite_rel is not None:
        suite = paths.inside(t, "suite", suite_rel, root)
        if not suite.exists():
            raise t.error("suite", f"{suite} does not exist", hint="a pytest directory or file inside the project")
    probes: list[Probe] = []
    for pt in t.table_list("probes"):
        probe = _probe(pt, envs)
        if any(p.name == probe.name for p in probes):
            raise pt.error("name", f"{probe.name!r} is already the name of another probe")
        probes.append(probe)
    environment = t.string_map("environment")
    for key in environment:
        if not ARG_NAME.match(key):
            raise t.error(f"environment.{key}", "is not a valid variable name")
    via = t.string_map("via")
    for key, value in via.items():
        for what in (key, value):
            if not _SERVICE_PORT.match(what) or not 1 <= int(what.rpartition(":")[2]) <= 65535:
                raise t.error(
                    f"via.{key}", f"{what!r} is not SERVICE:PORT", hint='e.g. via = { "api:8000" = "proxy:8080" }'
                )
        if value.partition(":")[0] == key.partition(":")[0]:
            raise t.error(f"via.{key}", "reaches a service through itself", hint="name the service in front of it")
    plugins = t.strings("plugins") if "plugins" in t.data else None
    for i, plugin in enumerate(plugins or ()):
        if not _PLUGIN.match(plugin):
            raise t.error(f"plugins[{i}]", f"{plugin!r} is not a pytest plugin's module or entry-point name")
    t.done()
    return SmokeSettings(
        deadline=deadline,
        suite=suite,
        probes=tuple(probes),
        environment=MappingProxyType(dict(environment)),
        via=MappingProxyType(dict(via)),
        plugins=plugins,
    )


def _probe(t: Table, envs: Mapping[str, Environment]) -> Probe:
    name = nonempty(t, "name")
    service = nonempty(t, "service")
    port = required_int(t, "port", 1, 65535)
    path = url_path(t, "path", t.string("path", required=True))
    method = t.choice("method", HTTP_METHODS, "GET")
    status = t.integer("status", 200, minimum=100, maximum=599)
    json_values = json_scalars(t)
    json_keys = t.strings("json_keys")
    user, password = t.opt_string("auth_user_secret"), t.opt_string("auth_password_secret")
    if (user is None) != (password is None):
        raise t.error(
            "", "auth_user_secret and auth_password_secret go together", hint="set both, or neither (no auth)"
        )
    body = t.opt_string("body")
    content_type = t.string("content_type", "application/json")
    deadline = t.number("deadline", 10.0, low=0.1, high=600)
    environments = t.strings("environments")
    for i, env in enumerate(environments):
        if env not in envs:
            raise t.error(f"environments[{i}]", f"names unknown environment {env!r}", hint=f"known: {', '.join(envs)}")
    t.done()
    return Probe(
        name=name,
        service=service,
        port=port,
        path=path,
        method=method,
        status=status,
        json=MappingProxyType(json_values),
        json_keys=json_keys,
        auth_user_secret=user,
        auth_password_secret=password,
        body=body,
        content_type=content_type,
        deadline=deadline,
        environments=environments,
    )


def bench(t: Table, images: Mapping[str, Image]) -> BenchSettings:
    change = t.opt_string("change_service")
    if change is not None and (change not in images or images[change].is_base):
        raise t.error("change_service", f"names no service: {change!r}")
    ratio_pct = t.integer("max_rebuild_percent", 10, minimum=1, maximum=100)
    budgets = t.table("size_budgets_mb")
    sizes = {}
    for img_name in list(budgets.data):
        if img_name not in images:
            raise budgets.error(img_name, "names no image or service")
        sizes[img_name] = budgets.integer(img_name, 0, minimum=1, maximum=1_000_000)
    budgets.done()
    scan_images = t.strings("scan_images")
    for n in scan_images:
        if n not in images or images[n].is_base:
            raise t.error("scan_images", f"{n!r} is not a service")
    deploy_bench = _deploy_bench(t.table("deploy")) if "deploy" in t.data else None
    t.done()
    return BenchSettings(
        change_service=change,
        max_rebuild_ratio=ratio_pct / 100,
        size_budgets_mb=sizes,
        scan_images=scan_images,
        deploy=deploy_bench,
    )


def _deploy_bench(t: Table) -> DeployBench:
    from ..loadgen import MAX_RATE

    requests = tuple(_load_request(rt) for rt in t.table_list("requests"))
    names = [f"{r.method} {r.path}" for r in requests]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise t.error(f"requests[{i}]", f"names {name} a second time", hint="give each method and path once")
    if requests and "path" in t.data:
        raise t.error("path", "is the load of a single GET; with [[bench.deploy.requests]] each request has its own")
    path = requests[0].path if requests else t.string("path", required=True)
    url_path(t, "path", path)
    good, bad = t.string_map("good"), t.string_map("bad")
    if not bad:
        raise t.error(
            "bad",
            "needs the Compose variables that make a deploy fail its health gate",
            hint='e.g. bad = { API_WORKERS = "not-a-number" }',
        )
    settings = DeployBench(
        service=nonempty(t, "service"),
        port=required_int(t, "port", 1, 65535),
        path=path,
        rate=t.number("rate", 20.0, low=0, high=MAX_RATE, low_open=True),
        settle=t.number("settle", 5.0, low=0, high=600),
        good=good,
        bad=bad,
        max_failed=t.integer("max_failed", 0, minimum=0),
        max_rollback_s=t.number("max_rollback_s", 10.0, low=0, high=3600, low_open=True),
        requests=requests,
    )
    t.done()
    return settings


def _load_request(t: Table) -> LoadRequest:
    from ..loadgen import MAX_BODY, MAX_WEIGHT, Request

    method = t.choice("method", HTTP_METHODS, "GET")
    path = t.string("path", required=True)
    url_path(t, "path", path)
    body = t.opt_string("body")
    if body is not None and len(body.encode()) > MAX_BODY:
        raise t.error("body", f"is over {MAX_BODY} bytes")
    if body is not None and method in ("GET", "HEAD"):
        raise t.error("body", f"a {method} request carries no body")
    content_type = t.string("content_type", "application/json")
    weight = t.integer("weight", 1, minimum=1, maximum=MAX_WEIGHT)
    t.done()
    return Request(method, path, body.encode() if body is not None else None, content_type, weight)


def load(t: Table) -> LoadSettings:
    service = nonempty(t, "service")
    port = required_int(t, "port", 1, 65535)
    paths = t.strings("paths")
    seed_given = t.data.get("seed")
    if not paths and not seed_given:
        raise t.error(
            "paths", 'needs at least one path to drive, e.g. paths = ["/health"] (or a seed test that hands paths over)'
        )
    for i, p in enumerate(paths):
        url_path(t, f"paths[{i}]", p)
    seed = t.opt_string("seed")
    if seed is not None and not seed.strip():
        raise t.error("seed", "must not be empty (leave it out for no seeding)")
    settings = LoadSettings(
        service=service,
        port=port,
        paths=paths,
        seed=seed,
        connections=t.integer("connections", 50, minimum=1, maximum=10_000),
        duration=t.integer("duration", 10, minimum=1, maximum=3600),
        p99_ms=t.number("p99_ms", 100.0, low=0, high=3_600_000, low_open=True),
    )
    t.done()
    return settings
