"""The cells of the hardening matrix: each check judges one image's facts, and the waiver ledger may cover a failure."""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import waivers
from ..config import Config
from ..engine import ImageInfo, ImageTree
from ..findings import Finding, Severity
from ..result import Check, Outcome
from .containers import RunFacts, health_deadline
from .filesystem import COMPILER, PACKAGE_CACHES, PIP, PKG_MANAGERS, SHELLS, VCS, VCS_DIRS, executables, under
from .parse import arg_defaults, empty_passwords, expand, from_lines, parse_passwd, parse_user
from .secrets import secrets_in_config
from .specs import (
    BASE_LABEL,
    MB,
    NO_HEALTHCHECK_RUN_S,
    OCI,
    OCI_LABELS,
    STAYS_HEALTHY_S,
    STOP_GRACE_S,
    STOP_TARGET_S,
    TOOL,
)
from .targets import Target


@dataclass
class Facts:
    target: Target
    info: ImageInfo
    history: list[Mapping[str, Any]]
    tree: ImageTree
    run: RunFacts | None
    secrets: tuple[list[str] | None, str]
    seconds: dict[str, float] = field(default_factory=dict)
    stack_only: bool = False  # its health needs other services ([verify].stack_only)
    run_key: str = ""  # what the container run depended on (see cache.run_key); empty when nothing ran
    run_reused: str = ""  # when the reused run was made; empty for a run made now


INSPECT = "docker image inspect"
EXPORT = "docker export (filesystem of a created container, indexed once per image ID)"


def _c(spec: str, t: Target, outcome: Outcome, detail: str, evidence: str, seconds: float = 0.0) -> Check:
    return Check(spec, outcome, detail, round(seconds, 2), group=t.name, evidence=evidence)


def _na(spec: str, t: Target, why: str) -> Check:
    return _c(spec, t, Outcome.NA, why, "role: " + t.role.name)


def _ok(cond: bool) -> Outcome:
    return Outcome.PASS if cond else Outcome.FAIL


def _list(items: Sequence[str], limit: int = 8) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_user(f: Facts) -> Check:
    t, info = f.target, f.info
    if not t.role.runs:
        return _na("VFY-USER", t, t.role.why)
    u, g = parse_user(info.user)
    problems = []
    if not info.user:
        problems.append("no USER: runs as root")
    elif not u.isdigit():
        problems.append(f"USER {info.user!r} is a name, not a numeric UID")
    elif int(u) == 0:
        problems.append(f"USER {info.user!r} is root")
    if g and (not g.isdigit() or int(g) == 0):
        problems.append(f"group {g!r} is not a numeric non-root GID")
    run = f.run
    evidence = f"{INSPECT} .Config.User"
    if run is not None:
        evidence += f"; {run.status_source or 'host /proc'} of `{run.argv}`"
        if run.status is None:
            problems.append(f"effective IDs not read: {run.problem or run.status_problem}")
        else:
            if 0 in run.status.uid or 0 in run.status.gid:
                problems.append(f"PID 1 runs as Uid {run.status.uid} Gid {run.status.gid}")
            elif u.isdigit() and run.status.uid[1] != int(u):
                problems.append(f"PID 1's effective UID {run.status.uid[1]} is not USER's {u}")
    passwd = f.tree.contents.get("etc/passwd", b"").decode("utf-8", "replace")
    uids = [p[1] for p in parse_passwd(passwd)]
    dupes = sorted({str(x) for x in uids if uids.count(x) > 1})
    if dupes:
        problems.append(f"/etc/passwd repeats UID {', '.join(dupes)}")
    empty = empty_passwords(f.tree.contents.get("etc/shadow", b"").decode("utf-8", "replace"))
    if empty:
        problems.append(f"/etc/shadow: empty password for {', '.join(empty)}")
    detail = "; ".join(problems) or (
        f"USER {info.user}; " + (run.status.summary().split("; CapEff")[0] if run and run.status else "")
    )
    return _c("VFY-USER", t, _ok(not problems), detail, evidence + "; /etc/passwd, /etc/shadow from " + EXPORT)


