"""How the final image is started and probed, and what it says about its source (PL-D002, D005, D017)."""

from __future__ import annotations

from collections.abc import Iterator

from ...findings import Finding, Severity
from .model import Parsed, Stage, env_pairs
from .rules import Context, finding
from .stages import shipped_stages, stage_name

OCI_KEYS = ("title", "version", "created", "revision", "source")
INTERPRETERS = {"python", "python3", "node", "bash", "sh", "ash", "zsh", "irb", "php", "jshell", "pwsh", "ruby"}


def _is_service(p: Parsed, final: Stage) -> bool:
    """Whether the image runs a service: it exposes a port, or its command is more than a bare interpreter."""
    chain = shipped_stages(p, final)
    if any(c.cmd == "EXPOSE" for s in chain for c in s.commands):
        return True
    runs = [c for s in chain for c in s.commands if c.cmd in ("CMD", "ENTRYPOINT")]
    if not runs:
        return False
    words = [w for c in runs[-1:] for w in c.value]
    program = words[0].rsplit("/", 1)[-1] if words else ""
    # `python3 server.py`, `python -m app`: an interpreter given something to run is the service.
    return program not in INTERPRETERS or any(not w.startswith("-") for w in words[1:])


def check_healthcheck(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    checks = [c for s in shipped_stages(p, final) for c in s.commands if c.cmd == "HEALTHCHECK"]
    if not checks:
        if not _is_service(p, final):
            return  # a base or tool image with nothing to probe (an interpreter, a CLI)
        yield finding(p, "PL-D002", final.line, f"final stage {stage_name(final)} has no HEALTHCHECK")
        return
    c = checks[-1]
    if c.value and c.value[0].upper() == "NONE":
        yield finding(p, "PL-D002", c.start_line, "HEALTHCHECK NONE disables health checking")
    elif not c.json:
        yield finding(p, "PL-D002", c.start_line, "HEALTHCHECK uses shell form (needs /bin/sh in the image)")


def check_exec_form(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    for c in final.commands:
        if c.cmd in ("ENTRYPOINT", "CMD") and not c.json:
            yield finding(p, "PL-D005", c.start_line, f"{c.cmd} uses shell form: {c.original}")


def check_labels(p: Parsed, final: Stage, ctx: Context) -> Iterator[Finding]:
    if ctx.labels_by_pipeline:
        return
    present = set()
    for s in p.stages[: final.index + 1]:
        for c in s.commands:
            if c.cmd == "LABEL":
                for k, _ in env_pairs(c):
                    present.add(k.strip("'\""))
    missing = [k for k in OCI_KEYS if f"org.opencontainers.image.{k}" not in present]
    if missing:
        sev = Severity.WARNING if ctx.labels_required else Severity.INFO
        yield finding(p, "PL-D017", final.line, f"missing OCI labels: {', '.join(missing)}", sev)
