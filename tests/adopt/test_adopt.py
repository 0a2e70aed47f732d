"""`pipelines init`: discovery and the files it writes, on repositories shaped like real ones (no engine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import adopt, config, render
from pipelines.adopt import write
from pipelines.errors import InputError
from pipelines.result import Result, exit_code
from tests.harness import ROOT, examples, run_cli_outcome

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BIN = Path(sys.executable).parent


def tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip())
    return root


def git(root: Path, *paths: str) -> None:
    """A git work tree with ``paths`` committed (to the index: what `git ls-files` reports)."""
    if shutil.which("git") is None:
        if IN_CI:
            pytest.fail("CI=true and git is not installed: init reads which env files are committed")
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    if paths:
        subprocess.run(["git", "-C", str(root), "add", "--", *paths], check=True, timeout=30)


def init(root: Path, **kw: Any) -> Result:
    return adopt.run(adopt.Options(directory=root, **kw))


def loaded(root: Path) -> config.Config:
    """The written config, through the project's own loader: any problem is an exception here."""
    return config.load(root / "pipeline.toml")


def table(result: Result, title: str) -> list[tuple[str, ...]]:
    return [row for t in result.tables if t.title == title for row in t.rows]


def undecided(result: Result) -> list[str]:
    return [f"{r[0]} {r[1]}" for r in table(result, "not decided")]


PY_DOCKERFILE = """
FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"
CMD ["gunicorn", "proj.wsgi", "-b", "0.0.0.0:8000"]
"""


@pytest.fixture
def django(tmp_path: Path) -> Path:
    root = tree(
        tmp_path / "shop",
        {
            "Dockerfile": PY_DOCKERFILE,
            "requirements.txt": "django==5.0\ncelery==5.4\n",
            "manage.py": "",
            ".env": "SECRET_KEY=dev\n",
            "compose.yaml": """
                services:
                  web:
                    build: .
                    ports: ["8000:8000"]
                    env_file: .env
                    depends_on: [db, redis]
                  worker:
                    build: .
                    command: celery -A proj worker -l info
                    depends_on:
                      db:
                        condition: service_healthy
                      redis:
                        condition: service_started
                  db:
                    image: postgres:16-alpine
                    healthcheck:
                      test: ["CMD", "pg_isready"]
                  redis:
                    image: docker.io/library/redis:7
                """,
            "docker-compose.override.yml": """
                services:
                  web:
                    volumes: !override
                      - .:/app
                    command: python manage.py runserver 0.0.0.0:8000
                """,
        },
    )
    git(root, "Dockerfile", "requirements.txt", "compose.yaml", "docker-compose.override.yml")  # .env is not
    return root


def test_django_celery_postgres_redis(django: Path) -> None:
    r = init(django)
    assert r.headline == "found 4 services (2 built), 2 Compose files; wrote 4 files"
    found = {row[0]: row for row in table(r, "found")}
    assert set(found) == {"web", "db", "redis"}
    assert found["web"][1] == "built (also worker)" and found["web"][7] == "pip (requirements.txt)"
    assert found["db"][1] == "postgres" and found["redis"][1] == "redis"
    cfg = loaded(django)
    assert [n for n, i in cfg.images.items() if not i.is_base] == ["web"]
    assert cfg.images["web"].context == django.resolve()
    assert cfg.compose.files == (django.resolve() / "compose.yaml",)
    assert list(cfg.environments) == ["dev"]
    assert cfg.environments["dev"].compose == (django.resolve() / "docker-compose.override.yml",)
    open_items = undecided(r)
    # The worker shares the web image (and its EXPOSE) but publishes nothing itself.
    assert any(i.startswith("compose.yaml:7 service worker publishes no port") for i in open_items), open_items
    assert any(i.startswith("compose.yaml:2 service web: env_file .env is not committed") for i in open_items)
    assert not any("service web publishes no port" in i for i in open_items)
    text = (django / "pipeline.toml").read_text()
    assert "# TODO compose.yaml:2: service web: env_file .env is not committed" in text
    assert {p.relative_to(django.resolve()).as_posix() for p in r.artifacts} == {
        "pipeline.toml",
        "noxfile.py",
        ".github/workflows/pipelines.yml",
        ".dockerignore",
    }
    assert table(r, "next") == [("nox -s lint",)]
    assert json.loads(json.dumps(render.to_json(r)))["environments"] == {"dev": ["docker-compose.override.yml"]}
    assert "worker publishes no port" in render.terminal(r) and "nox -s lint" in render.markdown(r)
    assert exit_code(r) == 0


