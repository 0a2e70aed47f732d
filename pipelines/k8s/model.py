"""What the renderer's modules share: the objects it builds, its error, its named defaults, its file names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..composespec import DOCKER_HEALTHCHECK, Default
from ..errors import InputError

SOURCE_ANNOTATION = "pipelines.dev/source"
NOT_RENDERED_ANNOTATION = "pipelines.dev/not-rendered"
IMAGE_REF_ANNOTATION = "pipelines.dev/image-reference"
SUPPLY_ANNOTATION = "pipelines.dev/supply"
# Kubernetes versions whose schemas the output is validated against (kubernetes-validate ships them).
K8S_VERSIONS = ("1.30.0", "1.33.0")
MANIFESTS = "manifests.yaml"
SECRETS = "secrets.yaml"
PROVENANCE = "provenance.json"


# Every value not read from Compose, the build record or an image. README "Kubernetes manifests" lists them too.
DEFAULTS: dict[str, Default] = {
    "apiVersion": Default("v1, apps/v1, batch/v1", "the stable API of each kind"),
    "annotations": Default(
        [SOURCE_ANNOTATION, NOT_RENDERED_ANNOTATION, IMAGE_REF_ANNOTATION, SUPPLY_ANNOTATION],
        "where each object's fields came from, what was left out and why, which image reference, how to fill",
    ),
    "replicas": Default(1, "Compose runs one container per service"),
    "requests": Default("= limits", "requests equal limits: Guaranteed QoS, nothing overcommitted"),
    "limits.cpu": Default("1", "a service without `cpus`/deploy limits still gets a CPU limit"),
    "limits.memory": Default("256Mi", "a service without `mem_limit`/deploy limits still gets a memory limit"),
    "readOnlyRootFilesystem": Default(True, "restricted hardening: the root filesystem is never writable"),
    "tmp.emptyDir": Default("16Mi", "with a read-only root, /tmp is an in-memory emptyDir when Compose names none"),
    "pvc.storage": Default("1Gi", "size of the claim for each named Compose volume"),
    "pvc.accessModes": Default(["ReadWriteOnce"], "one writer, as a named Docker volume on one host"),
    "strategy.Recreate": Default("Recreate", "a Deployment that mounts a ReadWriteOnce claim cannot surge"),
    "job.backoffLimit": Default(6, "retries while the job's dependencies come up (no ordering in Kubernetes)"),
    "service.type": Default("ClusterIP", "reachable inside the cluster only; exposure is the cluster's decision"),
    "automountServiceAccountToken": Default(False, "no service talks to the Kubernetes API"),
    "enableServiceLinks": Default(False, "no Docker-link style variables beyond the Compose environment"),
    "seccompProfile": Default("RuntimeDefault", "restricted profile"),
    "capabilities.drop": Default(["ALL"], "restricted profile"),
    "allowPrivilegeEscalation": Default(False, "restricted profile"),
    "runAsNonRoot": Default(True, "restricted profile"),
    "secret.defaultMode": Default(0o440, "secret files readable by the pod's user and group only"),
    "namespace.pod-security": Default("restricted", "the namespace enforces the restricted profile"),
    "namespace.name": Default("NAME-ENV", "Compose project name and environment"),
    "imagePullPolicy": Default("IfNotPresent", "a digest or commit tag names one image: no re-pull needed"),
    "docker.healthcheck": DOCKER_HEALTHCHECK,
    "configmap.max_bytes": Default(1024 * 1024, "a bind mount becomes a ConfigMap, which Kubernetes caps at 1 MiB"),
    "labels": Default(
        ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"],
        "Kubernetes' recommended labels: service, Compose project, pipelines",
    ),
}


class RenderError(InputError):
    """The Compose config or an image asks for something the manifests cannot hold."""


@dataclass
class Obj:
    """One Kubernetes object and where each of its fields came from."""

    body: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # field path prefix -> source
    file: str = MANIFESTS

    @property
    def key(self) -> str:
        return f"{self.body['kind']}/{self.body['metadata']['name']}"

    def src(self, path: str, source: str) -> None:
        self.sources[path] = source
