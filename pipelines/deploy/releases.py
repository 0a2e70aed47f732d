"""Release history per environment, and the lock that lets one deploy at a time change it.

STATE/ENV.json holds every release of ENV, oldest first: what was deployed
(images by digest, the merged Compose config's hash and file), on whose
word (the verdicts it passed), by whom, and what became of it. The file is
validated when read and replaced atomically when written; the per-release
files (the generated override and the rendered config) live in STATE/ENV/rN/.

Whoever can write the state directory could change a release's Compose file
and the hash ENV.json records for it together, so the hash alone proves
nothing. The deploy that makes a release therefore writes what it cannot
change afterwards (env, id, project, commit, images, refs, image IDs, the
config's hash, verdicts, source) to STATE/ENV/rN/release.json and signs it
with the signing key (cosign sign-blob, offline); a release is used again
(as the live one a deploy replaces, a rollback's target, a promotion's
source) only when that signature verifies against the public key and the
statement matches the history's record.

STATE/ENV.lock is an flock held for a whole deploy or rollback: a second one
waits for it (up to a deadline) and then runs, so deploys are serialised,
never interleaved.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import cosign
from ..errors import InputError, PipelineError, StageFailed

Status = Literal["deploying", "live", "superseded", "failed", "rolled-back", "interrupted"]
STATUSES: tuple[str, ...] = ("deploying", "live", "superseded", "failed", "rolled-back", "interrupted")
_ID = re.compile(r"^r([1-9][0-9]*)$")


@dataclass(frozen=True)
class ReleasesOptions:
    """``pipelines releases``: which history, and how much of it."""

    env: str | None = None
    state: Path | None = None  # release history directory (default: [deploy].state)
    limit: int = 0  # show only the newest N (0: all)


class Release(BaseModel):
    """One attempt to put a set of images and a config on an environment."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^r[1-9][0-9]*$")
    env: str
    at: str  # when it started, UTC, ISO 8601
    commit: str
    engine: str
    project: str  # the Compose project (or Swarm stack) it runs as
    images: dict[str, str]  # service -> repo@sha256:... actually running after this release
    refs: dict[str, str]  # built image name -> repo@sha256:... the release was made of
    image_ids: dict[str, str]  # built image name -> image ID
    config_hash: str  # sha256 of the rendered Compose config (base + overlays + the image override)
    verdicts: dict[str, str]  # stage -> when it passed for these images (or "promoted from ENV rN")
    who: str
    status: Status
    rolled_back_to: str | None = None
    source: str = ""  # "build" or "promoted from staging r4" or "rollback of r5"
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)  # what the deploy said (kept stateful services, ...)

    @property
    def number(self) -> int:
        m = _ID.match(self.id)
        if m is None:  # the pattern above guarantees it; a clear error rather than a crash if not
            raise PipelineError(f"release id {self.id!r} is malformed")
        return int(m.group(1))


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str
    releases: list[Release] = Field(default_factory=list)

    def live(self) -> Release | None:
        """The release serving now: the newest one marked live."""
        for r in reversed(self.releases):
            if r.status == "live":
                return r
        return None

    def get(self, release_id: str) -> Release | None:
        for r in self.releases:
            if r.id == release_id:
                return r
        return None

    def next_id(self) -> str:
        return f"r{max((r.number for r in self.releases), default=0) + 1}"

    def previous_live(self, steps: int = 1) -> Release | None:
        """The release ``steps`` back from the live one among those that once served (live or superseded)."""
        served = [r for r in self.releases if r.status in ("live", "superseded")]
        live = self.live()
        if live is None:
            return None
        idx = served.index(live)
        return served[idx - steps] if idx - steps >= 0 else None

    def make_live(self, release_id: str) -> None:
        """``release_id`` serves now; whatever served before it is superseded."""
        for r in self.releases:
            if r.status == "live" and r.id != release_id:
                r.status = "superseded"
        target = self.get(release_id)
        if target is None:
            raise PipelineError(f"release {release_id} is not in the history of {self.env!r}")
        target.status = "live"


# What a release's signature covers: everything but what later deploys and rollbacks change about it.
SEALED_FIELDS: tuple[str, ...] = (
    "id", "env", "at", "commit", "engine", "project", "images", "refs", "image_ids", "config_hash", "verdicts",
    "who", "source",
)  # fmt: skip


class RecordNotTrusted(StageFailed):
    """A recorded release's signed statement is missing, does not verify or disagrees with the history (exit 1)."""


