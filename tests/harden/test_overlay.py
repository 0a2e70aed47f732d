"""The hardening overlay: Compose accepts it on top of the user's files, and lint's findings it answers are gone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipelines import composefile, datastores
from pipelines.composefile import ComposeLoader
from pipelines.harden import overlay
from pipelines.lint import compose_policy
from pipelines.tools import Toolchain
from tests.harness import compose_toolchain

# A stack as repositories commit it for local development: a web app and a worker built here, a database
# and a cache from upstream images, everything on the default network, ports on every interface.
STACK = """
services:
  web:
    build: .
    command: gunicorn app.wsgi --bind 0.0.0.0:8000
    ports: ["8000:8000"]
    environment:
      DATABASE_URL: postgres://app:devpass@db:5432/app
      REDIS_URL: redis://cache:6379/0
      DJANGO_SECRET_KEY: not-so-secret
    depends_on: [db, cache]
    restart: always
  worker:
    build: .
    command: celery -A app worker
    environment:
      DATABASE_URL: postgres://app:devpass@db:5432/app
    depends_on:
      db:
        condition: service_started
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: devpass
      POSTGRES_DB: app
    ports: ["5432:5432"]
    volumes: ["pgdata:/var/lib/postgresql/data"]
  cache:
    image: redis:7-alpine
volumes:
  pgdata: {}