def check_privs(f: Facts) -> Check:
    t, run = f.target, f.run
    if not t.role.runs or run is None:
        return _na("VFY-PRIVS", t, t.role.why)
    evidence = f"{run.status_source or 'host /proc'} of `{run.argv}`"
    if run.status is None:
        return _c("VFY-PRIVS", t, Outcome.FAIL, f"not read: {run.problem or run.status_problem}", evidence)
    s = run.status
    bad = []
    if s.cap_eff:
        bad.append(f"CapEff {s.cap_eff:016x}")
    if s.no_new_privs != 1:
        bad.append(f"NoNewPrivs {s.no_new_privs}")
    if s.seccomp != 2:
        bad.append(f"Seccomp {s.seccomp} (2 = filtering)")
    detail = "; ".join(bad) if bad else f"CapEff {s.cap_eff:016x}; NoNewPrivs {s.no_new_privs}; Seccomp {s.seccomp}"
    return _c("VFY-PRIVS", t, _ok(not bad), detail, evidence)


def check_shell(f: Facts) -> Check:
    t = f.target
    if not t.role.minimal:
        return _na("VFY-SHELL", t, t.role.why)
    found = executables(f.tree, lambda n: n in SHELLS or n in PKG_MANAGERS or bool(PIP.match(n)))
    caches = sorted(
        "/" + e.name for e in f.tree.entries if e.isfile() and any(e.name.startswith(c) for c in PACKAGE_CACHES)
    )
    bad = found + caches[:3]
    detail = ("found " + _list(bad)) if bad else "no shell, package manager or package cache in any bin directory"
    return _c("VFY-SHELL", t, _ok(not bad), detail, EXPORT + ": */bin, */sbin, var/lib/apt/lists, var/cache/apt")


def check_buildtools(f: Facts) -> Check:
    t = f.target
    if not t.role.final:
        return _na("VFY-BUILDTOOLS", t, t.role.why)
    found = executables(f.tree, lambda n: n in VCS or bool(COMPILER.match(n)))
    vcs_dirs = sorted("/" + e.name for e in f.tree.entries if e.isdir() and e.name.rpartition("/")[2] in VCS_DIRS)
    bad = found + vcs_dirs
    detail = ("found " + _list(bad)) if bad else "no compiler, build tool, VCS client or VCS metadata"
    return _c("VFY-BUILDTOOLS", t, _ok(not bad), detail, EXPORT + ": */bin, */sbin, .git/.svn/.hg directories")


def check_setuid(f: Facts) -> Check:
    t = f.target
    if not t.role.final:
        return _na("VFY-SETUID", t, t.role.why + "; the images built on it are checked")
    bad = [
        f"/{e.name} ({stat.filemode(e.mode | stat.S_IFREG)})" for e in f.tree.entries if e.isfile() and e.mode & 0o6000
    ]
    detail = ("setuid/setgid: " + _list(bad)) if bad else f"none among {f.tree.entry_count} entries"
    return _c("VFY-SETUID", t, _ok(not bad), detail, EXPORT + ": tar mode bits 04000/02000")


def check_world_writable(f: Facts, writable: Sequence[str]) -> Check:
    t = f.target
    bad = [
        f"/{e.name} ({stat.filemode(e.mode | (stat.S_IFDIR if e.isdir() else stat.S_IFREG))})"
        for e in f.tree.entries
        if (e.isfile() or e.isdir()) and e.mode & 0o002 and not under(e.name, writable)
    ]
    detail = ("world-writable: " + _list(bad)) if bad else f"none outside {', '.join(writable)}"
    return _c("VFY-WORLDWRITABLE", t, _ok(not bad), detail, EXPORT + ": tar mode bit 0002")


