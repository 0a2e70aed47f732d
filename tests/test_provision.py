"""The local registry that scripts/provision.sh starts: loopback only, no deletes unless asked.

The configuration comes from scripts/registry-config.sh (provision.sh writes its
output to /var/lib/pipelines/registry.yml); these tests read it and run the real
docker-registry with it on a free loopback port, with storage of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness import IN_CI, ROOT

SCRIPT = ROOT / "scripts" / "registry-config.sh"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def registry_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_REGISTRY_")}
    return subprocess.run(
        ["bash", str(SCRIPT)], env={**clean, **env}, capture_output=True, text=True, timeout=30, check=False
    )


def test_the_default_registry_listens_on_loopback_and_refuses_deletes() -> None:
    r = registry_config()
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(r.stdout)
    assert data["http"]["addr"] == "127.0.0.1:5000"
    assert data["storage"]["delete"] == {"enabled": False}
    assert data["storage"]["filesystem"]["rootdirectory"] == "/var/lib/pipelines/registry"


def test_deletes_only_when_asked() -> None:
    r = registry_config(PIPELINES_REGISTRY_DELETE="1", PIPELINES_REGISTRY_ADDR="[::1]:5001")
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(r.stdout)
    assert data["storage"]["delete"] == {"enabled": True} and data["http"]["addr"] == "[::1]:5001"
    r = registry_config(PIPELINES_REGISTRY_DELETE="yes")
    assert r.returncode == 2 and "expected 1 (allow deletes) or 0" in r.stderr


@pytest.mark.parametrize(
    "addr", ["0.0.0.0:5000", ":5000", "10.1.2.3:5000", "registry.example:5000", "127.0.0.1.example:5000", "[::]:5000"]
)
def test_an_address_beyond_this_host_is_refused(addr: str) -> None:
    r = registry_config(PIPELINES_REGISTRY_ADDR=addr)
    assert r.returncode == 2 and r.stdout == ""
    assert f"PIPELINES_REGISTRY_ADDR={addr}: the local registry listens on a loopback address only" in r.stderr


def test_provisioning_writes_the_registry_config_from_the_script() -> None:
    """provision.sh has no registry configuration of its own that could drift from the one tested here."""
    text = (ROOT / "scripts" / "provision.sh").read_text()
    assert "registry-config.sh" in text
    assert "delete:" not in text and "enabled: true" not in text


# ---- the real registry, with that configuration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


@pytest.fixture
def run_registry(tmp_path: Path) -> Iterator[object]:
    binary = shutil.which("docker-registry")
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true and docker-registry is missing (scripts/provision.sh installs it)")
        pytest.skip("docker-registry is not installed (scripts/provision.sh installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        port = _free_port()
        addr = f"127.0.0.1:{port}"
        r = registry_config(
            PIPELINES_REGISTRY_ADDR=addr, PIPELINES_REGISTRY_ROOT=str(tmp_path / f"store-{port}"), **env
        )
        assert r.returncode == 0, r.stderr
        conf = tmp_path / f"registry-{port}.yml"
        conf.write_text(r.stdout)
        with (tmp_path / f"registry-{port}.log").open("wb") as log:
            procs.append(subprocess.Popen([binary, "serve", str(conf)], stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{addr}/v2/", timeout=2).close()
                return addr
            except OSError:
                if time.monotonic() > deadline or procs[-1].poll() is not None:
                    raise
                time.sleep(0.1)

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def _request(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own registry on loopback
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _push_image(addr: str, repo: str) -> str:
    """A config blob and a manifest with no layers, pushed over the registry API; returns the manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    status, headers, _ = _request("POST", f"http://{addr}/v2/{repo}/blobs/uploads/", data=b"")
    assert status == 202, status
    location = headers["Location"]
    upload = location if location.startswith("http") else f"http://{addr}{location}"
    sep = "&" if "?" in upload else "?"
    status, _, body = _request("PUT", f"{upload}{sep}digest={config_digest}", data=config,
                               headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert status == 201, body
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": config_digest,
            },
            "layers": [],
        }
    ).encode()
    status, headers, body = _request("PUT", f"http://{addr}/v2/{repo}/manifests/v1", data=manifest,
                                     headers={"Content-Type": MANIFEST_TYPE})  # fmt: skip
    assert status == 201, body
    return headers["Docker-Content-Digest"]


def test_the_running_registry_listens_on_loopback_and_answers_a_delete_405(run_registry: object) -> None:
    start = run_registry
    assert callable(start)
    addr = start()
    port = int(addr.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    digest = _push_image(addr, "pipelines-test/keep")
    status, _, body = _request("DELETE", f"http://{addr}/v2/pipelines-test/keep/manifests/{digest}")
    assert status == 405, (status, body)
    assert [e["code"] for e in json.loads(body)["errors"]] == ["UNSUPPORTED"]
    status, _, _ = _request("GET", f"http://{addr}/v2/pipelines-test/keep/manifests/{digest}",
                            headers={"Accept": MANIFEST_TYPE})  # fmt: skip
    assert status == 200  # still there

    # Asked for, deletes work: the suite's own registry needs them (PIPELINES_REGISTRY_DELETE=1 in CI).
    addr = start(PIPELINES_REGISTRY_DELETE="1")
    digest = _push_image(addr, "pipelines-test/gone")
    status, _, body = _request("DELETE", f"http://{addr}/v2/pipelines-test/gone/manifests/{digest}")
    assert status == 202, (status, body)
