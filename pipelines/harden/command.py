"""ENTRYPOINT and CMD: the original's command in exec form behind tini, or the manual step that gets it there."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from .parse import Instruction

TINI = ("/usr/bin/tini", "--")
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_SHELL_ONLY = re.compile(r"[|;<>`]|\$\(|\|\||(?<!&)&(?!&)|\b(?:if|then|for|while|case)\b")
_MIGRATION = re.compile(
    r"\b(?:migrate|upgrade|alembic|makemigrations|collectstatic|compilemessages|createcachetable|db\s+upgrade|init[-_]?db|"
    r"wait[-_]for|prestart|setup)\b"
)
_SCRIPT = re.compile(
    r"(?:^|/)[^/\s]+\.(?:sh|bash)$|(?:^|/)(?:docker-)?entrypoint(?:\.\w+)?$|^/init$|(?:^|/)(?:supervisord|runsvdir|s6-svscan)$"
)
_SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/env")


class Unconvertible(Exception):
    """The command needs a shell, or a person: ``step`` is the manual step, ``line`` where."""

    def __init__(self, line: int, what: str, step: str, script: str = "") -> None:
        super().__init__(what)
        self.line = line
        self.what = what
        self.step = step
        self.script = script  # the entrypoint script's path in the image, when that is what stops it


@dataclass(frozen=True)
class Command:
    entrypoint: tuple[str, ...]  # after tini
    cmd: tuple[str, ...]
    notes: tuple[str, ...]  # what changed in meaning, in words
    job: tuple[str, ...] = ()  # a one-shot command split off a `JOB && SERVER` chain


def _expand(word: str, env: Mapping[str, str], ins: Instruction, notes: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        default = m.group("default")
        if name in env:
            notes.append(
                f"${name} fixed to {env[name]!r} (ENV/ARG of the Dockerfile); a value set at run time no longer applies"
            )
            return env[name]
        if default is not None:
            notes.append(f"${name} fixed to its default {default!r}; a value set at run time no longer applies")
            return default
        raise Unconvertible(
            ins.line,
            f"{ins.keyword} expands ${name}, whose value is not known here",
            f"write {ins.keyword} in exec form with the value of ${name} (or read it in the application)",
        )

    return _VAR.sub(sub, word)


def _words(text: str, env: Mapping[str, str], ins: Instruction, notes: list[str]) -> list[str]:
    if _SHELL_ONLY.search(text):
        raise Unconvertible(
            ins.line,
            f"{ins.keyword} needs a shell (pipes, redirections, ';' or control flow): {text}",
            "python-runtime has no shell: move the shell logic into the application or a Python entry module, "
            f"then write {ins.keyword} in exec form",
        )
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        raise Unconvertible(
            ins.line, f"{ins.keyword} cannot be split into words: {text}", f"write {ins.keyword} in exec form"
        ) from None
    if words and words[0] == "exec":
        words = words[1:]
    return [_expand(w, env, ins, notes) for w in words]


def _shell_c(argv: list[str]) -> str | None:
    """The script of an exec-form ``sh -c SCRIPT`` (None: not one)."""
    if len(argv) >= 3 and argv[0] in _SHELLS[:4] and argv[1] in ("-c", "-ec", "-xc", "-exc"):
        return argv[2]
    return None


def _script(ins: Instruction, argv: list[str]) -> None:
    if argv and _SCRIPT.search(argv[0]):
        raise Unconvertible(
            ins.line,
            f"{ins.keyword} runs {argv[0]} (a shell script or process supervisor), and python-runtime has no shell",
            f"move what {argv[0]} does before the server into the builder stage or a one-shot Compose service "
            f"(migrations, waiting for a database), then set {ins.keyword} to the server command in exec form",
            script=argv[0],
        )


def _chain(ins: Instruction, text: str, env: Mapping[str, str], notes: list[str]) -> tuple[list[str], list[str]]:
    """(job, server) of ``JOB && SERVER``; a longer chain, or one whose first part is no setup step, is refused."""
    parts = [p.strip() for p in text.split("&&")]
    if len(parts) == 2 and all(parts) and _MIGRATION.search(parts[0]) and not _MIGRATION.search(parts[1]):
        return _words(parts[0], env, ins, notes), _words(parts[1], env, ins, notes)
    raise Unconvertible(
        ins.line,
        f"{ins.keyword} chains {len(parts)} commands with &&: {text}",
        "split it: each setup step a one-shot Compose service the server depends_on "
        "(condition: service_completed_successfully), the server the image's CMD in exec form",
    )


def _argv(ins: Instruction, env: Mapping[str, str], notes: list[str]) -> tuple[list[str], list[str]]:
    """(job, argv) of one ENTRYPOINT/CMD."""
    exec_form = ins.exec_form()
    if exec_form is not None:
        script = _shell_c(exec_form)
        if script is None:
            _script(ins, exec_form)
            return [], exec_form
        text = script
    else:
        text = ins.operands
    if "&&" in text:
        job, server = _chain(ins, text, env, notes)
        _script(ins, server)
        return job, server
    argv = _words(text, env, ins, notes)
    _script(ins, argv)
    return [], argv


def convert(entrypoint: Instruction | None, cmd: Instruction | None, env: Mapping[str, str]) -> Command:
    """The command of the hardened image: tini first, then the original's ENTRYPOINT and CMD in exec form."""
    notes: list[str] = []
    job: list[str] = []
    ep: list[str] = []
    if entrypoint is not None:
        job, ep = _argv(entrypoint, env, notes)
        if ep[:2] == list(TINI) or ep[:1] in (["tini"], ["/tini"], ["/usr/bin/tini"]):
            ep = ep[2:] if ep[1:2] == ["--"] else ep[1:]
    args: list[str] = []
    if cmd is not None:
        cmd_job, args = _argv(cmd, env, notes)
        if cmd_job and job:
            raise Unconvertible(
                cmd.line, "ENTRYPOINT and CMD both chain a setup step", "split both into Compose services"
            )
        job = job or cmd_job
        if entrypoint is not None and cmd.exec_form() is None:
            notes.append("a shell-form CMD beside an ENTRYPOINT was ignored by Docker; it is kept as arguments now")
    if not ep and not args:
        args = ["python3"]
        notes.append("no command given: the upstream image's default (python3) is kept")
    if job:
        notes.append(
            f"two Compose services: a one-shot job running {shlex.join(job)} and the server running "
            f"{shlex.join([*ep, *args])} (depends_on the job with condition: service_completed_successfully)"
        )
    return Command(tuple(ep), tuple(args), tuple(dict.fromkeys(notes)), tuple(job))