def check_appfiles(f: Facts, writable: Sequence[str]) -> Check:
    t, info = f.target, f.info
    if not t.role.runs:
        return _na("VFY-APPFILES", t, t.role.why)
    u, g = parse_user(info.user)
    passwd = parse_passwd(f.tree.contents.get("etc/passwd", b"").decode("utf-8", "replace"))
    by_name = {p[0]: p for p in passwd}
    by_uid = {p[1]: p for p in passwd}
    if u and not u.isdigit() and u in by_name:
        u = str(by_name[u][1])
    if not u.isdigit() or int(u) == 0:
        return _na("VFY-APPFILES", t, f"runs as {info.user or 'root'}: every file is its own (see VFY-USER)")
    uid = int(u)
    gid = int(g) if g.isdigit() else (by_uid[uid][2] if uid in by_uid else -1)
    home = by_uid[uid][3] if uid in by_uid else ""
    volumes = list((info.raw.get("Config") or {}).get("Volumes") or {})
    skip = [*writable, *volumes, *([home] if home and home != "/" else [])]
    bad = [
        f"/{e.name} ({e.uid}:{e.gid} {stat.filemode(e.mode | (stat.S_IFDIR if e.isdir() else stat.S_IFREG))})"
        for e in f.tree.entries
        # The ownership test first: it is cheap and rules out nearly every entry before the path test.
        if (e.isfile() or e.isdir())
        and ((e.uid == uid and e.mode & 0o200) or (e.gid == gid and e.mode & 0o020))
        and not under(e.name, skip)
    ]
    detail = (
        f"writable by {uid}:{gid}: " + _list(bad)
        if bad
        else f"nothing writable by {uid}:{gid} outside {', '.join(skip)}"
    )
    return _c("VFY-APPFILES", t, _ok(not bad), detail, EXPORT + f": owner/group write bits vs {INSPECT} .Config.User")


def check_healthcheck(f: Facts) -> Check:
    t, hc = f.target, f.info.healthcheck
    if not t.role.app:
        return _na("VFY-HEALTHCHECK", t, t.role.why)
    ev = f"{INSPECT} .Config.Healthcheck.Test"
    if not hc or hc[0] == "NONE":
        return _c("VFY-HEALTHCHECK", t, Outcome.FAIL, "no HEALTHCHECK", ev)
    if hc[0] != "CMD":
        return _c("VFY-HEALTHCHECK", t, Outcome.FAIL, f"shell form needs a shell: {list(hc)}", ev)
    return _c("VFY-HEALTHCHECK", t, Outcome.PASS, "exec form: " + " ".join(hc[1:]), ev)


def check_healthy(f: Facts, cfg: Config) -> Check:
    t, run, info = f.target, f.run, f.info
    if not t.role.app or run is None:
        return _na("VFY-HEALTHY", t, t.role.why)
    if not info.healthcheck or info.healthcheck[0] == "NONE":
        return _na("VFY-HEALTHY", t, "no healthcheck to turn healthy (see VFY-HEALTHCHECK)")
    if run.health == "skipped":
        return _na("VFY-HEALTHY", t, "health needs other services ([verify].stack_only): smoke proves it")
    ev = f"docker inspect .State.Health of `{run.argv}`, polled"
    if run.problem:
        return _c("VFY-HEALTHY", t, Outcome.FAIL, run.problem, ev)
    promise = info.health_start_period_ns / 1e9
    deadline = health_deadline(cfg, info)
    if run.health == "healthy":
        after = run.healthy_after or 0.0
        in_time = not promise or after <= promise  # the start period is the promise; the grace only observes
        ok = in_time and run.stayed == "healthy"
        detail = f"healthy after {after:.1f} s (start period {promise:.0f} s" + (")" if in_time else ": too late)")
        detail += (
            f", then {run.stayed}" if run.stayed != "healthy" else f", still healthy {STAYS_HEALTHY_S:.1f} s later"
        )
        return _c("VFY-HEALTHY", t, _ok(ok), detail, ev, run.healthy_after or 0.0)
    if run.writable_health == "healthy":
        return _c(
            "VFY-HEALTHY",
            t,
            Outcome.PASS,
            f"healthy with a writable root only (read-only: {run.health}; see VFY-READONLY)",
            ev + "; again without --read-only",
        )
    tail = f"; last log lines: {run.exited_early}" if run.exited_early else ""
    detail = f"{run.health or 'starting'} after {deadline:.1f} s (start period {promise:.0f} s){tail}"
    return _c("VFY-HEALTHY", t, Outcome.FAIL, detail, ev, deadline)