def test_fastapi_uv_with_the_dockerfile_in_docker(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "api",
        {
            "pyproject.toml": '[project]\nname = "Orders API"\nversion = "1.0"\n',
            "uv.lock": "version = 1\n",
            "app/main.py": "",
            "docker/Dockerfile": """
                FROM ghcr.io/astral-sh/uv:python3.12-bookworm-slim AS builder
                WORKDIR /app
                COPY pyproject.toml uv.lock ./
                RUN uv sync --frozen --no-dev
                FROM python:3.12-slim AS runtime
                COPY --from=builder /app/.venv /app/.venv
                COPY app ./app
                EXPOSE 8080
                """,
            "docker/compose.yaml": """
                services:
                  api:
                    build:
                      context: ..
                      dockerfile: docker/Dockerfile
                      target: runtime
                      args:
                        - PYTHON_VERSION=3.12
                    ports:
                      - target: 8080
                        published: 8080
                    healthcheck:
                      test: ["CMD", "python", "-c", "print(1)"]
                  postgres:
                    image: postgis/postgis:16-3.4
                """,
            "docker/compose.prod.yaml": "services:\n  api:\n    restart: always\n",
            "docker/compose.staging.yaml": "services:\n  api:\n    restart: always\n",
        },
    )
    r = init(root)
    assert r.headline.startswith("found 2 services (1 built), 3 Compose files")
    svc = r.data["services"][0]
    assert (svc["name"], svc["context"], svc["dockerfile"], svc["target"]) == (
        "api",
        ".",
        "docker/Dockerfile",
        "runtime",
    )
    assert svc["python_dependencies"] == "uv" and svc["python_base"] is True and svc["ports"] == ["8080"]
    cfg = loaded(root)
    assert cfg.project.name == "Orders API"
    assert cfg.registry.namespace == "orders-api"
    assert cfg.images["api"].dockerfile == root.resolve() / "docker" / "Dockerfile"
    assert cfg.images["api"].target == "runtime"
    assert set(cfg.environments) == {"dev", "staging", "prod"}
    assert cfg.environments["prod"].compose == (root.resolve() / "docker/compose.prod.yaml",)
    assert cfg.environments["prod"].push and not cfg.environments["dev"].push
    assert r.data["compose"][0]["services"][1]["datastore"] == "postgres"
    assert r.data["compose"][0]["services"][0]["args"] == {"PYTHON_VERSION": "3.12"}
    assert not any("api" in u for u in undecided(r)), undecided(r)
    # The context is the root: its .dockerignore is written there, and keeps what the Dockerfile copies.
    ignore = (root / ".dockerignore").read_text().splitlines()
    assert ".venv" in ignore and "app" not in ignore and "artifacts" in ignore


def test_a_directory_the_context_holds_is_not_ignored_as_reports(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "ml", {"Dockerfile": "FROM python:3.12\nCOPY . /app\nEXPOSE 80\n", "artifacts/model.bin": ""}
    )
    init(root)
    ignore = (root / ".dockerignore").read_text().splitlines()
    assert "artifacts" not in ignore and ".git" in ignore


def test_flask_with_pip_requirements_and_no_compose(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "flaskr",
        {
            "Dockerfile": PY_DOCKERFILE,
            "requirements.txt": "flask\n",
            "requirements-dev.txt": "pytest\n",
            "flaskr/__init__.py": "",
        },
    )
    r = init(root)
    assert r.headline == "found 1 service (1 built), 0 Compose files; wrote 4 files"
    assert r.data["services"][0]["name"] == "flaskr"
    assert r.data["services"][0]["python_dependencies"] == "pip (requirements-dev.txt, requirements.txt)"
    cfg = loaded(root)
    assert "[compose]" not in (root / "pipeline.toml").read_text()
    assert cfg.compose.files == () and list(cfg.environments) == ["dev"]