"""
# What the overlay answers; what stays is named by the plan as a manual step (the app's own secret).
ANSWERED = {"PL-C004", "PL-C005", "PL-C006", "PL-C007", "PL-C008", "PL-C009", "PL-C010", "PL-C013", "PL-C020"}


@pytest.fixture(scope="module")
def tools() -> Toolchain:
    return compose_toolchain()


def _render(tools: Toolchain, root: Path, *names: str) -> composefile.Rendered:
    return composefile.render(tools, [root / n for n in names], list(names), project_dir=root)


def _rules(r: composefile.Rendered, built_with_healthcheck: bool = False) -> set[tuple[str, str]]:
    # The services built here get their HEALTHCHECK from the hardened Dockerfile, not from the overlay.
    ctx = compose_policy.Context("prod", "prod", {"web": True, "worker": True} if built_with_healthcheck else {})
    return {(f.rule, f.service or "") for f in compose_policy.check(r, ctx)}


def _stack(tmp_path: Path, text: str = STACK) -> Path:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_the_overlay_answers_every_finding_it_claims_and_compose_accepts_it(tools: Toolchain, tmp_path: Path) -> None:
    root = _stack(tmp_path)
    before = _render(tools, root, "compose.yaml")
    found = _rules(before)
    # The stack has what is tested (PL-C009 needs a dependency with a healthcheck: the overlay gives them one).
    assert {r for r, _ in found} >= ANSWERED - {"PL-C009"}, found
    p = overlay.plan(before)
    (root / "compose.hardened.yaml").write_text(p.text())
    for path, content in p.secret_files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    after = _render(tools, root, "compose.yaml", "compose.hardened.yaml")
    left = _rules(after, built_with_healthcheck=True)
    assert not {(r, s) for r, s in left if r in ANSWERED}, sorted(left)
    # What is left is the applications' own credentials, each named as a manual step.
    assert {r for r, _ in left} <= {"PL-C011"}, sorted(left)
    assert all(any(m.startswith(f"{s}: ") for m in p.manual) for _, s in left), (left, p.manual)
    # Every change the plan reports answers a rule lint reported for that service, or one the overlay's own
    # changes bring into play: datastores get a health probe, so their clients can wait for it; their
    # clients join the internal network.
    follows = {("PL-C008", "db"), ("PL-C008", "cache"), ("PL-C009", "web"), ("PL-C009", "worker")}
    claimed = {(c.rule, c.service) for c in p.changes if c.service != "*"}
    assert claimed <= found | follows | {("PL-C020", "web"), ("PL-C020", "worker")}, claimed - found
    # The app's own credential is left to a person, and named.
    assert any("web: environment.DJANGO_SECRET_KEY" in m for m in p.manual), p.manual
    assert any("worker: environment.DATABASE_URL carries a password" in m for m in p.manual), p.manual
    web, db = after.project.services["web"], after.project.services["db"]
    assert [(x.host_ip, x.published) for x in web.ports] == [("127.0.0.1", "8000")]
    assert db.ports == () and set(db.networks or {}) == {overlay.INTERNAL_NETWORK}
    assert set(web.networks or {}) == {"default", overlay.INTERNAL_NETWORK}
    assert after.project.networks[overlay.INTERNAL_NETWORK].internal
    # The password moved to a file with the value the files had, so the clients' URLs still match.
    assert "POSTGRES_PASSWORD" not in db.environment
    assert db.environment["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert p.secret_files[f"{overlay.SECRETS_DIR}/postgres_password"] == "devpass"
    assert web.depends_on["db"].condition == "service_healthy"


def test_a_second_plan_on_the_hardened_render_changes_nothing_it_already_did(tools: Toolchain, tmp_path: Path) -> None:
    root = _stack(tmp_path)
    first = overlay.plan(_render(tools, root, "compose.yaml"))
    (root / "compose.hardened.yaml").write_text(first.text())
    for path, content in first.secret_files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    again = overlay.plan(_render(tools, root, "compose.yaml", "compose.hardened.yaml"))
    assert again.changes == () and again.document == {"services": {}}, again.changes


def test_skipped_services_and_a_hardened_stack_are_left_alone(tools: Toolchain, tmp_path: Path) -> None:
    hardened = """
    services:
      api:
        build: .
        read_only: true
        tmpfs: [/tmp]
        cap_drop: [ALL]
        security_opt: ["no-new-privileges:true"]
        cpus: "0.5"
        mem_limit: 256m
        pids_limit: 64
        ports: ["127.0.0.1:8000:8000"]
        healthcheck: {test: ["CMD", "/probe"]}
    """
    root = _stack(tmp_path, hardened)
    p = overlay.plan(_render(tools, root, "compose.yaml"))
    assert p.changes == () and p.manual == () and p.document == {"services": {}}
    root = _stack(tmp_path)
    p = overlay.plan(_render(tools, root, "compose.yaml"), skip=["db", "cache"])
    assert {c.service for c in p.changes} <= {"web", "worker"}


def test_the_tags_compose_reads_are_written() -> None:
    doc = {"ports": overlay.Override([{"target": 80}]), "environment": {"A": overlay.Reset()}}
    text = yaml.dump(doc, Dumper=overlay._Dumper, sort_keys=False)
    assert "ports: !override" in text and "A: !reset " in text
    loaded = yaml.load(text, Loader=ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    assert loaded["ports"] == [{"target": 80}] and list(loaded["environment"]) == ["A"]


@pytest.mark.parametrize(
    ("image", "kind", "major"),
    [
        ("postgres:16", "postgres", "16"),
        ("docker.io/library/postgres:16.4-alpine@sha256:" + "a" * 64, "postgres", "16"),
        ("bitnami/redis:7.2", "redis", "7"),
        ("mariadb", "mysql", ""),
        ("${DB_IMAGE:-postgres}:15", "", ""),
        ("ghcr.io/acme/web:1.0", "", "1"),
    ],
)
def test_datastores_are_known_by_their_image_name(image: str, kind: str, major: str) -> None:
    assert datastores.kind_of(image) == kind
    assert datastores.major_version(image) == major


def test_variables_come_from_the_committed_example_file(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("# for contributors\nexport SECRET_KEY='dev-only'\nDEBUG=1\n")
    (tmp_path / "env.example").write_text("SECRET_KEY=ignored\nAPI_TOKEN=x\n")
    got = overlay.needed_variables(["SECRET_KEY", "API_TOKEN", "MISSING", "SET"], tmp_path, {"SET": "1"})
    assert got == [
        overlay.Variable("API_TOKEN", "x", "env.example"),
        overlay.Variable("MISSING", None, ""),
        overlay.Variable("SECRET_KEY", "dev-only", ".env.example"),
    ]


def test_a_password_from_an_env_file_is_a_manual_step_not_a_broken_swap(tools: Toolchain, tmp_path: Path) -> None:
    """The image refuses POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE together; an overlay cannot unset an
    env_file's value, so the plan names the step instead of adding the file variable."""
    root = _stack(
        tmp_path,
        """
        services:
          db:
            image: postgres:15
            env_file: [.env.db]
        """,
    )
    (root / ".env.db").write_text("POSTGRES_PASSWORD=from-the-file\n")
    p = overlay.plan(_render(tools, root, "compose.yaml"))
    assert "environment" not in p.document["services"]["db"] and p.secret_files == {}
    assert p.manual == (
        "db: POSTGRES_PASSWORD comes from an env_file; replace it there with POSTGRES_PASSWORD_FILE "
        "and a Compose secret under /run/secrets",
    )


def test_a_reset_key_is_read_as_coming_from_no_file(tools: Toolchain, tmp_path: Path) -> None:
    root = _stack(tmp_path, "services:\n  db:\n    image: postgres:15\n    environment: {POSTGRES_PASSWORD: x}\n")
    (root / "over.yaml").write_text("services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: !reset null\n")
    r = _render(tools, root, "compose.yaml", "over.yaml")
    assert "POSTGRES_PASSWORD" not in r.project.services["db"].environment
    assert composefile.source_environment(r, "db") == {"POSTGRES_PASSWORD": None}