def check_sigterm(f: Facts) -> Check:
    t, run = f.target, f.run
    if not t.role.app or run is None:
        return _na("VFY-SIGTERM", t, t.role.why)
    ev = f"docker stop --time {STOP_GRACE_S} (SIGTERM, then SIGKILL), timed; `{run.argv}`"
    if run.problem:
        return _c("VFY-SIGTERM", t, Outcome.FAIL, run.problem, ev)
    if run.stop_s is None:
        if f.stack_only:
            return _na("VFY-SIGTERM", t, "exited before the stop without its services ([verify].stack_only)")
        return _c("VFY-SIGTERM", t, Outcome.FAIL, f"exited on its own (exit {run.exit_code}) before the stop", ev)
    detail = f"stopped {run.stop_s:.1f} s after SIGTERM, exit {run.exit_code}"
    if run.stop_s >= STOP_TARGET_S:
        detail += " (SIGKILL: SIGTERM did not end it)" if run.exit_code == 137 else ""
    return _c("VFY-SIGTERM", t, _ok(run.stop_s < STOP_TARGET_S), detail, ev, run.stop_s)


def check_readonly(f: Facts) -> Check:
    t, run, info = f.target, f.run, f.info
    if not t.role.app or run is None:
        return _na("VFY-READONLY", t, t.role.why)
    ev = f"`{run.argv}`: docker inspect .State"
    if run.problem:
        return _c("VFY-READONLY", t, Outcome.FAIL, run.problem, ev)
    if run.health == "skipped":
        return _na("VFY-READONLY", t, "needs other services to run ([verify].stack_only): smoke runs it read-only")
    if not info.healthcheck or info.healthcheck[0] == "NONE":
        ok = run.stayed == "running"
        return _c(
            "VFY-READONLY", t, _ok(ok), f"{run.stayed} {NO_HEALTHCHECK_RUN_S:.0f} s after start, read-only root", ev
        )
    if run.health == "healthy":
        ok = run.stayed == "healthy"
        return _c("VFY-READONLY", t, _ok(ok), f"healthy with a read-only root, then {run.stayed}", ev)
    if run.writable_health == "healthy":
        return _c(
            "VFY-READONLY",
            t,
            Outcome.FAIL,
            f"{run.health} with a read-only root, healthy with a writable one",
            ev + "; again without --read-only",
        )
    return _na(
        "VFY-READONLY", t, f"never healthy, not even with a writable root ({run.writable_health}): see VFY-HEALTHY"
    )


def check_secrets(f: Facts) -> Check:
    t = f.target
    in_config = secrets_in_config(f.info, f.history)
    layers, layer_ev = f.secrets
    ev = f"{INSPECT} .Config.Env/.Labels; docker history --no-trunc; {layer_ev}"
    bad = in_config + [f"trivy: {s}" if s.startswith("image config") else f"layer {s}" for s in layers or []]
    if layers is None:
        bad.append(f"layers not scanned: {layer_ev}")
    detail = (
        _list(bad)
        if bad
        else f"none in {len(f.info.env)} ENV, {len(f.info.labels)} labels, {len(f.history)} history entries, layers"
    )
    return _c("VFY-SECRETS", t, _ok(not bad), detail, ev)


def _dockerfile_bases(t: Target) -> tuple[list[str], str] | None:
    img, record = t.image, t.record
    if img is None or img.dockerfile is None or record is None:
        return None
    try:
        text = img.dockerfile.read_text()
    except OSError:
        return None
    args = arg_defaults(text)
    args.update(img.args)
    for arg, base in img.bases.items():
        if base in record.images:
            args[arg] = record.images[base].ref
    stages: set[str] = set()
    refs = []
    for image, alias in from_lines(text):
        ref = expand(image, args)
        if ref.lower() != "scratch" and ref not in stages:
            refs.append(ref)
        if alias:
            stages.add(alias)
    return refs, f"{img.dockerfile.name} FROM lines with the build record's base refs"


def check_base(f: Facts) -> Check:
    t, info = f.target, f.info
    if t.image is not None and t.image.kind == "rootfs":
        return _na("VFY-BASE", t, "built from Debian packages with debootstrap: no base image")
    label = info.labels.get(BASE_LABEL, "")
    if label:
        return _c("VFY-BASE", t, _ok("@sha256:" in label), f"{BASE_LABEL}={label}", f"{INSPECT} .Config.Labels")
    found = _dockerfile_bases(t)
    if found is None:
        return _c(
            "VFY-BASE",
            t,
            Outcome.FAIL,
            f"no evidence of a pinned base: no {BASE_LABEL} label, and not an image of the recorded build",
            f"{INSPECT} .Config.Labels",
        )
    refs, ev = found
    loose = [r for r in refs if "@sha256:" not in r]
    detail = ("not pinned: " + _list(loose)) if loose else "pinned: " + _list(refs, 3)
    return _c("VFY-BASE", t, _ok(bool(refs) and not loose), detail, ev)


