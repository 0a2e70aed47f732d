"""A rendered Compose config (`docker compose config --format json`) as frozen, typed records.

Lint, smoke, the deploy plan, Swarm and Kubernetes all read the same render. It
is parsed here once: every key a consumer interprets gets a typed field, a
value of the wrong shape is one :class:`ComposeShapeError` naming the file and
the key path (exit 2), and nothing downstream guards against ``None`` or a
list where a mapping belongs. Keys no consumer interprets stay in ``extras``
(deep-frozen JSON) so a renderer that copies them through, or names what it
drops, still sees them; ``given`` says which keys the render set at all, since
"unset" and "set to a false value" read differently to Compose.

Values whose meaning depends on the consumer (durations, sizes, CPU counts)
stay as written: :func:`duration`, :func:`size` and :func:`cpus` turn them
into numbers with an error that names the service and key, raised as the
caller's own error type.

The package, by what each module holds: :mod:`.frozen` (JSON values made
immutable, and what counts as unset), :mod:`.shape` (reading with the key
path, the error that names it), :mod:`.records` (the typed records),
:mod:`.parsing` (the render into records), :mod:`.units` (durations, sizes
and CPU counts for the renderers).
"""

from __future__ import annotations

from .frozen import Frozen, Scalar, freeze, is_set, thaw
from .parsing import parse
from .records import (
    COMPLETED,
    Attachment,
    Build,
    Dependency,
    Deploy,
    FileObject,
    FileRef,
    Healthcheck,
    Mount,
    Network,
    Port,
    Project,
    Resources,
    Service,
    Volume,
)
from .shape import ComposeShapeError
from .units import cpus, duration, service_error, size

# The model's public names, whichever module defines them: callers import them from here.
__all__ = [
    "COMPLETED",
    "Attachment",
    "Build",
    "ComposeShapeError",
    "Dependency",
    "Deploy",
    "FileObject",
    "FileRef",
    "Frozen",
    "Healthcheck",
    "Mount",
    "Network",
    "Port",
    "Project",
    "Resources",
    "Scalar",
    "Service",
    "Volume",
    "cpus",
    "duration",
    "freeze",
    "is_set",
    "parse",
    "service_error",
    "size",
    "thaw",
]
