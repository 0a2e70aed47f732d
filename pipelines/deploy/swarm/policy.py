"""The stack file's fixed values: every default the render applies, and the tables of Compose keys it copies,
maps or drops (with why)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ...composespec import DOCKER_HEALTHCHECK, Default

# The Compose file format docker/cli 20.10 (Engine API 1.41) reads; newer CLIs read it too.
STACK_VERSION = "3.9"
NOTICES_KEY = "x-pipelines"
STACK_LABEL = "com.docker.stack.namespace"
_DIGEST_REF = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
_STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")
# Swarm names objects STACK_NAME; secret and config names are capped at 64 characters.
_MAX_OBJECT_NAME = 64

Log = Callable[[str], None]


# Every value not read from the Compose render or the image map.
DEFAULTS: dict[str, Default] = {
    "version": Default(STACK_VERSION, "the Compose file format of docker/cli 20.10 (Engine API 1.41)"),
    "update.parallelism": Default(1, "one task at a time: the others keep serving"),
    "update.order": Default(
        "start-first",
        "the new task runs beside the old one until healthy; stop-first for a service that publishes a host "
        "port (a port cannot be bound twice) or mounts a named volume (two writers on one data directory)",
    ),
    "update.failure_action": Default("rollback", "a task that fails its healthcheck rolls the service back"),
    "update.monitor": Default(
        "start_period + interval x retries + timeout",
        "a task that fails within this window of its start counts as a failed update; from the healthcheck",
    ),
    "rollback.failure_action": Default("pause", "a rollback that fails too stops and waits for a person"),
    "endpoint_mode": Default("dnsrr", "the virtual-IP endpoint mode needs IPVS in the kernel"),
    "ports.mode": Default("host", "the ingress routing mesh needs IPVS in the kernel"),
    "networks.driver": Default("overlay", "networks of a multi-host swarm"),
    "secret.name": Default("STACK_KEY_SHA256[:12]", "Swarm secrets are immutable: new content, new secret"),
    "job.restart_policy": Default({"condition": "none"}, "a one-shot job that fails is not retried: it aborts"),
    "job.healthcheck": Default({"disable": True}, "a one-shot job serves nothing: its image's healthcheck is off"),
    "replicas": Default(1, "Compose runs one container per service"),
    "docker.healthcheck": DOCKER_HEALTHCHECK,
}

# Service keys a 3.9 stack file carries with the meaning Compose gives them: copied as they are.
_COPIED = (
    "cap_add",
    "cap_drop",
    "command",
    "dns",
    "dns_search",
    "entrypoint",
    "expose",
    "extra_hosts",
    "hostname",
    "init",
    "labels",
    "logging",
    "read_only",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tty",
    "ulimits",
    "user",
    "working_dir",
)
# Service keys the render turns into their Swarm form.
_MAPPED = {
    "image",
    "environment",
    "healthcheck",
    "ports",
    "networks",
    "secrets",
    "configs",
    "volumes",
    "tmpfs",
    "deploy",
    "restart",
    "cpus",
    "mem_limit",
    "mem_reservation",
    "pids_limit",
    "scale",
    "depends_on",
}
# Why a key that Swarm ignores or rejects is dropped; any other unknown key: "not in the 3.9 format".
_DROPPED_WHY = {
    "depends_on": "Swarm has no start order; one-shot jobs run first, the rest wait on their healthchecks",
    "security_opt": "docker stack deploy ignores security_opt (no-new-privileges, seccomp, apparmor); "
    "cap_drop still applies",
    "container_name": "Swarm names each task's container itself",
    "privileged": "Swarm services cannot run privileged",
    "devices": "Swarm services cannot map host devices",
    "network_mode": "Swarm services join overlay networks only",
    "links": "links are a single-host feature; services find each other by name on shared networks",
    "external_links": "links are a single-host feature",
    "cgroup_parent": "docker stack deploy ignores it",
    "userns_mode": "docker stack deploy ignores it",
    "ipc": "docker stack deploy ignores it",
    "pid": "docker stack deploy ignores it",
    "shm_size": "not in the 3.9 format",
    "mac_address": "not in the 3.9 format",
    "build": "Swarm deploys built images only",
    "profiles": "Swarm has no profiles: every service of the render is deployed",
    "pull_policy": "Swarm pulls the digest a task needs",
    "platform": "Swarm places tasks by the image's platforms",
    "env_file": "its variables are in the render's environment already",
    "mem_swappiness": "no swap control in Swarm services",
    "memswap_limit": "no swap control in Swarm services",
    "oom_score_adj": "docker stack deploy ignores it",
    "cpu_shares": "a forbidden property in the 3.9 format; use deploy.resources",
    "cpuset": "a forbidden property in the 3.9 format",
    "runtime": "Swarm services use the default runtime",
}
_VOLUME_KEYS = {"type", "source", "target", "read_only", "consistency"}
_VOLUME_SUB = {"bind": {"propagation"}, "volume": {"nocopy"}, "tmpfs": {"size"}}
