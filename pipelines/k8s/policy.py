"""The restricted Pod Security Standard: what a Compose service may not ask for, and what no rendered pod may hold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import compose_model
from ..compose_model import Service
from .values import _fail

# Compose keys that cannot be held to the restricted profile: an error, never an omission.
_REFUSED = {
    "privileged": "privileged containers",
    "devices": "host devices",
    "pid": "the host PID namespace",
    "ipc": "the host IPC namespace",
    "network_mode": "another network namespace",
    "userns_mode": "a user namespace mode",
    "sysctls": "sysctls",
    "cgroup_parent": "a cgroup parent",
}


def _check_refused(name: str, spec: Service) -> None:
    for key, what in _REFUSED.items():
        value = compose_model.thaw(spec.value(key))
        if not compose_model.is_set(value):
            continue
        if key == "network_mode" and value in ("bridge", "default"):
            continue
        raise _fail(name, key, f"asks for {what} ({value!r}), which the restricted profile forbids", f"remove `{key}`")
    allowed = {"NET_BIND_SERVICE"}
    for cap in spec.cap_add:
        bare = str(cap).upper().removeprefix("CAP_")
        if bare not in allowed:
            raise _fail(
                name,
                "cap_add",
                f"adds capability {cap}; the restricted profile allows adding only NET_BIND_SERVICE",
                "drop the cap_add entry (bind ports above 1024 instead of needing privileges)",
            )
    for opt in spec.security_opt:
        text = str(opt).replace("=", ":")
        if text.startswith(("seccomp:unconfined", "apparmor:unconfined", "label:disable")):
            raise _fail(name, "security_opt", f"{opt!r} turns a confinement off", f"remove {opt!r}")
    if spec.user in ("root", "0", "0:0"):
        raise _fail(name, "user", "runs as root", "run as a numeric non-root user")


_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
_BASELINE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """What breaks the restricted Pod Security Standard (baseline included), per object and field.

    The controls of https://kubernetes.io/docs/concepts/security/pod-security-standards/ as of v1.30+:
    host namespaces, privileged, capabilities, hostPath and volume types, host ports, AppArmor,
    SELinux, /proc mount, seccomp, sysctls, privilege escalation, non-root user and UID.
    """
    bad: list[str] = []
    for o in objects:
        kind = o.get("kind")
        if kind == "Pod":
            spec = o.get("spec") or {}
        elif kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
            spec = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
        else:
            continue
        where = f"{kind}/{(o.get('metadata') or {}).get('name')}"
        psc = spec.get("securityContext") or {}
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(k):
                bad.append(f"{where}: spec.{k} is true")
        for v in spec.get("volumes") or []:
            types = set(v) - {"name"}
            if not types <= _RESTRICTED_VOLUMES:
                bad.append(f"{where}: volume {v.get('name')} has type {sorted(types - _RESTRICTED_VOLUMES)}")
        for s in psc.get("sysctls") or []:
            if s.get("name") not in _BASELINE_SYSCTLS:
                bad.append(f"{where}: securityContext.sysctls {s.get('name')} is not a safe sysctl")
        pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
        if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{where}: securityContext.seccompProfile.type is {pod_seccomp}")
        if psc.get("runAsUser") == 0:
            bad.append(f"{where}: securityContext.runAsUser is 0")
        if (psc.get("seLinuxOptions") or {}).get("type") not in (None, "", *_SELINUX_TYPES):
            bad.append(f"{where}: securityContext.seLinuxOptions.type is not allowed")
        if (psc.get("windowsOptions") or {}).get("hostProcess"):
            bad.append(f"{where}: securityContext.windowsOptions.hostProcess is true")
        if (psc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{where}: securityContext.appArmorProfile is not RuntimeDefault/Localhost")
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(group) or []:
                at = f"{where}: {group}[{c.get('name')}]"
                sc = c.get("securityContext") or {}
                if sc.get("privileged"):
                    bad.append(f"{at}.securityContext.privileged is true")
                if (sc.get("windowsOptions") or {}).get("hostProcess"):
                    bad.append(f"{at}.securityContext.windowsOptions.hostProcess is true")
                if sc.get("allowPrivilegeEscalation") is not False:
                    bad.append(f"{at}.securityContext.allowPrivilegeEscalation is not false")
                caps = sc.get("capabilities") or {}
                if "ALL" not in (caps.get("drop") or []):
                    bad.append(f"{at}.securityContext.capabilities.drop does not contain ALL")
                extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
                if extra:
                    bad.append(f"{at}.securityContext.capabilities.add has {sorted(extra)}")
                non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
                if non_root is not True:
                    bad.append(f"{at}: runAsNonRoot is not true (container or pod)")
                if sc.get("runAsUser") == 0:
                    bad.append(f"{at}.securityContext.runAsUser is 0")
                seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
                if seccomp not in ("RuntimeDefault", "Localhost"):
                    bad.append(f"{at}: seccompProfile is not RuntimeDefault/Localhost (container or pod)")
                if (sc.get("seLinuxOptions") or {}).get("type") not in (None, "", *_SELINUX_TYPES):
                    bad.append(f"{at}.securityContext.seLinuxOptions.type is not allowed")
                if sc.get("procMount") not in (None, "Default"):
                    bad.append(f"{at}.securityContext.procMount is {sc.get('procMount')}")
                if (sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
                    bad.append(f"{at}.securityContext.appArmorProfile is not RuntimeDefault/Localhost")
                for p in c.get("ports") or []:
                    if p.get("hostPort"):
                        bad.append(f"{at}.ports hostPort {p.get('hostPort')}")
                # Probes and lifecycle hooks may not aim at another host (baseline "Host Probes / Lifecycle Hooks").
                handlers = {k: c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")}
                handlers.update({f"lifecycle.{k}": h for k, h in (c.get("lifecycle") or {}).items()})
                for hname, h in sorted(handlers.items()):
                    for how in ("httpGet", "tcpSocket"):
                        if ((h or {}).get(how) or {}).get("host"):
                            bad.append(f"{at}.{hname}.{how}.host is set")
        for k, v in ((o.get("metadata") or {}).get("annotations") or {}).items():
            if (
                k.startswith("container.apparmor.security.beta.kubernetes.io/")
                and v not in ("runtime/default",)
                and not str(v).startswith("localhost/")
            ):
                bad.append(f"{where}: annotation {k} is {v}")
    return bad
