"""The Docker Swarm engine: `pipelines deploy --env ENV --engine swarm`.

Two halves:

* :func:`render_stack` (``render``) turns the environment's merged Compose render (what
  ``docker compose config`` prints, see :mod:`pipelines.composefile`) and the
  images to deploy (compose service -> ``repo@sha256:...``) into a stack file
  that ``docker stack deploy`` (docker/cli 20.10 and newer, Compose file
  format 3.9) runs as meant. Every value that is not read from the Compose
  render or the image map comes from :data:`DEFAULTS`; every Compose key that
  Swarm ignores or rejects is dropped with a notice naming the service, the
  key and why (kept in the file under ``x-pipelines.notices``), never
  silently. Output is byte-identical for identical input.
* :func:`deploy` (``rollout``) runs ``docker stack deploy`` in phases (the services one-shot
  jobs wait for, then each job to completion, then the rest) and WATCHES the
  update: docker/cli exits 0 even when Swarm then rolls the update back, so
  success is decided here, from the services' UpdateStatus and their tasks:
  every service converged, tasks running (Swarm marks a task running only
  once its healthcheck passed) on the new digests, no rollback, no pause.

Decisions (README "Deploying to Docker Swarm" states them for users):

* Published ports use ``mode: host``: the ingress routing mesh needs IPVS in
  the kernel, which not every host has; a host port also cannot be bound by
  two tasks, so such a service updates stop-first. A ``host_ip`` (Compose
  ``127.0.0.1:8000:8000``) has no Swarm equivalent: the port is published on
  every interface, and the notice says so.
* Services are found by DNS round robin (``endpoint_mode: dnsrr``): the
  virtual IP endpoint mode is IPVS too.
* Secrets are immutable in Swarm: each is named ``STACK_KEY_HASH`` with a hash
  of its content, so a changed secret is a new secret that the update rolls
  out like an image; secrets no service uses any more are removed after a
  deploy converged.
* One-shot jobs (restart "no", another service depends on them with
  ``service_completed_successfully``) become ``mode: replicated-job``
  services, deployed alone and waited on before the services that need them.
  Swarm re-runs a job on every update of its service, so a job is in exactly
  one phase of a deploy, and a rollback to earlier digests does not run jobs.
* Named volumes are the stack's (``STACK_KEY``), not Compose's implied
  ``PROJECT_KEY``, so two stacks of one project never share data; a volume
  the Compose file names explicitly keeps that name.
"""

from __future__ import annotations

from .contract import apply, stack_name
from .engine_api import SwarmNotReady, check_manager
from .phases import _phase_file, deadline_for, phases
from .policy import DEFAULTS, NOTICES_KEY, STACK_LABEL, STACK_VERSION, Log
from .render import SwarmRenderError, Window, _duration_ns, dump, health_window, notices, render_stack
from .rollout import Outcome, PhaseResult, deploy, rollback

__all__ = [
    "DEFAULTS",
    "NOTICES_KEY",
    "STACK_LABEL",
    "STACK_VERSION",
    "Log",
    "Outcome",
    "PhaseResult",
    "SwarmNotReady",
    "SwarmRenderError",
    "Window",
    "_duration_ns",
    "_phase_file",
    "apply",
    "check_manager",
    "deadline_for",
    "deploy",
    "dump",
    "health_window",
    "notices",
    "phases",
    "render_stack",
    "rollback",
    "stack_name",
]
