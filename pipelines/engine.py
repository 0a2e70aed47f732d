"""The Docker engine through its Python client (docker-py).

Inspection, container state and health, logs, files in and out of images and
containers, image and volume queries go through here; buildx and compose
stay CLI calls (only the CLI has them). Every client error becomes a
:class:`~pipelines.errors.PipelineError` that says what was asked and what the
engine answered.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _proc
from .errors import EngineUnavailable, InputError, PipelineError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

API_VERSION = "1.41"
# Enough for `docker save`-sized answers on a slow disk; queries return in ms.
DEFAULT_TIMEOUT = 120
# A file copied out of an image or container larger than this is not what a
# check needs (status files, /proc entries, config files): refuse it.
MAX_FILE_BYTES = 64 * 1024 * 1024


class ImageNotFound(PipelineError):
    """The image is not in the local engine."""


@dataclass(frozen=True)
class ImageInfo:
    """What `docker image inspect` says about an image, typed."""

    id: str
    repo_digests: tuple[str, ...]
    size: int
    user: str
    env: tuple[str, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    labels: Mapping[str, str]
    healthcheck: tuple[str, ...]  # Config.Healthcheck.Test, empty when none
    health_interval_ns: int
    health_timeout_ns: int
    health_retries: int
    health_start_period_ns: int
    layers: tuple[str, ...]
    stop_signal: str
    raw: Mapping[str, Any]

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> ImageInfo:
        conf = attrs.get("Config") or {}
        hc = conf.get("Healthcheck") or {}
        return cls(
            id=str(attrs.get("Id", "")),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            size=int(attrs.get("Size") or 0),
            user=str(conf.get("User") or ""),
            env=tuple(conf.get("Env") or ()),
            entrypoint=tuple(conf.get("Entrypoint") or ()),
            cmd=tuple(conf.get("Cmd") or ()),
            labels=dict(conf.get("Labels") or {}),
            healthcheck=tuple(hc.get("Test") or ()),
            health_interval_ns=int(hc.get("Interval") or 0),
            health_timeout_ns=int(hc.get("Timeout") or 0),
            health_retries=int(hc.get("Retries") or 0),
            health_start_period_ns=int(hc.get("StartPeriod") or 0),
            layers=tuple((attrs.get("RootFS") or {}).get("Layers") or ()),
            stop_signal=str(conf.get("StopSignal") or ""),
            raw=attrs,
        )


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    status: str  # created, running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, "" when the image has no healthcheck
    exit_code: int
    labels: Mapping[str, str]


def _time_requests(client: docker.DockerClient) -> None:
    """Log each engine API request like a child process (see _proc.PROC_LOG_ENV), for the pipeline benchmark."""
    api = client.api
    send = api.send

    def timed(request: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return send(request, **kwargs)
        finally:
            _proc.record_interval("docker api", time.monotonic() - start)

    api.send = timed


def load_client() -> None:
    """Import the engine client library (docker-py, requests) without connecting: a stage does it while it waits."""
    import docker  # noqa: F401


class Engine:
    """A connected engine. Create with :meth:`connect`; close when done (or use as a context manager)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, environ: Mapping[str, str] | None = None, *, timeout: int = DEFAULT_TIMEOUT) -> Engine:
        # Imported here: docker-py pulls in requests, which a `pipelines --help` should not pay for.
        import docker
        import docker.errors
        import requests.exceptions

        env = dict(environ) if environ is not None else None
        host = (env if env is not None else os.environ).get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
            # Asking a socket that is not there leaks the client's half-made connection: say it first.
            raise EngineUnavailable(
                "the Docker engine does not answer",
                seen=f"{host}: no such socket",
                hint="start dockerd (as root on Debian: `scripts/provision.sh`) or set DOCKER_HOST",
            )
        client = None
        try:
            # A fixed API version needs no round trip to create the client; 1.41 is what
            # Docker 20.10 speaks, and newer engines still accept it.
            client = docker.from_env(version=API_VERSION, timeout=timeout, environment=env)
            if os.environ.get(_proc.PROC_LOG_ENV):
                _time_requests(client)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if client is not None:
                client.close()
            raise EngineUnavailable(
                "the Docker engine does not answer",
                seen=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                hint="start dockerd (as root on Debian: `scripts/provision.sh`) or set DOCKER_HOST",
            ) from None
        return cls(client)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _asking(self, what: str, *, ref: str = "") -> Iterator[None]:
        import docker.errors
        import requests.exceptions

        try:
            yield
        except docker.errors.ImageNotFound:
            raise ImageNotFound(
                f"{what}: image {ref!r} is not in the local engine",
                hint="build it first (`pipelines build`) or name an image `docker image ls` shows",
            ) from None
        except docker.errors.NotFound as exc:
            raise PipelineError(f"{what}: not found", seen=_explain(exc)) from None
        except docker.errors.APIError as exc:
            raise PipelineError(f"{what}: the engine refused", seen=_explain(exc)) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"{what}: the engine did not answer", seen=str(exc)[:500]) from None

    # ------------------------------------------------------------------ images

    def version(self) -> Mapping[str, Any]:
        with self._asking("engine version"):
            info: Mapping[str, Any] = self.client.version()
        return info

    def image(self, ref: str) -> ImageInfo:
        _check_ref(ref)
        with self._asking("image inspect", ref=ref):
            attrs = self.client.api.inspect_image(ref)
        return ImageInfo.from_inspect(attrs)

    def pull(self, ref: str) -> ImageInfo:
        """Pull ``ref`` (from the configured registry) and inspect it."""
        _check_ref(ref)
        with self._asking("image pull", ref=ref):
            self.client.images.pull(ref)
        return self.image(ref)

    def has_image(self, ref: str) -> bool:
        try:
            self.image(ref)
        except ImageNotFound:
            return False
        return True

    def history(self, ref: str) -> list[Mapping[str, Any]]:
        """`docker history --no-trunc` as records (CreatedBy, Comment, Size, ...)."""
        _check_ref(ref)
        with self._asking("image history", ref=ref):
            rows: list[Mapping[str, Any]] = self.client.api.history(ref)
        return rows

    @contextmanager
    def created(self, ref: str, **kwargs: Any) -> Iterator[Container]:
        """A container created (not started) from ``ref``, removed afterwards."""
        _check_ref(ref)
        with self._asking("container create", ref=ref):
            c = self.client.containers.create(ref, **kwargs)
        try:
            yield c
        finally:
            with self._asking("container remove"):
                c.remove(force=True, v=True)

    def read_image_files(self, ref: str, paths: list[str]) -> dict[str, bytes]:
        """Regular files (or every regular file below a directory) from an image, by absolute path.

        Missing paths are absent from the answer. Nothing in the image runs:
        the container is created, never started.
        """
        out: dict[str, bytes] = {}
        with self.created(ref, entrypoint=["/nonexistent"], network_disabled=True) as c:
            for p in paths:
                out.update(self.read_container_files(c.id, p))
        return out

    def read_container_files(self, container: str, path: str) -> dict[str, bytes]:
        import docker.errors

        with self._asking(f"copy {path} out of {container[:12]}"):
            try:
                stream, _ = self.client.api.get_archive(container, path)
            except docker.errors.NotFound:
                return {}
            data = b"".join(stream)  # the whole tar: what a check reads is small
        return _untar(data, path)

    def walk_image(self, ref: str, read: set[str] | frozenset[str] = frozenset()) -> ImageTree:
        """Every entry of an image's flattened filesystem (`docker export`), and the small files named in ``read``.

        ``read`` holds paths relative to / without a leading slash ("etc/passwd").
        The export is streamed: memory stays flat whatever the image's size.
        """
        entries: list[tarfile.TarInfo] = []
        contents: dict[str, bytes] = {}
        with (
            self.created(ref, entrypoint=["/nonexistent"], network_disabled=True) as c,
            self._asking(f"export of {ref}", ref=ref),
            tarfile.open(fileobj=_ChunkReader(c.export(chunk_size=1024 * 1024)), mode="r|") as tar,
        ):
            for member in tar:
                name = member.name.lstrip("./")
                member.name = name
                entries.append(member)
                if name in read and member.isfile() and member.size <= MAX_FILE_BYTES:
                    f = tar.extractfile(member)
                    if f is not None:
                        contents[name] = f.read()
        return ImageTree(tuple(entries), contents)

    @contextmanager
    def running(self, ref: str, **kwargs: Any) -> Iterator[Container]:
        """A container created and started from ``ref`` (docker-py ``create`` options), removed afterwards."""
        with self.created(ref, **kwargs) as c:
            with self._asking(f"container start of {ref}", ref=ref):
                c.start()
            yield c

    def inspect_container(self, container: str) -> Mapping[str, Any]:
        with self._asking(f"container inspect {container[:12]}"):
            attrs: Mapping[str, Any] = self.client.api.inspect_container(container)
        return attrs

    def inspect_network(self, network: str) -> Mapping[str, Any]:
        with self._asking(f"network inspect {network}"):
            attrs: Mapping[str, Any] = self.client.api.inspect_network(network)
        return attrs

    def wait_health(self, container: str, deadline_s: float, *, poll_s: float = 0.2) -> tuple[str, float]:
        """Poll until the container is healthy, unhealthy or stopped, or the deadline passes.

        Returns the last health status ("" without a healthcheck; "exited" when
        the process ended) and the seconds it took.
        """
        start = time.monotonic()
        status = ""
        while True:
            st = self.state(container)
            status = st.health if st.status == "running" else "exited"
            took = time.monotonic() - start
            if status in ("healthy", "unhealthy", "exited") or took >= deadline_s:
                return status, round(took, 2)
            _proc.wait(poll_s)

    def stop(self, container: str, *, timeout_s: int) -> float:
        """`docker stop` (SIGTERM, SIGKILL after ``timeout_s``): the seconds until the container had stopped."""
        start = time.monotonic()
        with self._asking(f"container stop {container[:12]}"):
            self.client.api.stop(container, timeout=timeout_s)
        return round(time.monotonic() - start, 2)

    def remove(self, container: str) -> None:
        """Remove a container (killed first if it still runs); its named volumes stay. Gone already is fine."""
        import docker.errors

        with self._asking(f"container remove {container[:12]}"):
            try:
                self.client.api.remove_container(container, force=True, v=False)
            except docker.errors.NotFound:
                return

    def put_file(self, container: str, dest: str, data: bytes, *, mode: int = 0o644) -> None:
        """Write ``data`` to ``dest`` (an absolute file path) inside a container."""
        directory, _, name = dest.rpartition("/")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        with self._asking(f"copy into {container[:12]}:{dest}"):
            ok = self.client.api.put_archive(container, directory or "/", buf.getvalue())
        if not ok:
            raise PipelineError(f"the engine refused to write {dest} into container {container[:12]}")

    # ------------------------------------------------------------------ containers

    def containers(self, labels: Mapping[str, str]) -> list[ContainerState]:
        import docker.errors

        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with self._asking("container list"):
            rows = self.client.api.containers(all=True, filters=filters)
        out = []
        for r in rows:
            with self._asking(f"container inspect {r['Id'][:12]}"):
                try:
                    attrs = self.client.api.inspect_container(r["Id"])
                except docker.errors.NotFound:
                    continue  # removed between the list and its inspection (a stack going down): gone is gone
            out.append(self._state_of(attrs))
        return out

    def state(self, container: str) -> ContainerState:
        with self._asking(f"container inspect {container[:12]}"):
            attrs = self.client.api.inspect_container(container)
        return self._state_of(attrs)

    @staticmethod
    def _state_of(attrs: Mapping[str, Any]) -> ContainerState:
        st = attrs.get("State") or {}
        return ContainerState(
            id=str(attrs.get("Id", "")),
            name=str(attrs.get("Name", "")).lstrip("/"),
            status=str(st.get("Status", "")),
            health=str((st.get("Health") or {}).get("Status", "")),
            exit_code=int(st.get("ExitCode") or 0),
            labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        )

    def logs(self, container: str, *, tail: int | str = "all") -> str:
        with self._asking(f"container logs {container[:12]}"):
            data: bytes = self.client.api.logs(container, stdout=True, stderr=True, timestamps=True, tail=tail)
        return data.decode("utf-8", "replace")

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        with self._asking("volume list"):
            res = self.client.api.volumes(filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        return [str(v["Name"]) for v in (res or {}).get("Volumes") or []]

    def networks(self, labels: Mapping[str, str]) -> list[str]:
        with self._asking("network list"):
            res = self.client.api.networks(filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        return [str(n["Name"]) for n in res or []]


@dataclass(frozen=True)
class ImageTree:
    """An image's flattened filesystem: tar headers (path, mode, owner, type, size) and a few files read."""

    entries: tuple[tarfile.TarInfo, ...]
    contents: Mapping[str, bytes]
    # The whole filesystem's number of entries when ``entries`` holds only some of them (verify's summary).
    count: int | None = None

    @property
    def entry_count(self) -> int:
        return len(self.entries) if self.count is None else self.count


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (the engine's export stream) for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _explain(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text)[:500]


def _check_ref(ref: str) -> None:
    # A reference starting with "-" would be an option to any CLI it reaches;
    # the engine's API would take it, but no image is named like that.
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise InputError(f"{ref!r} is not an image reference", hint="name an image like registry/repo:tag or an ID")


def _untar(data: bytes, path: str) -> dict[str, bytes]:
    """Regular files of a `get_archive` tar, keyed by their absolute path."""
    out: dict[str, bytes] = {}
    base = path.rstrip("/").rpartition("/")[0]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if not member.isfile() or member.size > MAX_FILE_BYTES:
                continue
            f = tar.extractfile(member)
            if f is not None:
                out[f"{base}/{member.name}"] = f.read()
    return out