def check_labels(f: Facts) -> Check:
    t = f.target
    missing = [k for k in OCI_LABELS if not f.info.labels.get(f"{OCI}.{k}")]
    detail = ("missing " + ", ".join(f"{OCI}.{k}" for k in missing)) if missing else ", ".join(OCI_LABELS)
    return _c("VFY-LABELS", t, _ok(not missing), detail, f"{INSPECT} .Config.Labels")


def check_size(f: Facts, cfg: Config) -> Check:
    t = f.target
    budget = cfg.bench.size_budgets_mb.get(t.name)
    mb = f.info.size / MB
    if budget is None:
        return _c("VFY-SIZE", t, Outcome.NA, f"{mb:.1f} MB; no budget in [bench].size_budgets_mb", f"{INSPECT} .Size")
    return _c("VFY-SIZE", t, _ok(mb <= budget), f"{mb:.1f} MB, budget {budget} MB", f"{INSPECT} .Size")


def check_python(f: Facts, pythons: Mapping[str, set[str]], cfg: Config) -> Check:
    t = f.target
    img = t.image
    if img is None:
        return _na("VFY-PYTHON", t, "not an image of this build: no builder/runtime pair is known")
    own = pythons.get(t.name, set())
    if img.is_base and img.role == "builder":
        others = [b.name for b in cfg.bases if b.role == "runtime" and b.kind != "rootfs"]
    elif img.is_base and img.role == "runtime" and img.kind != "rootfs":
        others = [b.name for b in cfg.bases if b.role == "builder"]
    elif not img.is_base:
        builders = [b for b in img.bases.values() if cfg.images[b].role == "builder"]
        runtimes = [b for b in img.bases.values() if cfg.images[b].role == "runtime" and cfg.images[b].kind != "rootfs"]
        others = builders if builders and runtimes else []
    else:
        others = []
    if not others:
        return _na("VFY-PYTHON", t, "no builder/runtime pair in the config for this image")
    missing = [o for o in others if o not in pythons]
    if missing:
        return _na("VFY-PYTHON", t, f"{', '.join(missing)} not verified in this run: nothing to compare with")
    sets = {t.name: own, **{o: pythons[o] for o in others}}
    detail = "; ".join(f"{n} python {'/'.join(sorted(v)) or 'none'}" for n, v in sets.items())
    ok = bool(own) and all(v == own for v in sets.values())
    return _c("VFY-PYTHON", t, _ok(ok), detail, EXPORT + ": usr/bin/python3.N of each image")


def cells(f: Facts, cfg: Config, pythons: Mapping[str, set[str]]) -> list[Check]:
    writable = list(cfg.verify.writable_paths)
    return [
        check_user(f),
        check_privs(f),
        check_shell(f),
        check_buildtools(f),
        check_setuid(f),
        check_world_writable(f, writable),
        check_appfiles(f, writable),
        check_healthcheck(f),
        check_healthy(f, cfg),
        check_sigterm(f),
        check_readonly(f),
        check_secrets(f),
        check_base(f),
        check_labels(f),
        check_size(f, cfg),
        check_python(f, pythons, cfg),
    ]


def apply_waivers(checks: list[Check], ledger: list[waivers.Waiver]) -> list[Check]:
    """A failed cell a ledger entry covers (check id, image scope) becomes ``waived`` with the reason."""
    out = []
    for c in checks:
        if c.outcome is Outcome.FAIL:
            finding = Finding(TOOL, c.name, Severity.ERROR, c.detail, c.group, extra=(("image", c.group),))
            [f] = waivers.apply([finding], ledger)
            if f.waived:
                w = next(w for w in ledger if w.where == f.waived_by)
                c = Check(
                    c.name,
                    Outcome.WAIVED,
                    f"{c.detail} [waived: {f.waiver_reason} ({w.owner}, until {w.expires})]",
                    c.seconds,
                    c.group,
                    c.evidence + f"; waiver {f.waived_by}",
                )
        out.append(c)
    return out
