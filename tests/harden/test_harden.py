"""`pipelines harden`: fixture repositories shaped like real ones, adopted with init, then hardened (no engine)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import adopt, config, harden
from pipelines.errors import InputError
from pipelines.harden import command, convert, health, pyversion, syslibs
from pipelines.harden.parse import Instruction
from pipelines.result import Context, Outcome, Result
from pipelines.tools import Toolchain
from tests.harness import examples, run_cli_outcome


def tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip())
    return root


def adopted(root: Path, files: Mapping[str, str]) -> Path:
    tree(root, files)
    adopt.run(adopt.Options(directory=root))
    return root


def run(root: Path, *services: str, dry_run: bool = False) -> Result:
    ctx = Context(config.load(root / "pipeline.toml"), Toolchain(), environ={})
    return harden.run(ctx, harden.Options(services=services, dry_run=dry_run))


def check(result: Result, name: str) -> str:
    found = [c for c in result.checks if c.name == name]
    assert found, [c.name for c in result.checks]
    return found[0].detail


FASTAPI_UV = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "1.0"
        requires-python = ">=3.11"
        dependencies = ["fastapi", "uvicorn"]
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
    """,
    "uv.lock": "version = 1\n",
    "src/shop/main.py": """
        from fastapi import FastAPI
        app = FastAPI()

        @app.get("/healthz")
        def healthz():
            return {"ok": True}
    """,
    "Dockerfile": """
        FROM python:3.12-slim
        COPY --from=ghcr.io/astral-sh/uv:0.5.11 /uv /bin/
        WORKDIR /app
        COPY pyproject.toml uv.lock ./
        RUN uv sync --frozen --no-install-project
        COPY . .
        RUN uv sync --frozen
        ENV PATH="/app/.venv/bin:$PATH" PORT=8080
        CMD uvicorn shop.main:app --host 0.0.0.0 --port ${PORT:-8000}
    """,
}

FLASK_PIP = {
    "requirements.txt": "flask==3.0.0 --hash=sha256:aaaa\n",
    "app.py": """
        from flask import Flask
        app = Flask(__name__)

        @app.route("/ping")
        def ping():
            return "pong"
    """,
    "Dockerfile": """
        FROM python:3.11-slim-bookworm
        RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libjpeg-dev gcc \\
            && rm -rf /var/lib/apt/lists/*
        WORKDIR /srv
        COPY requirements.txt .
        RUN pip install --no-cache-dir -r requirements.txt && pip install gunicorn==22.0.0
        COPY . .
        RUN useradd -r web
        USER web
        EXPOSE 5000
        CMD ["gunicorn", "-b", "0.0.0.0:5000", "app:app"]
    """,
}

DJANGO_CELERY = {
    "requirements.txt": "django==5.0\ncelery==5.3\n",
    "proj/urls.py": """
        from django.urls import path
        urlpatterns = [path("health/", lambda r: None)]
    """,
    "manage.py": "print('manage')\n",
    "Dockerfile": """
        FROM python:3.11
        WORKDIR /code
        COPY requirements.txt .
        RUN pip install -r requirements.txt
        COPY . .
        RUN python manage.py collectstatic --noinput
        EXPOSE 8000
        CMD python manage.py migrate && gunicorn proj.wsgi -b 0.0.0.0:8000
    """,
    "compose.yaml": """
        services:
          web:
            build: .
            ports: ["8000:8000"]
          worker:
            build: .
            command: celery -A proj worker
          redis:
            image: redis:7
    """,
}

WORKER = {
    "requirements.txt": "rq==1.16\n",
    "worker.py": "print('work')\n",
    "Dockerfile": """
        FROM python:3.11-slim
        WORKDIR /app
        COPY requirements.txt .
        RUN pip install -r requirements.txt
        COPY worker.py .
        CMD ["python", "worker.py"]
    """,
}