def test_a_worker_with_no_port_and_named_dockerfiles(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "jobs",
        {
            "services/worker/Dockerfile": 'FROM python:3.11-slim\nCOPY worker.py .\nCMD ["python", "worker.py"]\n',
            "services/worker/worker.py": "",
            "services/worker/requirements.txt": "rq\n",
            "docker/Dockerfile.scheduler": "FROM python:3.11\nCOPY services/worker/worker.py .\n",
            "web.Dockerfile": "FROM python:3.11\nEXPOSE 80\n",
            "node_modules/pkg/Dockerfile": "FROM node:20\n",
            ".venv/lib/Dockerfile": "FROM scratch\n",
            "third_party/lib/Dockerfile": "FROM alpine\n",
        },
    )
    r = init(root)
    services = {s["name"]: s for s in r.data["services"]}
    assert set(services) == {"worker", "scheduler", "web"}
    assert services["worker"]["context"] == "services/worker"
    # What it copies lies under the root, not beside it in docker/.
    assert (services["scheduler"]["context"], services["scheduler"]["dockerfile"]) == (
        ".",
        "docker/Dockerfile.scheduler",
    )
    assert services["web"]["dockerfile"] == "web.Dockerfile"
    open_items = undecided(r)
    assert "services/worker/Dockerfile service worker publishes no port" in " | ".join(open_items)
    assert not any("service web publishes no port" in i for i in open_items)
    cfg = loaded(root)
    assert sorted(n for n, i in cfg.images.items() if not i.is_base) == ["scheduler", "web", "worker"]
    assert (root / "services/worker/.dockerignore").is_file()


@pytest.mark.parametrize(
    ("files", "style"),
    [
        ({"pyproject.toml": '[tool.poetry]\nname = "p"\n', "poetry.lock": ""}, "poetry"),
        ({"pyproject.toml": '[project]\nname = "p"\n', "pdm.lock": ""}, "pdm"),
        ({"Pipfile": "", "Pipfile.lock": "{}"}, "pipenv"),
        ({"pyproject.toml": '[tool.poetry]\nname = "p"\n'}, "poetry (no lock file)"),
        ({"setup.py": ""}, "setuptools (no lock file)"),
        ({}, "none found"),
    ],
)
def test_python_dependency_styles(tmp_path: Path, files: dict[str, str], style: str) -> None:
    root = tree(tmp_path / "r", {"Dockerfile": "FROM python:3.12\nEXPOSE 8000\n", **files})
    r = init(root, dry_run=True)
    assert r.data["services"][0]["python_dependencies"] == style
    assert r.artifacts == () and not (root / "pipeline.toml").exists()


def test_multi_stage_with_a_node_asset_stage(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "site",
        {
            "Dockerfile": """
                # syntax=docker/dockerfile:1
                FROM --platform=$BUILDPLATFORM node:20-bookworm AS assets
                WORKDIR /src
                COPY package.json package-lock.json ./
                COPY node_modules/.cache ./node_modules/.cache
                RUN npm ci && npm run build

                FROM python:3.12-slim AS base
                COPY --from=assets /src/dist /app/static
                COPY .env.example \\
                     /app/.env.example
                FROM base AS runtime
                EXPOSE 8000
                """,
            "package.json": "{}",
            "package-lock.json": "{}",
            "node_modules/.cache/x": "",
            ".env.example": "",
            "compose.yml": """
                services:
                  site:
                    build: {context: ., target: runtime}
                    ports: ['8000']
                  beat:
                    build: .
                  docs:
                    build: {context: ., args: {DOCS: "1"}}
                    ports: ['8001']
                """,
        },
    )
    r = init(root)
    svc = r.data["services"][0]
    assert svc["python_base"] is True and svc["base"] == "python:3.12-slim" and svc["target"] == "runtime"
    # No target is the last stage: the same image as the site's, with different arguments another one.
    assert svc["also"] == ["beat"] and [s["name"] for s in r.data["services"]] == ["site", "docs"]
    assert "compose.yml:5 service beat publishes no port" in " | ".join(undecided(r))
    assert not any("not a Python image" in u for u in undecided(r))
    ignore = (root / ".dockerignore").read_text().splitlines()
    # The Dockerfile copies node_modules/.cache and .env.example from the context: neither may be ignored.
    assert "**/node_modules" not in ignore and "**/.env.*" not in ignore
    assert ".git" in ignore and ".env" in ignore
    written = {row[0]: row[1] for row in table(r, "written")}
    assert "**/node_modules" in written[".dockerignore"] and "**/.env.*" in written[".dockerignore"]
    loaded(root)


