"""What every deploy engine reports: the steps it took, and the two ways a rollout ends early.

An engine (``compose_engine``, ``swarm``) is a module that satisfies :class:`DeployEngine`:

    apply(ctx, new: Deployment, old: Deployment | None, *, replace_stateful, floor, log) -> list[Step]

that raises :class:`GateBroken` after restoring ``old`` for whatever it had
switched (exit 1), or :class:`DeployInterrupted` the same way on Ctrl-C (exit
130). The stage records the release from that and renders the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import GateFailed, Interrupted

if TYPE_CHECKING:
    from ..result import Context
    from .plan import Deployment


@dataclass
class Step:
    """What happened to one service."""

    service: str
    action: str  # created, rolled, replaced in place, kept, unchanged, job ran, removed, restored, ...
    image: str = ""
    gate: str = ""  # "healthy in 4.1 s", "exit 0", "unhealthy", ...
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""


class GateBroken(GateFailed):
    """A new container failed its gate; what was switched has been restored (exit 1)."""

    def __init__(self, what: str, *, steps: list[Step], seen: str | None = None, hint: str | None = None) -> None:
        super().__init__(what, seen=seen, hint=hint)
        self.steps = steps
        # Seconds from the failed gate's verdict to the previous release alone serving (None: not measured).
        self.rollback_s: float | None = None


class DeployInterrupted(Interrupted):
    """Ctrl-C during the rollout; the new containers were removed and the previous release restored (exit 130)."""

    def __init__(self, what: str, *, steps: list[Step]) -> None:
        super().__init__(what)
        self.steps = steps


class DeployEngine(Protocol):
    """The one contract of a deploy engine module; the stage calls nothing else on it."""

    def apply(
        self,
        ctx: Context,
        new: Deployment,
        old: Deployment | None,
        *,
        replace_stateful: tuple[str, ...] = (),
        floor: float = 0.0,
        log: Callable[[str], None] = ...,
    ) -> list[Step]:
        """Roll ``new`` out over ``old``; the steps taken, or GateBroken / DeployInterrupted."""
        ...
