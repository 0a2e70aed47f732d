"""A pytest plugin for a project's own smoke suite, run against the live stack.

`pipelines smoke` brings the environment's stack up and runs the suite named
by ``[smoke].suite`` with ``-p pipelines.testing``; the ``stack`` fixture then
reaches that running stack::

    def test_search(stack):
        base = stack.url("api", 8000)
        status, _, body = stack.http("GET", f"{base}/search?q=x")
        if status != 200:
            raise AssertionError(f"/search -> {status}")

Fixtures: ``stack`` (a :class:`LiveStack`). The load check runs its
``[load].seed`` test the same way; a seed test hands the paths it wants
driven to :meth:`LiveStack.add_load_paths`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .composestack import HANDLE, LOAD_PATHS, ServiceState, Stack, http
from .errors import PipelineError

ENV_VAR = "PIPELINES_STACK"

T = TypeVar("T")


class LiveStack:
    """The running stack as a test sees it: URLs, secrets, files in and out, states, logs."""

    def __init__(self, st: Stack) -> None:
        self._st = st
        # Published ports, looked up once: each lookup is a `docker compose port` (0.1 s), asked before
        # every request. A test that drives Compose itself (compose()) may restart a service, whose
        # ephemeral host port can then change: that forgets them.
        self._urls: dict[tuple[str, int], str] = {}

    @property
    def project(self) -> str:
        return self._st.project

    @property
    def env(self) -> str:
        return self._st.env_name

    @property
    def run_dir(self) -> Path:
        return self._st.run_dir

    def url(self, service: str, port: int) -> str:
        """``http://HOST:PORT`` of a service's published container port."""
        key = (service, port)
        if key not in self._urls:
            self._urls[key] = "http://" + self._st.port(service, port)
        return self._urls[key]

    def secret(self, name: str) -> str:
        return self._st.secret(name)

    def copy_in(self, src: Path, service: str, dest: str) -> None:
        self._st.copy_in(src, service, dest)

    def drop(self, service: str, dest: str, text: str) -> Path:
        """Write ``text`` to a local file and copy it to ``dest`` inside ``service``."""
        local = self.run_dir / Path(dest).name
        local.write_text(text)
        self._st.copy_in(local, service, dest)
        return local

    def copy_out(self, service: str, src: str, dest: Path) -> bool:
        return self._st.copy_out(service, src, dest)

    def ps(self) -> dict[str, ServiceState]:
        return self._st.ps()

    def logs(self, service: str) -> str:
        return self._st.compose("logs", "--no-color", service, timeout=60, check=False).stdout

    def compose(self, *args: str, timeout: float = 120) -> str:
        self._urls.clear()
        return self._st.compose(*args, timeout=timeout).stdout

    # The same request helper the smoke stage's own probes use.
    http = staticmethod(http)

    @staticmethod
    def wait_for(what: str, fn: Callable[[], T | None], *, deadline: float = 30.0, every: float = 0.1) -> T:
        """Call ``fn`` until it returns something other than None; fail with ``what`` at the deadline.

        Every 0.1 s by default: a check is one request to a local stack, and each wait would otherwise
        end on average half an interval after the thing it waits for happened.
        """
        start = time.monotonic()
        while True:
            value = fn()
            if value is not None:
                return value
            if time.monotonic() - start > deadline:
                raise AssertionError(f"{what}: not within {deadline:.0f} s")
            time.sleep(every)

    def add_load_paths(self, paths: list[str]) -> None:
        """Paths (starting with "/") the load check drives besides its configured ones."""
        bad = [p for p in paths if not p.startswith("/") or any(c.isspace() for c in p)]
        if bad:
            raise ValueError(f"load paths must start with '/' and hold no spaces: {bad[:3]}")
        with (self.run_dir / LOAD_PATHS).open("a") as f:
            f.writelines(p + "\n" for p in paths)


def open_stack(environ: dict[str, str] | None = None) -> LiveStack:
    env = os.environ if environ is None else environ
    handle = env.get(ENV_VAR)
    if not handle:
        raise PipelineError(
            f"{ENV_VAR} is not set: this suite runs against a live stack",
            hint="run it through `pipelines smoke` (or `pipelines load` for its seed test)",
        )
    path = Path(handle)
    return LiveStack(Stack.from_handle(path if path.name == HANDLE else path / HANDLE))


@pytest.fixture(scope="session")
def stack() -> Iterator[LiveStack]:
    yield open_stack()


def pytest_report_header(config: Any) -> str:
    return f"pipelines stack: {os.environ.get(ENV_VAR, '(none)')}"