def test_what_cannot_be_decided_is_written_and_listed(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "mixed",
        {
            "app/Dockerfile": "ARG BASE=python:3.12\nFROM ${BASE}\nEXPOSE 8000\n",
            "proxy/Dockerfile": "FROM nginx:1.27\nEXPOSE 80\n",
            "compose.yaml": """
                services:
                  app:
                    build: ./app
                    ports: ["8000:8000"]
                    env_file:
                      - path: ./missing.env
                        required: false
                  proxy:
                    build: proxy
                    ports: ["80:80"]
                  debug:
                    build: ./app
                    profiles: [debug]
                """,
            "deploy/docker-compose.yml": "services:\n  cache:\n    image: memcached\n",
            "compose.test.yaml": "services: {}\n",
        },
    )
    r = init(root)
    items = undecided(r)
    joined = " | ".join(items)
    assert "app/Dockerfile:2 service app: the final stage starts FROM ${BASE}" in joined
    assert "proxy/Dockerfile:1 service proxy: the final stage starts FROM nginx:1.27, not a Python image" in joined
    assert "compose.yaml:2 service app: env_file ./missing.env does not exist" in joined
    assert "compose.yaml:11 service debug runs only with profile debug" in joined
    assert "deploy/docker-compose.yml no service has build:" in joined
    assert "deploy/docker-compose.yml a second base Compose file" in joined
    assert "compose.test.yaml overlay 'test' is not mapped to an environment" in joined
    text = (root / "pipeline.toml").read_text()
    # Each one beside its section.
    proxy = text.index("[services.proxy]")
    assert proxy < text.index("# TODO proxy/Dockerfile:1:") < text.index("[compose]")
    assert text.index("[compose]") < text.index("# TODO compose.yaml:11: service debug runs only")
    assert len(r.notices) == len(items)
    loaded(root)


@pytest.mark.parametrize(
    ("image", "python"),
    [
        ("python:3.12-slim", True),
        ("docker.io/library/python@sha256:" + "a" * 64, True),
        ("ghcr.io/astral-sh/uv:python3.12-bookworm-slim", True),
        ("gcr.io/distroless/python3-debian12", True),
        ("pypy:3.10", True),
        ("ghcr.io/astral-sh/uv:0.5", False),
        ("node:20", False),
        ("nginx:1.27", False),
        ("scratch", False),
        ("${BASE_IMAGE}", None),
    ],
)
def test_python_base_images(image: str, python: bool | None) -> None:
    from pipelines.adopt.project import is_python_image

    assert is_python_image(image) is python


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "bad", {"Dockerfile": "FROM python:3.12\n", "compose.yaml": "services:\n  web:\n    build: [\n"}
    )
    with pytest.raises(InputError) as exc:
        init(root)
    assert exc.value.exit_code == 2
    assert "compose.yaml:4" in exc.value.what and "is not valid YAML" in exc.value.what
    assert not (root / "pipeline.toml").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "top level is not a mapping"),
        ("services: [web]\n", "compose.yaml:1: `services` is not a mapping"),
        ("a: &x [*x]\n", ""),
        ("services:\n  web: {build: .}\n  web: {build: .}\n", ""),
    ],
)
def test_unusable_compose_is_an_input_error_or_read(tmp_path: Path, text: str, expected: str) -> None:
    root = tree(tmp_path / "odd", {"Dockerfile": "FROM python:3.12\n", "compose.yaml": text})
    try:
        init(root, dry_run=True)
    except InputError as exc:
        assert expected in exc.what and "compose.yaml" in exc.what
    else:
        assert not expected


def test_existing_files_are_never_overwritten_unless_forced(django: Path) -> None:
    (django / "pipeline.toml").write_text("# mine\n")
    (django / ".dockerignore").write_text("mine\n")
    with pytest.raises(InputError) as exc:
        init(django)
    assert str(django.resolve() / "pipeline.toml") in exc.value.what and exc.value.exit_code == 2
    assert (django / "pipeline.toml").read_text() == "# mine\n"
    assert not (django / "noxfile.py").exists()  # nothing is written when one file is in the way
    r = init(django, force=True)
    loaded(django)
    assert (django / ".dockerignore").read_text() == "mine\n"  # a context's ignore file is the repository's
    assert ".dockerignore" not in {p.name for p in r.artifacts}
    assert any(row[0] == ".dockerignore" and row[1].startswith("not written") for row in table(r, "written"))