POETRY = {
    "pyproject.toml": """
        [tool.poetry]
        name = "svc"
        version = "0.1.0"
        [build-system]
        requires = ["poetry-core"]
        build-backend = "poetry.core.masonry.api"
    """,
    "poetry.lock": "# lock\n",
    "svc/__init__.py": "",
    "Dockerfile": """
        FROM python:3.11-bookworm
        RUN pip install poetry==1.8.3
        WORKDIR /app
        COPY pyproject.toml poetry.lock ./
        RUN poetry config virtualenvs.create false && poetry install --no-root --only main
        COPY svc ./svc
        EXPOSE 9000
        CMD ["python", "-m", "svc"]
    """,
}

PDM = {
    "pyproject.toml": """
        [project]
        name = "svc"
        version = "0.1.0"
        [tool.pdm]
        distribution = false
    """,
    "pdm.lock": "# lock\n",
    "main.py": "print('hi')\n",
    "Dockerfile": """
        FROM python:3.11-slim
        WORKDIR /app
        RUN pip install pdm
        COPY pyproject.toml pdm.lock ./
        RUN pdm install --prod --no-self
        COPY main.py .
        CMD ["pdm", "run", "python", "main.py", "--port", "7000"]
    """,
}

NODE_ASSETS = {
    "requirements.txt": "django==5.0\n",
    "package.json": "{}\n",
    "Dockerfile": """
        FROM --platform=$BUILDPLATFORM node:20 AS assets
        WORKDIR /build
        COPY package.json .
        RUN npm install && npm run build

        FROM python:3.11-slim AS app
        WORKDIR /app
        COPY requirements.txt .
        RUN pip install -r requirements.txt
        COPY . .
        COPY --from=assets /build/dist ./static
        EXPOSE 8000
        CMD ["gunicorn", "proj.wsgi"]
    """,
}


def test_fastapi_uv_is_hardened_with_the_lock_exported_and_the_command_in_exec_form(tmp_path: Path) -> None:
    root = adopted(tmp_path, FASTAPI_UV)
    res = run(root)
    assert res.passed
    df = (root / "Dockerfile").read_text()
    assert "FROM ${BUILDER_IMAGE} AS builder" in df and "FROM ${RUNTIME_IMAGE} AS runtime" in df
    assert "uv export --frozen --no-dev" in df and "--require-hashes" in df
    assert "--mount=type=secret,id=ca-bundle" in df and "--mount=type=cache,target=/root/.cache/pip" in df
    # The project itself is installed (uv sync without --no-install-project), the uv binary is not copied.
    assert "install --no-compile --no-deps /app" in df and "astral-sh/uv" not in df
    runtime = df.split("FROM ${RUNTIME_IMAGE}")[1]
    assert "COPY --from=builder --chown=0:0 /opt/venv /opt/venv" in runtime
    assert "COPY --from=builder --chown=0:0 /app /app" in runtime
    assert "USER 65532:65532" in runtime and "RUN " not in runtime
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime
    # ${PORT:-8000} with PORT=8080 set by the Dockerfile: the ENV wins, and the report says it is fixed now.
    assert 'CMD ["uvicorn", "shop.main:app", "--host", "0.0.0.0", "--port", "8080"]' in runtime
    assert "http://127.0.0.1:8080/healthz" in runtime
    detail = check(res, "shop")
    assert "$PORT fixed" in detail and "src/shop/main.py:4" in detail and "3.12" in detail
    # The original is kept beside it (not in git), and pipeline.toml names the golden bases.
    assert (root / "Dockerfile.orig").read_text() == textwrap.dedent(FASTAPI_UV["Dockerfile"]).lstrip()
    cfg = config.load(root / "pipeline.toml")
    assert dict(cfg.images["shop"].bases) == {"BUILDER_IMAGE": "python-builder", "RUNTIME_IMAGE": "python-runtime"}
    assert cfg.images["python-builder"].golden == "python-builder"


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = adopted(tmp_path, FLASK_PIP)
    run(root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "artifacts" not in p.parts}
    again = run(root)
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "artifacts" not in p.parts}
    assert before == after
    assert again.headline.startswith("nothing to change")
    assert [c.outcome for c in again.checks] == [Outcome.NA]
    assert "already on the golden bases" in again.checks[0].detail


