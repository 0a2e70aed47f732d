"""What CI runs, written down once and checked everywhere it is repeated.

The noxfile's ``CI_SESSIONS`` is the one list. The workflow's pipeline job
runs exactly those sessions, in that order, each as its own ``./noxw -s NAME``
step; the ``ci`` session requires them in the same order, and ``.ci/run``
runs ``./noxw --provision -s ci``. So a red step on GitHub is reproduced by
``CI=true bash .ci/run``, and by ``./noxw -s NAME`` alone.

These helpers read the workflow as data and the noxfile as nox does (loaded
in a child interpreter, its sessions read from nox's registry, so a session
registered through ``pipelines.nox.sessions()`` counts as much as one the
noxfile defines itself), and return every drift they find, so a test can name
all of them at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import InputError

# A CI step is this and nothing else: no shell around it, no `${{ }}`.
SESSION_STEP = re.compile(r"^\./noxw -s ([a-z][a-z0-9_-]*)$")
# A deploy job's step: a release session for the job's own GitHub environment, nothing else; the deploy
# session also names the commit the run is of (the one its approvers saw), from the runner's own variable.
DEPLOY_STEP = re.compile(
    r"^\./noxw -s ([a-z][a-z0-9_-]*) -- --env ([a-z][a-z0-9_-]*)( --expect-commit \"\$GITHUB_SHA\")?$"
)
EXPECT_COMMIT = ' --expect-commit "$GITHUB_SHA"'
# The only steps that may see a secret (the cosign key and its password): they sign.
SECRET_SESSIONS = ("sign", "deploy")
SECRET_REF = re.compile(r"\$\{\{[^}]*\bsecrets\b[^}]*\}\}")
# owner/repo[/path]@<40 hex>; a local action (./) or a docker:// image is no pin.
PINNED_USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
GROUP_TAGS = ("ci", "release", "dev")
CI_ENTRY = "./noxw --provision -s ci"


@dataclass(frozen=True)
class NoxSession:
    name: str
    tags: tuple[str, ...]
    requires: tuple[str, ...]
    source: str  # FILE:LINE of the session's function: the noxfile's own, or the module that registered it


@dataclass(frozen=True)
class Noxfile:
    path: Path
    sessions: Mapping[str, NoxSession]
    ci_sessions: tuple[str, ...]
    needs_build: tuple[str, ...]
    needs_root: tuple[str, ...]
    default: tuple[str, ...]
    # What a deploy job runs for an environment it builds (RELEASE_SESSIONS), and for one that promotes
    # another environment's release without building (PROMOTE_SESSIONS).
    release_sessions: tuple[str, ...] = ()
    promote_sessions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    job: str
    index: int  # 1-based, as a reader counts
    name: str
    run: str | None
    uses: str | None
    with_: Mapping[str, Any]
    env: Mapping[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"job {self.job!r} step {self.index} ({self.name or self.uses or self.run!r})"


# --------------------------------------------------------------------------- the noxfile


# The lists a noxfile declares at module level, read from the loaded module.
NOXFILE_LISTS = ("CI_SESSIONS", "NEEDS_BUILD", "NEEDS_ROOT", "RELEASE_SESSIONS", "PROMOTE_SESSIONS")

# Run in a child interpreter: load the noxfile as nox does (by path, as `user_nox_module`, from its own
# directory), then write nox's registry, nox.options.sessions and the lists as JSON to the path argv[2].
# A child, so that the noxfile's effects on this process (nox's registry and options, sys.path, the
# working directory) cannot leak into it; its output goes to a file, as the noxfile may print.
_LOAD_NOXFILE = """
import importlib.util, json, os, sys, traceback
path, out = sys.argv[1], sys.argv[2]
try:
    os.chdir(os.path.dirname(path))
    import nox
    spec = importlib.util.spec_from_file_location("user_nox_module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["user_nox_module"] = module
    spec.loader.exec_module(module)
    sessions = []
    for name, func in nox.registry.get().items():
        code = getattr(func.func, "__code__", None)
        where = f"{code.co_filename}:{code.co_firstlineno}" if code else "?"
        sessions.append({"name": name, "tags": list(func.tags), "requires": list(func.requires), "source": where})
    lists = {k: getattr(module, k) for k in sys.argv[3:] if hasattr(module, k)}
    lists = {k: list(v) if isinstance(v, (list, tuple)) else repr(v) for k, v in lists.items()}
    default = nox.options.sessions
    result = {"sessions": sessions, "lists": lists, "default": list(default) if default else []}
except BaseException as exc:
    line = exc.lineno if isinstance(exc, SyntaxError) and exc.filename == path else None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    result = {"error": traceback.format_exception_only(exc)[-1].strip(), "line": line}
with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f)
"""


@functools.lru_cache(maxsize=32)
def _load_noxfile(path: str, digest: str) -> str:
    """The child's JSON for the noxfile at ``path`` with content hash ``digest`` (one load per content)."""
    with tempfile.TemporaryDirectory(prefix="pipelines-noxfile-") as tmp:
        out = Path(tmp) / "registry.json"
        # -P: no working directory on the path, as under the `nox` command: the noxfile finds what it
        # imports itself.
        argv = [sys.executable, "-P", "-c", _LOAD_NOXFILE, path, str(out), *NOXFILE_LISTS]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise InputError(
                f"{path}: loading it took over 120 s", hint="does the noxfile wait for something?"
            ) from None
        if not out.is_file():
            raise InputError(
                f"{path}: loading it as nox does ended without an answer (exit {r.returncode})",
                seen=(r.stderr or r.stdout)[-2000:],
                hint="fix the noxfile: `nox -l` shows the same failure",
            )
        return out.read_text(encoding="utf-8")