def test_symlinks_are_not_written_through(django: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    (django / "pipeline.toml").symlink_to(outside)
    with pytest.raises(InputError, match="symbolic link"):
        init(django, force=True)
    assert not outside.exists()


def test_a_repository_with_nothing_to_build(tmp_path: Path) -> None:
    root = tree(tmp_path / "lib", {"compose.yaml": "services:\n  db:\n    image: postgres\n", "README.md": ""})
    with pytest.raises(InputError, match="found no Dockerfile"):
        init(root)
    with pytest.raises(InputError, match="is not a directory"):
        init(root / "README.md")


def test_odd_files_do_not_hang_or_crash_discovery(tmp_path: Path) -> None:
    root = tree(tmp_path / "odd", {"Dockerfile": "FROM python:3.12\nEXPOSE 1\n", "pyproject.toml": "[project\n"})
    os.mkfifo(root / "uv.lock.fifo")
    (root / "pyproject.toml").unlink()
    os.mkfifo(root / "pyproject.toml")  # read as a file it would block forever
    (root / "compose.yaml").symlink_to("/etc/passwd")  # not this repository's file: not read
    (root / "Dockerfile.dir").mkdir()
    r = init(root, dry_run=True)
    assert [s["name"] for s in r.data["services"]] == ["odd"] and r.data["compose"] == []


def test_the_noxfile_is_python_and_calls_the_reusable_sessions(django: Path) -> None:
    init(django)
    text = (django / "noxfile.py").read_text()
    compile(text, "noxfile.py", "exec")
    # The real nox reads it: the package is importable here, so the script block asks for no install.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "nox", "-l"], cwd=django, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "* build [ci]" in r.stdout and "* ci [ci]" in r.stdout


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed in the test environment (requirements/dev.txt)")
        pytest.skip(f"{name} not installed here")
    return found


def test_the_written_workflow_passes_zizmor_and_the_schema(django: Path) -> None:
    init(django)
    wf = django / ".github/workflows/pipelines.yml"
    data = yaml.safe_load(wf.read_text())
    assert data["permissions"] == {"contents": "read"}
    steps = data["jobs"]["lint"]["steps"]
    assert steps[0]["with"]["persist-credentials"] is False
    assert all("@" in s["uses"] and len(s["uses"].split("@")[1]) == 40 for s in steps if "uses" in s)
    assert not any("${{" in s.get("run", "") for s in steps)
    zizmor = [_tool("zizmor"), "--offline", "--no-config", "--persona", "regular", "--min-severity", "medium"]
    z = subprocess.run(
        [*zizmor, "--format", "json", str(wf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert z.returncode == 0 and json.loads(z.stdout) == [], z.stdout + z.stderr
    s = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(wf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert s.returncode == 0 and "ok -- validation done" in s.stdout, s.stdout + s.stderr


# --------------------------------------------------------------------------- any tree: a Result or one InputError

_names = st.sampled_from(["web", "worker", "API", "db", "a.b", "x_y", "-bad", "Über", "svc1"])
_dockerfile_text = st.sampled_from(
    [
        "FROM python:3.12\nEXPOSE 8000\n",
        "FROM node:20 AS a\nFROM python:3.11-slim\nCOPY --from=a /x /x\n",
        "FROM ${X}\n",
        "FROM scratch AS runtime\n",
        "",
        "COPY . .\n",
        "FROM python AS b\nFROM b\nHEALTHCHECK NONE\n",
        "\xff\xfe",
    ]
)
_paths = st.sampled_from(["Dockerfile", "app/Dockerfile", "docker/Dockerfile.api", "x.dockerfile", "Containerfile"])
_build = st.one_of(
    st.none(),
    st.sampled_from([".", "app", "./docker", "..", "/etc", "missing", "https://github.com/a/b.git", 3]),
    st.fixed_dictionaries(
        {},
        optional={
            "context": st.sampled_from([".", "app", "docker", "nope", ""]),
            "dockerfile": st.sampled_from(["Dockerfile", "Dockerfile.api", "../Dockerfile", "none"]),
            "target": st.sampled_from(["runtime", "a", "b", "", "no such"]),
            "args": st.one_of(
                st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
                st.lists(st.text(max_size=5), max_size=2),
            ),
            "dockerfile_inline": st.just("FROM python"),
        },
    ),
)
_service = st.fixed_dictionaries(
    {},
    optional={
        "build": _build,
        "image": st.sampled_from(["postgres:16", "redis", "valkey/valkey", "nginx", "", "${IMG}"]),
        "ports": st.lists(
            st.one_of(
                st.sampled_from(["80", "8000:8000", "127.0.0.1::9000"]),
                st.integers(0, 70000),
                st.fixed_dictionaries({"target": st.integers(1, 9)}),
            ),
            max_size=2,
        ),
        "healthcheck": st.one_of(st.none(), st.just({"test": ["CMD", "true"]}), st.just({"disable": True})),
        "profiles": st.lists(st.sampled_from(["dev", "debug"]), max_size=2),
        "env_file": st.one_of(
            st.just(".env"),
            st.lists(st.sampled_from([".env", "x.env", "../../etc/passwd"]), max_size=2),
            st.just([{"path": ".env"}]),
        ),
        "depends_on": st.one_of(
            st.lists(_names, max_size=2), st.dictionaries(_names, st.just({"condition": "service_started"}), max_size=2)
        ),
    },
)
_compose: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"services": st.dictionaries(_names, st.one_of(_service, st.none(), st.just([1])), max_size=4)}
    ),
    st.just({"services": None}),
    st.just([]),
    st.just("text"),
)
_compose_names = st.sampled_from(
    [
        "compose.yaml",
        "docker-compose.yml",
        "compose.prod.yaml",
        "docker-compose.override.yml",
        "docker/compose.yml",
        "deploy/compose.staging.yml",
        "compose.ci.yaml",
    ]
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dockerfiles=st.dictionaries(_paths, _dockerfile_text, max_size=3),
    composes=st.dictionaries(_compose_names, _compose, max_size=3),
    extra=st.lists(
        st.sampled_from(
            [".env", "uv.lock", "app/poetry.lock", "requirements.txt", "pipeline.toml", "app/.dockerignore"]
        ),
        max_size=3,
    ),
    force=st.booleans(),
)
def test_any_tree_gives_a_result_or_an_input_error(
    dockerfiles: dict[str, str], composes: dict[str, Any], extra: list[str], force: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        for rel, text in dockerfiles.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
        for rel, doc in composes.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(yaml.safe_dump(doc))
        for rel in extra:
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("")
        try:
            r = init(root, force=force)
        except InputError as exc:
            assert exc.exit_code == 2 and exc.what
            return
        assert isinstance(r, Result) and r.headline.startswith("found ")
        # Whatever was found, what was written is a config the pipeline accepts.
        loaded(root)


def test_the_init_command_writes_the_files_and_reports_in_json(django: Path) -> None:
    r = run_cli_outcome("init", str(django), "--format", "json", cwd=django)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["stage"] == "init" and doc["status"] == "passed"
    written = sorted(str(Path(p).relative_to(django)) for p in doc["artifacts"])
    assert "pipeline.toml" in written and "noxfile.py" in written
    # The config it wrote is one the other commands accept.
    cfg = run_cli_outcome("config", cwd=django)
    assert cfg.returncode == 0, cfg.stderr
    again = run_cli_outcome("init", str(django), cwd=django)
    assert again.returncode == 2 and "pipeline.toml" in again.stderr and "--force" in again.stderr


def test_the_written_workflow_installs_this_distribution_not_the_unrelated_pipelines_package() -> None:
    # `pipelines` on PyPI is somebody else's package: the workflow must name the distribution this one is.

    dist = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    runs = [
        line.strip()
        for line in write.workflow().splitlines()
        if line.strip().startswith("run:") and "pip install" in line
    ]
    assert runs and all(f"'{dist}[tools]'" in r for r in runs), runs
    assert not any(re.search(r"\bpipelines\b(?!\[)", r.replace(dist, "")) for r in runs), runs


def test_compose_files_two_levels_down_are_found_when_none_is_in_the_usual_places(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app/Dockerfile": 'FROM python:3.12-slim\nCOPY . /app\nCMD ["python", "/app/main.py"]\n',
            "docker/compose/docker-compose.yml": """
                services:
                  web:
                    build: {context: ../../app}
                    ports: ["8000:8000"]
                  db:
                    image: postgres:16
            """,
            "docker/compose/docker-compose.prod.yml": "services:\n  web:\n    restart: always\n",
            # Other setups, not the repository's own services: never taken as its Compose file.
            "examples/compose.yaml": "services:\n  demo:\n    image: nginx\n",
            "tests/fixtures/compose.yaml": "services:\n  t:\n    build: .\n",
            ".devcontainer2/compose.yaml": "services:\n  ide:\n    build: .\n",
            # A side tool's stack runs published images only: it is walked past before docker/compose/.
            "aux/compose.yaml": "services:\n  search:\n    image: opensearch\n",
        },
    )
    found = adopt.discover(root)
    assert found.base_compose == ("docker/compose/docker-compose.yml",), found.base_compose
    assert tuple(found.environments["prod"]) == ("docker/compose/docker-compose.prod.yml",)
    assert {s.name for s in found.services} >= {"web"}
    assert exit_code(init(root)) == 0
    cfg = loaded(root)
    assert [f.relative_to(root).as_posix() for f in cfg.compose.files] == ["docker/compose/docker-compose.yml"]