def test_flask_pip_keeps_hashes_maps_system_libraries_and_installs_named_packages(tmp_path: Path) -> None:
    root = adopted(tmp_path, FLASK_PIP)
    res = run(root)
    df = (root / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r requirements.txt" in df
    assert "install --no-compile gunicorn==22.0.0" in df
    assert "apt-get install -y --no-install-recommends libpq-dev libjpeg-dev" in df
    assert "gcc" not in df.split("FROM ${BUILDER_IMAGE}")[1].split("WORKDIR")[0]
    assert "useradd" not in df and "USER web" not in df
    assert 'CMD ["gunicorn", "-b", "0.0.0.0:5000", "app:app"]' in df
    assert "http://127.0.0.1:5000/ping" in df
    detail = res.checks[0].detail
    assert "libpq5" in detail and "libjpeg62-turbo" in detail and "packages.txt" in detail
    assert "USER web replaced by 65532:65532" in detail


def test_django_migration_chain_is_split_and_reported_as_two_compose_services(tmp_path: Path) -> None:
    root = adopted(tmp_path, DJANGO_CELERY)
    res = run(root)
    df = (root / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "proj.wsgi", "-b", "0.0.0.0:8000"]' in df
    assert "migrate" not in df.split("FROM ${RUNTIME_IMAGE}")[1]
    # collectstatic runs in the builder, with the venv's python first on PATH.
    builder = df.split("FROM ${RUNTIME_IMAGE}")[0]
    assert "RUN python manage.py collectstatic --noinput" in builder
    assert "http://127.0.0.1:8000/health/" in df
    detail = res.checks[0].detail
    assert "two Compose services: a one-shot job running python manage.py migrate" in detail
    assert res.tables[1].rows[0][-1] == "python manage.py migrate"


def test_worker_without_a_port_gets_no_health_check_and_says_so(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    res = run(root)
    df = (root / "Dockerfile").read_text()
    assert "HEALTHCHECK" not in df.replace("# No HEALTHCHECK", "")
    assert "no health check: no port" in res.checks[0].detail
    assert "COPY --from=builder --chown=0:0 /app /app" in df


def test_poetry_lock_is_exported_and_the_project_is_not_installed_with_no_root(tmp_path: Path) -> None:
    root = adopted(tmp_path, POETRY)
    run(root)
    df = (root / "Dockerfile").read_text()
    assert "poetry export --only main" in df and "COPY pyproject.toml poetry.lock ./" in df
    assert "--no-deps /app" not in df  # poetry install --no-root
    assert "pip install poetry" not in df and "poetry config" not in df
    assert "socket.create_connection(('127.0.0.1', 9000)" in df


def test_pdm_lock_is_exported(tmp_path: Path) -> None:
    root = adopted(tmp_path, PDM)
    res = run(root)
    df = (root / "Dockerfile").read_text()
    assert "pdm export --prod" in df
    assert 'CMD ["pdm", "run", "python", "main.py", "--port", "7000"]' in df
    assert "7000" in res.checks[0].detail


def test_node_asset_stage_is_kept_and_named(tmp_path: Path) -> None:
    root = adopted(tmp_path, NODE_ASSETS)
    res = run(root)
    df = (root / "Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM node:20 AS assets" in df and "RUN npm install && npm run build" in df
    assert "COPY --chown=0:0 --from=assets /build/dist /app/static" in df or (
        "--from=assets" in df and "/app/static" in df
    )
    assert "FROM ${RUNTIME_IMAGE} AS app" not in df  # no target: the runtime stage is the last one
    assert "stage assets (line 1) kept as it is: it still needs the upstream image node:20" in res.checks[0].detail


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    root = adopted(tmp_path, FLASK_PIP)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    r = run_cli_outcome("harden", "--dry-run", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "--- a/Dockerfile" in r.stdout and "+FROM ${BUILDER_IMAGE} AS builder" in r.stdout
    assert "+bases = " in r.stdout
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_an_entrypoint_script_is_exit_2_naming_file_line_and_step_and_nothing_is_written(tmp_path: Path) -> None:
    files = {
        **FLASK_PIP,
        "worker/requirements.txt": "rq\n",
        "worker/entrypoint.sh": '#!/bin/sh\nexec "$@"\n',
        "worker/Dockerfile": """
            FROM python:3.11-slim
            WORKDIR /w
            COPY . .
            RUN pip install -r requirements.txt
            ENTRYPOINT ["/w/entrypoint.sh"]
            CMD ["rq", "worker"]
        """,
    }
    root = adopted(tmp_path, files)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    r = run_cli_outcome("harden", cwd=root)
    assert r.returncode == 2
    assert "worker/Dockerfile:5: ENTRYPOINT runs /w/entrypoint.sh" in r.stderr
    assert "manual step:" in r.stderr and "Traceback" not in r.stderr
    assert 'seen: worker/entrypoint.sh runs: exec "$@"' in r.stderr
    # The Flask service converted fine, but nothing is written while another cannot be.
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "artifacts" not in p.parts} == before


def test_a_tracked_unchanged_dockerfile_gets_no_orig_copy(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    subprocess.run(["git", "-C", str(root), "add", "Dockerfile"], check=True, timeout=30)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"],
        check=True,
        timeout=30,
    )
    res = run(root)
    assert not (root / "Dockerfile.orig").exists()
    assert [f for f, _ in res.tables[2].rows] == ["Dockerfile", "pipeline.toml"]


def test_an_existing_different_orig_is_refused(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    (root / "Dockerfile.orig").write_text("FROM scratch\n")
    with pytest.raises(InputError, match=r"Dockerfile.orig: exists"):
        run(root)


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    with pytest.raises(InputError, match="no service nope"):
        run(root, "nope")


def test_json_report_names_services_and_changes(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    r = run_cli_outcome("harden", "--dry-run", "--format", "json", cwd=root)
    doc = json.loads(r.stdout)
    assert doc["stage"] == "harden" and doc["dry_run"] is True
    assert [c["path"] for c in doc["changes"]] == ["Dockerfile.orig", "Dockerfile", "pipeline.toml"]
    assert doc["diff"].startswith("--- /dev/null")


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ('CMD ["sh", "-c", "python a.py | tee log"]', "needs a shell"),
        ("CMD python manage.py migrate && python seed.py && gunicorn app", "chains 3 commands"),
        ("CMD gunicorn app --bind 0.0.0.0:$PORT", "expands $PORT"),
        ('ENTRYPOINT ["./docker-entrypoint.sh"]', "shell script"),
    ],
)
def test_commands_that_need_a_shell_are_refused_with_the_step(text: str, step: str) -> None:
    ins = Instruction(7, text.split()[0], text.split(" ", 1)[1], text)
    with pytest.raises(command.Unconvertible) as exc:
        command.convert(ins if ins.keyword == "ENTRYPOINT" else None, ins if ins.keyword == "CMD" else None, {})
    assert step in exc.value.what and exc.value.line == 7 and exc.value.step


def test_ports_and_system_packages() -> None:
    assert health.port_of(["gunicorn", "--bind", "0.0.0.0:8001", "app"]) == "8001"
    assert health.port_of(["uvicorn", "app:app", "--port=9001"]) == "9001"
    assert health.port_of(["python", "manage.py", "runserver", "0.0.0.0:8002"]) == "8002"
    assert health.default_port(["flask", "run"]) == ("5000", "flask")
    assert health.default_port(["celery", "-A", "proj", "worker"]) == ("", "")
    assert syslibs.installed("apt-get update && apt-get install -y libldap2-dev=2.5 libsasl2-dev && rm -rf x") == [
        "libldap2-dev",
        "libsasl2-dev",
    ]
    assert syslibs.runtime_packages(["libldap2-dev", "gcc", "libpq5", "imagemagick"]) == (
        ["libldap-2.5-0", "libpq5"],
        ["imagemagick"],
    )
    assert syslibs.builder_packages(["postgresql-dev", "libpq5", "gcc"]) == ["libpq-dev"]


_WORDS = st.sampled_from(
    [
        "FROM python:3.12-slim",
        "FROM node:20 AS assets",
        "FROM base AS app",
        "FROM",
        "RUN pip install -r r.txt",
        "RUN apt-get install -y libpq-dev",
        "COPY . .",
        "COPY --from=assets /a /b",
        "COPY . /",
        "WORKDIR /app",
        "WORKDIR",
        "CMD gunicorn app",
        'CMD ["x"',
        'ENTRYPOINT ["/x.sh"]',
        "ENV A=1",
        "ENV",
        "ARG V=3.12",
        "FROM python:${V}",
        "EXPOSE 80",
        "HEALTHCHECK CMD curl http://localhost:8000/health",
        "USER 1000",
        "ONBUILD RUN x",
        "CMD a && b",
        "RUN x \\",
        "# c",
        "",
        "COPY",
        "FROM python:3.11 AS app",
        "ADD x y",
    ]
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_WORDS, st.text(max_size=40)), max_size=14))
def test_conversion_never_crashes_on_arbitrary_dockerfile_text(tmp_path: Path, lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        out = convert.harden(text, "Dockerfile", context=tmp_path, root=tmp_path, target=None)
    except (command.Unconvertible, InputError):
        return
    if out is not None:
        assert "FROM ${RUNTIME_IMAGE}" in out.text and "USER 65532:65532" in out.text


def test_a_port_only_compose_publishes_gives_a_tcp_probe(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "aiohttp\n",
        "srv.py": "print('serve')\n",
        "Dockerfile": """
            FROM python:3.11-slim
            WORKDIR /app
            COPY . .
            RUN pip install -r requirements.txt
            CMD ["python", "srv.py"]
        """,
        "compose.yaml": """
            services:
              api:
                build: .
                ports: ["127.0.0.1:8080:8081"]
        """,
    }
    root = adopted(tmp_path, files)
    res = run(root)
    assert "socket.create_connection(('127.0.0.1', 8081)" in (root / "Dockerfile").read_text()
    assert "TCP connect to port 8081 (Compose ports)" in res.checks[0].detail


def test_a_project_no_golden_python_satisfies_is_refused_naming_its_pyproject(tmp_path: Path) -> None:
    files = {**FASTAPI_UV, "pyproject.toml": FASTAPI_UV["pyproject.toml"].replace(">=3.11", ">=3.12,<3.13")}
    root = adopted(tmp_path, files)
    with pytest.raises(
        InputError,
        match=r"Dockerfile:1: pyproject.toml requires Python >=3.12,<3.13; the golden images carry Python "
        r"3\.11, 3\.13, 3\.14",
    ) as exc:
        run(root)
    assert exc.value.hint and "python:3.12-slim" in exc.value.hint
    assert not (root / "Dockerfile.orig").exists()


def test_a_project_that_needs_a_later_python_gets_the_golden_images_that_carry_it(tmp_path: Path) -> None:
    """requires-python >=3.12: Debian 13's images (Python 3.13), named in the config with their tables."""
    files = {**FASTAPI_UV, "pyproject.toml": FASTAPI_UV["pyproject.toml"].replace(">=3.11", ">=3.12")}
    root = adopted(tmp_path, files)
    res = run(root)
    assert "pyproject.toml requires Python >=3.12: the golden images of Python 3.13 are used" in check(res, "shop")
    cfg = config.load(root / "pipeline.toml")
    app = cfg.images["shop"]
    assert dict(app.bases) == {"BUILDER_IMAGE": "python-builder-trixie", "RUNTIME_IMAGE": "python-runtime-trixie"}
    assert cfg.images["python-runtime-trixie"].golden == "python-runtime-trixie"
    assert cfg.images["python-builder-trixie"].golden == "python-builder-trixie"
    first = (root / "pipeline.toml").read_text()
    assert run(root).checks and (root / "pipeline.toml").read_text() == first  # a second run changes nothing


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        (">=3.12,<3.13", False),
        (">=3.8", True),
        ("^3.10", True),
        ("^3.12", False),
        ("~=3.11", True),
        ("==3.11.*", True),
        (">=3.9,!=3.11.*", False),
        ("<3.11", False),
    ],
)
def test_declared_python_against_the_golden_one(spec: str, ok: bool) -> None:
    assert pyversion.allows(spec) is ok


def test_init_after_harden_does_not_take_the_kept_original_for_a_service(tmp_path: Path) -> None:
    root = adopted(tmp_path, WORKER)
    run(root)
    assert (root / "Dockerfile.orig").exists()
    again = adopt.run(adopt.Options(directory=root, force=True, dry_run=True))
    assert [s["dockerfile"] for s in again.data["services"]] == ["Dockerfile"]
