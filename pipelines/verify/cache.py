"""What verify keeps between runs under ARTIFACTS/verify/: filesystem indexes, and container runs that passed.

Both are keyed by what they depend on, this package's code among it (see
:func:`_code_digest`): an entry that does not match is made again, never read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import Config
from ..engine import Engine, ImageInfo, ImageTree
from .containers import RunFacts, health_deadline, run_kwargs
from .filesystem import PACKAGE_CACHES, VCS_DIRS, in_bin
from .limits import Limits
from .parse import ProcStatus
from .specs import HEALTH_INTERVAL_NS, NO_HEALTHCHECK_RUN_S, STAYS_HEALTHY_S, STOP_GRACE_S, STOP_TARGET_S
from .targets import Target

TREE_FILES = ("etc/passwd", "etc/group", "etc/shadow")
TREE_CACHE_VERSION = 1


def _sanitized_shadow(text: str) -> str:
    """Only what a check reads: which accounts have an empty password. Hashes never reach the cache."""
    return "".join(
        f"{p[0]}:{'' if p[1] == '' else '*'}:\n" for p in (ln.split(":") for ln in text.splitlines()) if len(p) >= 2
    )


def tree_from_record(data: Mapping[str, Any]) -> ImageTree:
    """An :class:`ImageTree` back from its cached record or summary (see :func:`image_tree`)."""
    entries = []
    for name, kind, mode, uid, gid, size, link in data["entries"]:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.size, ti.linkname = kind.encode(), mode, uid, gid, size, link
        entries.append(ti)
    count = data.get("count")
    return ImageTree(
        tuple(entries), {k: v.encode() for k, v in data["contents"].items()}, count if isinstance(count, int) else None
    )


TREE_SUMMARY_VERSION = 1


def tree_entry_matters(name: str, mode: int, uid: int) -> bool:
    """Whether a filesystem cell can name this entry; of every other entry the cells only count how many there are.

    The cells read: files in bin/sbin (shells, package managers, compilers,
    Python), package-manager caches, VCS directories, setuid/setgid bits, world-
    and group-writable entries, and entries a non-root owner can write (the
    image's user, VFY-APPFILES). A change to this package changes the summary's
    key (:func:`_code_digest`), so a new cell never reads an old summary.
    """
    return bool(
        in_bin(name)
        or name.startswith(PACKAGE_CACHES)
        or name.rpartition("/")[2] in VCS_DIRS
        or mode & 0o6022
        or (uid != 0 and mode & 0o200)
    )


def tree_summary(record: Mapping[str, Any], code: str) -> dict[str, Any]:
    """The part of a filesystem record the cells read (see :func:`tree_entry_matters`), and how many entries it had."""
    return {
        "version": TREE_SUMMARY_VERSION,
        "image_id": record["image_id"],
        "code": code,
        "count": len(record["entries"]),
        "entries": [e for e in record["entries"] if tree_entry_matters(e[0], e[2], e[3])],
        "contents": record["contents"],
    }


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def image_tree(engine: Engine, cfg: Config, info: ImageInfo) -> ImageTree:
    """The image's filesystem index, exported once per image ID (its content never changes) and cached.

    The cache (ARTIFACTS/verify/trees/ID.json) holds each entry's path, type,
    mode, owner and size, /etc/passwd and /etc/group, and of /etc/shadow only
    which accounts have an empty password. Beside it, ID.summary.json holds
    only the entries a cell can name (a few hundred of tens of thousands),
    keyed by the image ID and this package's code: a warm verify reads that.
    """
    return cached_tree(cfg.project.artifacts / "verify" / "trees", info.id, lambda: _export_tree(engine, info))


def cached_tree(trees: Path, image_id: str, export: Callable[[], dict[str, Any]]) -> ImageTree:
    """The tree of ``image_id`` from its summary, else from its full record (writing the summary), else ``export()``."""
    name = image_id.removeprefix("sha256:")
    code = _code_digest()
    summary = trees / f"{name}.summary.json"
    try:
        data = json.loads(summary.read_text())
        if (
            data.get("version") == TREE_SUMMARY_VERSION
            and data.get("image_id") == image_id
            and data.get("code") == code
        ):
            return tree_from_record(data)
    except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
        pass  # no summary, or a torn one: made again from the full record
    full = trees / f"{name}.json"
    record: dict[str, Any] | None = None
    try:
        data = json.loads(full.read_text())
        if data.get("version") == TREE_CACHE_VERSION and data.get("image_id") == image_id:
            record = data
    except (OSError, json.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
        pass  # no cache, or a torn one: export again
    if record is None:
        record = export()
        _write_json(full, record)
    tree = tree_from_record(record)  # before the summary: a record that does not parse is not summarised
    _write_json(summary, tree_summary(record, code))
    return tree


def _export_tree(engine: Engine, info: ImageInfo) -> dict[str, Any]:
    """The image's full filesystem record, exported from a created container."""
    tree = engine.walk_image(info.id, read=set(TREE_FILES))
    contents = {k: v.decode("utf-8", "replace") for k, v in tree.contents.items()}
    if "etc/shadow" in contents:
        contents["etc/shadow"] = _sanitized_shadow(contents["etc/shadow"])
    return {
        "version": TREE_CACHE_VERSION,
        "image_id": info.id,
        "entries": [[e.name, e.type.decode(), e.mode, e.uid, e.gid, e.size, e.linkname] for e in tree.entries],
        "contents": contents,
    }


RUN_CACHE_VERSION = 1


@functools.cache
def _code_digest() -> str:
    """This package and the engine client: what runs, watches and judges the container (and reads the filesystem)."""
    from .. import engine

    h = hashlib.sha256()
    for mod in (*sorted(Path(__file__).parent.glob("*.py")), Path(engine.__file__)):
        h.update(mod.read_bytes())
    return h.hexdigest()


def run_key(cfg: Config, t: Target, info: ImageInfo, limits: Limits) -> str:
    """Everything a throwaway container run depends on: the image ID, how it is run and judged, and by what.

    The run's settings (limits, tmpfs, environment, healthcheck timing), the
    whole [verify] table, the image's role and stack-only status, the package
    version and the source of this package and the engine client: a change to
    any of them runs the container again.
    """
    from .. import __version__

    kwargs = run_kwargs(cfg, t, info, limits, read_only=True)
    kwargs.pop("name")  # unique per run
    material = {
        "cache": RUN_CACHE_VERSION,
        "package": __version__,
        "code": _code_digest(),
        "image_id": info.id,
        "name": t.name,
        "role": t.role.name,
        "run": kwargs,
        "limits_source": limits.source,
        "health_deadline": health_deadline(cfg, info),
        "verify": dataclasses.asdict(cfg.verify),
        "timing": [STOP_GRACE_S, STOP_TARGET_S, HEALTH_INTERVAL_NS, STAYS_HEALTHY_S, NO_HEALTHCHECK_RUN_S],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _run_path(artifacts: Path, key: str) -> Path:
    return artifacts / "verify" / "runs" / f"{key[:40]}.json"


def load_run(artifacts: Path, key: str) -> tuple[RunFacts, str] | None:
    """A passed run recorded under ``key``, and when it was made; None when there is none (or a torn one)."""
    try:
        data = json.loads(_run_path(artifacts, key).read_text())
        if data.get("key") != key:
            return None
        facts = dict(data["facts"])
        status = facts.pop("status")
        if status is not None:
            status = ProcStatus(
                tuple(status["uid"]), tuple(status["gid"]), status["cap_eff"], status["no_new_privs"], status["seccomp"]
            )
        run = RunFacts(status=status, **facts)
        when = str(data["when"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    run.argv += f"; reused: the run of {when} (same image ID, run settings, [verify] config, package and code)"
    return run, when


def save_run(artifacts: Path, key: str, run: RunFacts) -> None:
    """Record a run whose cells all passed. A failed one is never reused: it runs again, so a flake shows as one."""
    record = {
        "key": key,
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "facts": dataclasses.asdict(run),
    }
    _write_json(_run_path(artifacts, key), record)


# Cells read from the throwaway container: a run is reused only when these all passed (or did not apply).
RUN_CELLS = ("VFY-USER", "VFY-PRIVS", "VFY-HEALTHY", "VFY-SIGTERM", "VFY-READONLY")
