"""The project's own Dockerfile hardening policy, on BuildKit's real parse.

Each rule has a stable ID, a severity, a one-line rationale and a fix hint.
Rules look at stages and instructions (with line numbers) as BuildKit's
parser returns them, not at regex matches over the text.

The package, by what each module holds: :mod:`.model` (the parse: stages,
instructions, build args), :mod:`.stages` (which stage ships and what it is
built from), :mod:`.shell` (what a RUN executes), :mod:`.rules` (the
catalogue and how a finding is made), and the rules by theme:
:mod:`.privilege`, :mod:`.runtime`, :mod:`.provenance`, :mod:`.secrets`,
:mod:`.packages`, :mod:`.build_context`. This module runs them and drops
what the image's role exempts.
"""

from __future__ import annotations

from ...findings import Finding
from .build_context import check_dockerignore, dockerignore_patterns, ignored
from .model import Parsed, Stage, parse
from .packages import check_apt, check_final_tooling, check_layer_order
from .privilege import check_chown, check_sudo, check_user, check_world_writable
from .provenance import (
    PINNED_BY_PIPELINE,
    check_add,
    check_pinned,
    check_pipe_to_shell,
    check_remote_packages,
    unresolved_bases,
)
from .rules import RULES, TOOL, Check, Context
from .runtime import check_exec_form, check_healthcheck, check_labels
from .secrets import check_secrets
from .stages import final_stage, is_export_stage, shipped_stages

__all__ = [
    "CHECKS",
    "NOT_FOR_ROLE",
    "PINNED_BY_PIPELINE",
    "RULES",
    "TOOL",
    "Context",
    "Parsed",
    "Stage",
    "check",
    "dockerignore_patterns",
    "final_stage",
    "ignored",
    "parse",
    "shipped_stages",
    "unresolved_bases",
]

# Rules that judge an image as a running service; base images skip some.
RUNTIME_RULES = {"PL-D001", "PL-D002", "PL-D005", "PL-D006", "PL-D015", "PL-D017"}
NOT_FOR_ROLE = {
    "builder": {"PL-D001", "PL-D002", "PL-D006", "PL-D015"},  # root and compilers are its purpose
    "runtime": {"PL-D002", "PL-D015"},  # no app to probe yet; system files belong to root
    "service": set(),
    # A final stage that only collects files for `docker build --output` is never run.
    "export": RUNTIME_RULES,
}


# Every rule's check, in rule ID order.
CHECKS: tuple[Check, ...] = (
    check_user,
    check_healthcheck,
    check_pinned,
    check_secrets,
    check_exec_form,
    check_final_tooling,
    check_apt,
    check_layer_order,
    check_add,
    check_pipe_to_shell,
    check_sudo,
    check_chown,
    check_dockerignore,
    check_labels,
    check_remote_packages,
    check_world_writable,
)


def check(p: Parsed, ctx: Context) -> list[Finding]:
    final = final_stage(p, ctx.target)
    out: list[Finding] = []
    for rule in CHECKS:
        out.extend(rule(p, final, ctx))
    skip = NOT_FOR_ROLE["export"] if is_export_stage(final) else NOT_FOR_ROLE[ctx.role]
    return [f for f in out if f.rule not in skip]
