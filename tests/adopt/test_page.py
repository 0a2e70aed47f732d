"""The "Use it in your repository" page, followed step by step from a wheel in an empty virtual environment.

The commands are read from the page itself, so the page cannot drift from what works: a command added, removed
or changed there without the same change here fails the first assertion.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.harness import ROOT

PAGE = ROOT / "docs" / "getting-started" / "your-repository.md"
DIST = "'hardened-pipelines[tools]'"

# Each command of the page, in order, with the exit codes that step allows. A first lint of a repository with
# findings fails (1); after the baseline it passes (0).
STEPS: list[tuple[str, set[int]]] = [
    (f"pip install {DIST} nox", {0}),
    ("pipelines init", {0}),
    ("pipelines config", {0}),
    ("nox -s lint", {1}),
    ("pipelines baseline", {0}),
    ("nox -s lint", {0}),
    ("git add pipeline.toml noxfile.py .github/workflows/pipelines.yml security/baseline.json", {0}),
    ('git commit -m "Lint containers with hardened-pipelines"', {0}),
]

# A repository this project never saw: a Flask service on a public base, run as root with no health check, and
# Compose with PostgreSQL and Redis. Nothing of this repository's config or services.
REPO = {
    "app/__init__.py": "",
    "app/main.py": textwrap.dedent(
        """\
        from flask import Flask

        app = Flask(__name__)


        @app.get("/")
        def index() -> str:
            return "ok"
        """
    ),
    "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\npsycopg[binary]==3.2.1\nredis==5.0.7\n",
    "Dockerfile": textwrap.dedent(
        """\
        FROM python:3.12-slim
        WORKDIR /srv
        COPY requirements.txt .
        RUN pip install -r requirements.txt
        COPY app ./app
        EXPOSE 8000
        CMD gunicorn -b 0.0.0.0:8000 app.main:app
        """
    ),
    "compose.yaml": textwrap.dedent(
        """\
        services:
          web:
            build: .
            ports: ["8000:8000"]
            environment:
              DATABASE_URL: postgresql://app:app@db/app
              REDIS_URL: redis://cache:6379/0
            depends_on: [db, cache]
          db:
            image: postgres:16
            environment:
              POSTGRES_PASSWORD: app
            ports: ["5432:5432"]
          cache:
            image: redis:7
        """
    ),
}


def page_commands() -> list[str]:
    """Every line of the page's ``sh`` blocks, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_page_lists_exactly_the_steps_this_test_runs() -> None:
    assert page_commands() == [c for c, _ in STEPS]


def _wheel(tmp_path: Path, python: Path) -> Path:
    """The distribution as pip builds it, from a copy of what the build reads (no leftovers in the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pipelines", src / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    r = subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = out.glob("hardened_pipelines-*.whl")
    return wheel


def test_a_new_repository_follows_the_page_from_an_empty_venv(tmp_path: Path, network: None) -> None:
    assert page_commands() == [c for c, _ in STEPS]
    # The venv has pip (ensurepip), which also builds the wheel: the test's own environment may have none.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    wheel = _wheel(tmp_path, venv / "bin" / "python")
    repo = tmp_path / "shop"
    for rel, text in REPO.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git_env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=60)
    # Only the venv's commands and the system's: nothing of this checkout's own environment on PATH, and none of
    # the project's variables leaking in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINES_", "VIRTUAL_ENV", "NOX"))}
    env.update(git_env, PATH=f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    transcript: list[str] = []
    outputs: list[str] = []
    for command, allowed in STEPS:
        argv = shlex.split(command.replace(DIST, f"'{wheel}[tools]'"))
        r = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False)
        transcript.append(f"$ {command}  -> exit {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        outputs.append(r.stdout + r.stderr)
        assert r.returncode in allowed, "\n".join(transcript)
        assert "Traceback" not in r.stdout + r.stderr, "\n".join(transcript)
    # The first lint failed on findings of the repository's own files and the second passed on the baseline.
    assert (repo / "security" / "baseline.json").is_file()
    assert "Dockerfile" in outputs[3] and "compose.yaml" in outputs[3], outputs[3]
    installed = subprocess.run(
        [venv / "bin" / "python", "-c", "import pipelines, sys; print(pipelines.__file__)"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # What ran was the wheel in the venv, not this checkout.
    assert installed.startswith(str(venv)), installed