def statement(release: Release) -> bytes:
    """The signed statement of ``release``: its immutable fields as canonical JSON."""
    data = release.model_dump(include=set(SEALED_FIELDS))
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def who(environ: Mapping[str, str]) -> str:
    """GITHUB_ACTOR in CI, else user@host."""
    actor = environ.get("GITHUB_ACTOR")
    if actor:
        return f"{actor} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class Store:
    """The release history of every environment under one state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def path(self, env: str) -> Path:
        return self.state / f"{env}.json"

    def release_dir(self, env: str, release_id: str) -> Path:
        return self.state / env / release_id

    def statement_file(self, env: str, release_id: str) -> Path:
        return self.release_dir(env, release_id) / "release.json"

    def seal(self, release: Release, key: str, password: str) -> Path:
        """Write the release's statement beside its Compose file and sign it with the private key."""
        file = self.statement_file(release.env, release.id)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(statement(release))
        return cosign.sign_blob(file, key, password)

    def check_sealed(self, release: Release, public_key: str) -> str:
        """The release's statement verifies against ``public_key`` and says what the history says.

        RecordNotTrusted (exit 1) otherwise, naming the field that differs; returns
        the cosign command line as evidence.
        """
        file = self.statement_file(release.env, release.id)
        what = f"release {release.id} of {release.env!r}"
        hint = (
            "the state directory was changed after that deploy, the record was signed with another key than "
            "the public key given, or it was made before release records were signed: restore the state "
            "directory from a backup, or start a new history"
        )
        try:
            shown = cosign.verify_blob(file, public_key)
        except cosign.SignatureError as exc:
            raise RecordNotTrusted(f"{what} is not trusted: {exc.what}", seen=exc.seen, hint=hint) from None
        try:
            signed = json.loads(file.read_bytes())
        except (OSError, json.JSONDecodeError) as exc:
            raise RecordNotTrusted(f"{what}: its signed statement {file} is unreadable ({exc})", hint=hint) from None
        if not isinstance(signed, dict):
            raise RecordNotTrusted(f"{what}: its signed statement {file} is not a JSON object", hint=hint)
        recorded = json.loads(statement(release))
        differ = sorted(k for k in SEALED_FIELDS if signed.get(k) != recorded.get(k))
        if differ:
            raise RecordNotTrusted(
                f"{what} is not trusted: {self.path(release.env)} differs from its signed statement {file} "
                f"in {', '.join(differ)}",
                seen="\n".join(f"{k}: signed {signed.get(k)!r}, recorded {recorded.get(k)!r}" for k in differ),
                hint=hint,
            )
        return shown

    def load(self, env: str) -> History:
        file = self.path(env)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return History(env=env)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{file}: the release history cannot be read ({exc})") from None
        hint = "restore the file from a backup, or move it aside to start a new history (the stack keeps running)"
        try:
            history = History.model_validate(json.loads(text))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{file}: the release history is not valid JSON ({exc})", hint=hint) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise InputError(f"{file}: {where}: {first['msg']}", hint=hint) from None
        if history.env != env:
            raise InputError(f"{file}: holds the history of {history.env!r}, not {env!r}", hint=hint)
        ids = [r.id for r in history.releases]
        if len(set(ids)) != len(ids):
            raise InputError(f"{file}: a release id appears twice", seen=", ".join(ids), hint=hint)
        if sum(r.status == "live" for r in history.releases) > 1:
            raise InputError(f"{file}: more than one release is marked live", hint=hint)
        return history

    def save(self, history: History) -> Path:
        file = self.path(history.env)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(history.model_dump_json(indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(file)
        return file


class LockTimeout(PipelineError):
    """Another deploy of the same environment held the lock past the deadline (exit 2)."""


@contextlib.contextmanager
def locked(
    state: Path, env: str, *, wait_s: float, poll_s: float = 0.2, on_wait: Callable[[str], None] | None = None
) -> Iterator[float]:
    """Hold STATE/ENV.lock for the block; yields the seconds spent waiting for it.

    ``on_wait`` is told once, with the holder, when the lock is taken and this one has to wait.

    The holder writes its pid, host and start time into the file, so a waiter
    that gives up can say who it waited for. The kernel releases an flock when
    its holder dies, so a killed deploy never leaves a stale lock behind.
    """
    state.mkdir(parents=True, exist_ok=True)
    file = state / f"{env}.lock"
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
                if on_wait is not None:
                    on_wait(holder)
                    on_wait = None
                if time.monotonic() - start >= wait_s:
                    raise LockTimeout(
                        f"another deploy of {env!r} still holds {file} after {wait_s:.0f} s",
                        seen=f"holder: {holder}",
                        hint="wait for it to finish (or raise [deploy].lock_wait); "
                        "a holder that died releases the lock by itself",
                    ) from None
                time.sleep(poll_s)
        waited = round(time.monotonic() - start, 2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now()}\n".encode(), 0)
        try:
            yield waited
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