def _names(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    shown = value if isinstance(value, str) else repr(value)  # the child's repr of what is not a list
    raise InputError(
        f"{path}: {key} is not a list of session names ({shown})",
        hint=f"declare {key} = [...] at module level, a list of session names, so it can be checked",
    )


def read_noxfile(path: Path) -> Noxfile:
    """The sessions (name, tags, requires) nox registers from a noxfile, and the CI lists it declares."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc})", hint="fix the noxfile") from None
    found = json.loads(_load_noxfile(str(path.resolve()), hashlib.sha256(text).hexdigest()))
    if "error" in found:
        where = f"{path}:{found['line']}" if found.get("line") else str(path)
        raise InputError(
            f"{where}: cannot be loaded as nox loads it ({found['error']})",
            hint="fix the noxfile: `nox -l` shows the same failure",
        )
    sessions = {
        s["name"]: NoxSession(s["name"], tuple(s["tags"]), tuple(s["requires"]), s["source"]) for s in found["sessions"]
    }
    lists = {k: _names(path, k, v) for k, v in found["lists"].items()}
    if "CI_SESSIONS" not in lists:
        raise InputError(
            f"{path}: no CI_SESSIONS list",
            hint="declare CI_SESSIONS = [...] at module level: the sessions CI runs, in order",
        )
    return Noxfile(
        path,
        sessions,
        lists["CI_SESSIONS"],
        lists.get("NEEDS_BUILD", ()),
        lists.get("NEEDS_ROOT", ()),
        _names(path, "nox.options.sessions", found["default"]),
        lists.get("RELEASE_SESSIONS", ()),
        lists.get("PROMOTE_SESSIONS", ()),
    )


# --------------------------------------------------------------------------- the workflow


def read_workflow(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as YAML ({exc})", hint="fix the workflow file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise InputError(f"{path}: no `jobs:` mapping", hint="is this a GitHub Actions workflow?")
    return doc


def steps(doc: Mapping[str, Any]) -> list[Step]:
    out = []
    for job, spec in doc["jobs"].items():
        for i, step in enumerate((spec or {}).get("steps") or [], start=1):
            run = step.get("run")
            out.append(
                Step(
                    str(job),
                    i,
                    str(step.get("name", "")),
                    None if run is None else str(run).strip(),
                    step.get("uses"),
                    step.get("with") or {},
                    step.get("env") or {},
                )
            )
    return out


def session_steps(doc: Mapping[str, Any], job: str) -> list[str]:
    """The sessions a job runs, in order (steps that are not sessions are left out)."""
    names = []
    for st in steps(doc):
        m = SESSION_STEP.match(st.run or "")
        if st.job == job and m:
            names.append(m.group(1))
    return names


def deploy_jobs(doc: Mapping[str, Any]) -> dict[str, str]:
    """Jobs bound to a GitHub environment (``environment:``), with that environment's name."""
    out = {}
    for job, spec in doc["jobs"].items():
        env = (spec or {}).get("environment")
        name = env.get("name") if isinstance(env, dict) else env
        if name:
            out[str(job)] = str(name)
    return out


def _needs(doc: Mapping[str, Any], job: str) -> set[str]:
    """Every job ``job`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [job]
    while todo:
        spec = doc["jobs"].get(todo.pop()) or {}
        needs = spec.get("needs") or []
        for n in [needs] if isinstance(needs, str) else needs:
            if n not in seen:
                seen.add(str(n))
                todo.append(str(n))
    return seen


def _deploy_problems(doc: Mapping[str, Any], nox: Noxfile, pipeline: str) -> list[str]:
    problems = []
    for job, env in deploy_jobs(doc).items():
        ran = []
        for st in steps(doc):
            if st.job != job or st.run is None:
                continue
            m = DEPLOY_STEP.match(st.run)
            if not m:
                problems.append(f"{st.where} runs {st.run!r}: a deploy step is `./noxw -s NAME -- --env {env}` only")
                continue
            name, target, expect = m.groups()
            ran.append(name)
            if name == "deploy" and not expect:
                problems.append(
                    f"{st.where} deploys without{EXPECT_COMMIT}: the release must be of the run's commit "
                    "(the one its reviewers approved)"
                )
            elif expect and name != "deploy":
                problems.append(f"{st.where}: only the deploy session takes --expect-commit")
            if target != env:
                problems.append(f"{st.where} deploys --env {target} from the job of environment {env!r}")
            if name not in nox.sessions:
                problems.append(f"{st.where} runs session {name!r}, which {nox.path.name} does not define")
            elif st.name != name:
                problems.append(f"{st.where} runs session {name!r}: name the step {name!r}")
        allowed = [list(x) for x in (nox.release_sessions, nox.promote_sessions) if x]
        if ran not in allowed:
            problems.append(
                f"deploy job {job!r} runs sessions {ran}; {nox.path.name} says RELEASE_SESSIONS "
                f"{list(nox.release_sessions)} or PROMOTE_SESSIONS {list(nox.promote_sessions)}"
            )
        if pipeline not in _needs(doc, job):
            problems.append(f"deploy job {job!r} does not wait for {pipeline!r}: only a green pipeline deploys")
        conc = (doc["jobs"][job] or {}).get("concurrency")
        if not (isinstance(conc, dict) and conc.get("cancel-in-progress") is False):
            problems.append(f"deploy job {job!r} needs its own concurrency group with cancel-in-progress: false")
    return problems


def parity_problems(doc: Mapping[str, Any], nox: Noxfile, *, job: str = "pipeline") -> list[str]:
    """Every way the workflow, the noxfile's CI list and its tags disagree (empty when they agree)."""
    problems = []
    if job not in doc["jobs"]:
        problems.append(f"the workflow has no job {job!r} (the one that runs the CI sessions)")
    deploying = deploy_jobs(doc)
    problems += _deploy_problems(doc, nox, job)
    for st in steps(doc):
        if st.run is None or st.job in deploying:
            continue
        m = SESSION_STEP.match(st.run)
        if not m:
            problems.append(f"{st.where} runs {st.run!r}, not a session: CI steps are `./noxw -s NAME` only")
        elif m.group(1) not in nox.sessions:
            problems.append(f"{st.where} runs session {m.group(1)!r}, which {nox.path.name} does not define")
        elif st.job != job:
            problems.append(f"{st.where} runs session {m.group(1)!r} outside job {job!r}")
        elif st.name != m.group(1):
            # A red step must name the session that reproduces it.
            problems.append(f"{st.where} runs session {m.group(1)!r}: name the step {m.group(1)!r}")
    ran = session_steps(doc, job)
    if ran != list(nox.ci_sessions):
        problems.append(f"job {job!r} runs sessions {ran}, CI_SESSIONS in {nox.path.name} says {list(nox.ci_sessions)}")
    for name in nox.ci_sessions:
        if name not in nox.sessions:
            problems.append(f"CI_SESSIONS names {name!r}, which {nox.path.name} does not define")
    tagged = [s.name for s in nox.sessions.values() if "ci" in s.tags and s.name != "ci"]
    if sorted(tagged) != sorted(nox.ci_sessions):
        problems.append(f"sessions tagged 'ci' are {sorted(tagged)}, CI_SESSIONS is {sorted(nox.ci_sessions)}")
    entry = nox.sessions.get("ci")
    if entry is None:
        problems.append(f"{nox.path.name} has no `ci` session (what .ci/run runs)")
    elif entry.requires != nox.ci_sessions:
        problems.append(f"session 'ci' requires {list(entry.requires)}, not CI_SESSIONS {list(nox.ci_sessions)}")
    for s in nox.sessions.values():
        groups = [t for t in s.tags if t in GROUP_TAGS]
        if len(groups) != 1:
            problems.append(f"session {s.name!r} has group tags {groups}: it needs exactly one of {GROUP_TAGS}")
    order = list(nox.ci_sessions)
    for name in nox.needs_build:
        if name in order and ("build" not in order or order.index("build") > order.index(name)):
            problems.append(f"CI_SESSIONS runs {name!r}, which needs a build, before 'build'")
    for name in nox.default:
        if name in nox.needs_root:
            problems.append(f"the default session {name!r} needs root: a bare ./noxw must not")
        if name not in nox.sessions:
            problems.append(f"the default session {name!r} is not defined")
    return problems


def pin_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every `uses:` that is not pinned to a full commit SHA."""
    out = []
    for job, spec in doc["jobs"].items():
        uses = [(st.where, st.uses) for st in steps(doc) if st.job == job and st.uses is not None]
        if (spec or {}).get("uses"):
            uses.append((f"job {job!r}", spec["uses"]))
        for where, ref in uses:
            if not PINNED_USES.match(str(ref)):
                out.append(f"{where} uses {ref!r}: pin it to a full 40-hex commit SHA (version in a comment)")
    return out


def _permissions(spec: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    perms = (spec or {}).get("permissions")
    return perms if isinstance(perms, dict) else None


def hardening_problems(doc: Mapping[str, Any], *, upload_job: str = "code-scanning") -> list[str]:
    """Least privilege, timeouts, concurrency and credential hygiene, job by job."""
    out = []
    top = doc.get("permissions")
    if top not in ({}, {"contents": "read"}):
        out.append(f"workflow-level permissions are {top!r}: grant nothing (or contents: read) and widen per job")
    if not isinstance(doc.get("concurrency"), dict | str):
        out.append("no `concurrency:`: a newer push must cancel the run it replaces")
    for job, spec in doc["jobs"].items():
        perms = _permissions(spec)
        if perms is None:
            out.append(f"job {job!r} has no `permissions:` of its own")
            continue
        for scope, level in perms.items():
            if level == "write" and not (job == upload_job and scope == "security-events"):
                out.append(f"job {job!r} grants {scope}: write; only {upload_job!r} may write (security-events)")
        if perms.get("contents") not in ("read", None):
            out.append(f"job {job!r}: contents must be read")
        if not isinstance((spec or {}).get("timeout-minutes"), int):
            out.append(f"job {job!r} has no timeout-minutes")
    for st in steps(doc):
        if st.uses and st.uses.split("@")[0] == "actions/checkout" and st.with_.get("persist-credentials") is not False:
            out.append(f"{st.where}: checkout without persist-credentials: false keeps the token on disk")
        if st.run and "${{" in st.run:
            out.append(f"{st.where}: `${{{{ }}}}` expanded inside run: (pass it through env: instead)")
    return out


def secret_refs(value: Any) -> list[str]:
    """Every ``${{ ... secrets ... }}`` expression in a YAML value, however deep."""
    if isinstance(value, Mapping):
        return [r for k, v in value.items() for r in (*secret_refs(k), *secret_refs(v))]
    if isinstance(value, list | tuple):
        return [r for v in value for r in secret_refs(v)]
    return [m.group(0) for m in SECRET_REF.finditer(value)] if isinstance(value, str) else []


def secret_problems(doc: Mapping[str, Any]) -> list[str]:
    """Secrets reach only the steps that sign (SECRET_SESSIONS), through their own step-level env.

    Not the workflow's or a job's env (every step of the job would have them: build, scan, verify,
    smoke and the tests run code a pull request can change), and not any other step.
    """
    out = []
    for found in secret_refs({k: v for k, v in doc.items() if k != "jobs"}):
        out.append(f"the workflow's top level uses {found}: give secrets to the steps that sign only")
    for job, spec in doc["jobs"].items():
        for found in secret_refs({k: v for k, v in (spec or {}).items() if k != "steps"}):
            out.append(f"job {job!r} uses {found} outside its steps: give secrets to the steps that sign only")
    for st in steps(doc):
        m = DEPLOY_STEP.match(st.run or "")
        may = m is not None and m.group(1) in SECRET_SESSIONS and st.uses is None
        raw = dict((doc["jobs"][st.job].get("steps") or [])[st.index - 1])
        for key, value in raw.items():
            for found in secret_refs(value):
                if not (may and key == "env"):
                    out.append(
                        f"{st.where} uses {found}: only the {' and '.join(SECRET_SESSIONS)} steps of a deploy job "
                        "may see a secret, in their own env:"
                    )
    return out


def _self_hosted(runs_on: Any) -> bool:
    """``runs-on`` names a self-hosted runner: the label, or a runner group (groups hold the organisation's own)."""
    if isinstance(runs_on, dict):
        return "group" in runs_on or _self_hosted(runs_on.get("labels"))
    labels = [runs_on] if isinstance(runs_on, str) else list(runs_on or [])
    return "self-hosted" in [str(x) for x in labels]


def runner_problems(doc: Mapping[str, Any], *, default_branch: str = "main") -> list[str]:
    """Self-hosted runners (the deploy host) run only the deploy jobs, only for pushes to the default branch.

    A pull request's code must never reach the deploy host: each self-hosted job is bound to its GitHub
    environment and says so in its own ``if:`` (a job skipped because the one it needs was skipped
    is not enough: ``if: always()`` on it would run it anyway).
    """
    out = []
    deploying = deploy_jobs(doc)
    push = "github.event_name == 'push'"
    branch = f"github.ref == 'refs/heads/{default_branch}'"
    for job, spec in doc["jobs"].items():
        if not _self_hosted((spec or {}).get("runs-on")):
            continue
        if job not in deploying:
            out.append(f"job {job!r} runs on a self-hosted runner but is not a deploy job (no `environment:`)")
        cond = " ".join(str((spec or {}).get("if") or "").split())
        for clause in (push, branch):
            if clause not in cond:
                out.append(
                    f"self-hosted job {job!r}: its `if:` lacks {clause!r} "
                    f"(never a pull request, only pushes to {default_branch})"
                )
        if any(bad in cond for bad in ("always()", "||")):
            out.append(f"self-hosted job {job!r}: its `if:` {cond!r} could run it for other events")
    return out


def ci_command(run_script: Path) -> str:
    """The command `.ci/run` ends with: the README's test command, verbatim."""
    lines = [ln.strip() for ln in run_script.read_text(encoding="utf-8").splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    if not commands:
        raise InputError(f"{run_script}: no command", hint=f"it should end with `{CI_ENTRY}`")
    return commands[-1]


def uses_with_versions(path: Path) -> Sequence[tuple[str, str]]:
    """(uses, version comment) for every `uses:` line, as written in the file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*(?:-\s*)?uses:\s*(\S+)\s*(?:#\s*(.*))?$", line)
        if m:
            out.append((m.group(1), (m.group(2) or "").strip()))
    return out
