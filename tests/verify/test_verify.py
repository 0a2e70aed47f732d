"""The hardening matrix (`pipelines verify`).

Unit tests parse recorded real outputs (tests/data/recorded/verify/, see its
SOURCES.md), lines written in the shape of real files, and this Debian host's
own /etc/passwd and /etc/shadow. The engine tests build images FROM the project's own golden
bases, each with exactly one defect, and check that each fails exactly the
cell it should, with evidence naming the file or value; the reference images
of the build must pass every cell that applies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import verify, waivers
from pipelines.engine import ImageInfo
from pipelines.errors import PipelineError
from pipelines.result import Check, Outcome
from pipelines.verify import secrets as verify_secrets
from tests.harness import ROOT, docker, run_cli, run_cli_outcome

RECORDED = ROOT / "tests" / "data" / "recorded"
PROC = RECORDED / "proc-status"
VERIFY_DATA = RECORDED / "verify"


# --------------------------------------------------------------------------- unit: parsers on recorded outputs


def test_proc_status_of_a_hardened_container() -> None:
    s = verify.parse_status((PROC / "api-hardened.status").read_text())
    assert s.uid == (65532, 65532, 65532, 65532)
    assert s.gid == (65532, 65532, 65532, 65532)
    assert (s.cap_eff, s.no_new_privs, s.seccomp) == (0, 1, 2)


def test_proc_status_of_root_with_default_capabilities() -> None:
    s = verify.parse_status((PROC / "api-root-default.status").read_text())
    assert s.uid == (0, 0, 0, 0)
    assert s.cap_eff == 0xA80425FB  # Docker's default capability set
    assert s.no_new_privs == 0


def test_proc_status_without_a_field_is_an_error_not_a_default() -> None:
    text = "\n".join(
        line for line in (PROC / "api-hardened.status").read_text().splitlines() if not line.startswith("NoNewPrivs")
    )
    with pytest.raises(PipelineError, match="NoNewPrivs"):
        verify.parse_status(text)


def _recorded_info() -> ImageInfo:
    return ImageInfo.from_inspect(json.loads((VERIFY_DATA / "api-inspect.json").read_text())[0])


def test_recorded_reference_config_and_history_carry_no_secret() -> None:
    history = json.loads((VERIFY_DATA / "api-history.json").read_text())
    assert history, "the recording is empty"
    assert verify.secrets_in_config(_recorded_info(), history) == []


def test_a_token_in_env_and_a_password_in_history_are_found_and_redacted() -> None:
    raw = json.loads((VERIFY_DATA / "api-inspect.json").read_text())[0]
    token = "ghp_" + "a1B2c3D4e5" * 4
    raw["Config"]["Env"] = [*raw["Config"]["Env"], f"GITHUB_TOKEN={token}", "PGPASSWORD_FILE=/run/secrets/db"]
    history = json.loads((VERIFY_DATA / "api-history.json").read_text())
    history.append({"CreatedBy": "RUN |1 DB_PASSWORD=hunter22 /bin/sh -c make"})
    hits = verify.secrets_in_config(ImageInfo.from_inspect(raw), history)
    assert any(h.startswith("ENV GITHUB_TOKEN=<github-token, 44 chars, run-hmac:") for h in hits), hits
    assert any("DB_PASSWORD=<value, 8 chars, run-hmac:" in h for h in hits), hits
    assert not any("PGPASSWORD_FILE" in h for h in hits), "a *_FILE reference is not a secret"
    assert token not in " ".join(hits) and "hunter22" not in " ".join(hits)


def test_redaction_shows_no_part_of_a_secret() -> None:
    """Kind, length and a short fingerprint: no prefix (nor any three characters in a row) of the value."""
    raw = json.loads((VERIFY_DATA / "api-inspect.json").read_text())[0]
    values = {
        "GITHUB_TOKEN": "ghp_" + "Zq9Xw8Vu7T" * 4,
        "AWS_ACCESS_KEY_ID": "AKIA" + "QWERTYUIOPASDFGH",
        "SLACK_BOT": "xoxb-" + "98765-abcdefghijkl",
        "DB_PASSWORD": "Tr0ub4dor&3",
        "API_KEY": "k3y-of-the-kingdom",
    }
    raw["Config"]["Env"] = [*raw["Config"]["Env"], *(f"{k}={v}" for k, v in values.items())]
    history = [{"CreatedBy": "RUN |1 SIGNING_TOKEN=hunter2hunter2 /bin/sh -c make"}]
    hits = verify.secrets_in_config(ImageInfo.from_inspect(raw), history)
    assert len(hits) == len(values) + 1, hits
    kinds = {h.split("=", 1)[0].split()[-1]: h.split("=", 1)[1] for h in hits}
    # What a hit shows for the value: everything after the name's "=" (the name itself is no secret). The
    # fingerprint's hex is random per run and can hold any three hex digits of a value by chance.
    shown = re.sub(r"run-hmac:[0-9a-f]{8}", "run-hmac:", "\n".join(kinds.values()))
    for value in [*values.values(), "hunter2hunter2"]:
        pieces = sorted(
            {value[i : i + 3] for i in range(len(value) - 2)} & {shown[i : i + 3] for i in range(len(shown))}
        )
        assert not pieces, f"{value!r}: {pieces} in {hits}"
    assert kinds["SIGNING_TOKEN"].startswith("<value, 14 chars, run-hmac:")
    assert kinds["AWS_ACCESS_KEY_ID"].startswith("<aws-access-key-id, 20 chars, run-hmac:")
    assert kinds["SLACK_BOT"].startswith("<slack-token, 23 chars, run-hmac:")
    # The fingerprint tells the same value from another: two findings of one value share it.
    same = verify.secrets_in_config(ImageInfo.from_inspect(raw), [])
    assert [h for h in same if h.startswith("ENV DB_PASSWORD=")] == [
        h for h in hits if h.startswith("ENV DB_PASSWORD=")
    ]


def _fingerprint(redacted: str) -> str:
    return redacted.rstrip(">").rpartition(":")[2]


def test_a_secret_fingerprint_is_keyed_per_run_and_confirms_nothing_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal values match within one run; another run (another key) tells nothing about the same value."""
    import hashlib
    import subprocess
    import sys

    first = verify_secrets._redact("hunter2")
    fp = _fingerprint(first)
    # Not a (prefix of a) plain hash of the value: a dictionary of weak passwords cannot be checked against it.
    for digest in (hashlib.sha256(b"hunter2"), hashlib.sha1(b"hunter2"), hashlib.md5(b"hunter2")):  # noqa: S324
        assert fp not in digest.hexdigest(), (digest.name, first)
    # Another run: a new key, so the same value's fingerprint is another one.
    code = "from pipelines.verify import secrets; print(secrets._redact('hunter2'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert _fingerprint(other.stdout.strip()) != fp, (other.stdout, first)
    assert other.stdout.strip().startswith("<value, 7 chars, run-hmac:"), other.stdout
    assert first.startswith("<value, 7 chars, run-hmac:"), first
    assert len(fp) == verify.FINGERPRINT_HEX and int(fp, 16) >= 0
    assert verify_secrets._redact("hunter2") == first  # the same value in one report: the same fingerprint
    assert _fingerprint(verify_secrets._redact("hunter3")) != fp
    monkeypatch.setattr(verify_secrets, "_FINGERPRINT_KEY", os.urandom(32))
    assert _fingerprint(verify_secrets._redact("hunter2")) != fp


def test_trivy_secret_result_names_file_line_and_rule() -> None:
    data = json.loads((VERIFY_DATA / "trivy-secret-defect.json").read_text())
    found = verify.trivy_secrets(data)
    in_files = [f for f in found if f.startswith("/app/config/.env:")]
    assert {f.split()[-1] for f in in_files} == {"github-pat", "aws-access-key-id"}, found
    # The rest is Trivy reading the image's config (the ENV line and its history entry).
    assert {f.split(":")[0] for f in found if f not in in_files} == {"image config"}, found
    # The same image's scan without secret results (the recorded API scan) finds none.
    assert verify.trivy_secrets(json.loads((RECORDED / "trivy-image-api.json").read_text())) == []


def test_a_scan_stage_result_is_reused_only_as_a_finding_for_the_same_image_id(tmp_path: Path) -> None:
    latest = tmp_path / "scan" / "latest"
    latest.mkdir(parents=True)
    defect = json.loads((VERIFY_DATA / "trivy-secret-defect.json").read_text())
    (latest / "defect.trivy.json").write_text(json.dumps(defect))
    (latest / "api.trivy.json").write_text((RECORDED / "trivy-image-api.json").read_text())
    image_id = defect["Metadata"]["ImageID"]
    found = verify.scan_stage_secrets(tmp_path, image_id)
    assert found is not None and "defect.trivy.json" in found[1]
    assert any(f.startswith("/app/config/.env:") for f in found[0])
    assert verify.scan_stage_secrets(tmp_path, "sha256:" + "0" * 64) is None
    # A scan of the API without secret results is not proof that secrets were scanned for.
    api_id = json.loads((RECORDED / "trivy-image-api.json").read_text())["Metadata"]["ImageID"]
    assert verify.scan_stage_secrets(tmp_path, api_id) is None
    # The results are read once per run, and again when they change: a newer scan without the secret.
    defect["Results"] = [r for r in defect["Results"] if r.get("Class") != "secret"]
    (latest / "defect.trivy.json").write_text(json.dumps(defect))
    assert verify.scan_stage_secrets(tmp_path, image_id) is None


def test_a_scan_stage_result_counts_for_the_image_id_trivy_reports_not_its_file_name(tmp_path: Path) -> None:
    latest = tmp_path / "scan" / "latest"
    latest.mkdir(parents=True)
    defect = json.loads((VERIFY_DATA / "trivy-secret-defect.json").read_text())
    image_id = defect["Metadata"]["ImageID"]
    other = "sha256:" + "7" * 64
    # Named after the asked image, but Trivy says it read another one (or none): no finding of the asked image.
    (latest / f"{image_id.removeprefix('sha256:')}.trivy.json").write_text(
        json.dumps({**defect, "Metadata": {**defect["Metadata"], "ImageID": other}})
    )
    (latest / "none.trivy.json").write_text(json.dumps({**defect, "Metadata": {}}))
    assert verify.scan_stage_secrets(tmp_path, image_id) is None
    found = verify.scan_stage_secrets(tmp_path, other)
    assert found is not None and found[0] and f"{image_id.removeprefix('sha256:')}.trivy.json" in found[1]


SECRET_SCAN_ID = "sha256:" + "5" * 64


@pytest.mark.parametrize(
    "entry",
    [
        "{}",
        "[]",
        "null",
        '{"Metadata": {}, "Results": []}',
        json.dumps({"Metadata": {"ImageID": "sha256:" + "6" * 64}, "Results": []}),
        json.dumps({"Metadata": {"ImageID": int("5" * 20)}, "Results": []}),
        json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": "none"}),
        json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": ["secret"]}),
        json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": [{"Class": "secret", "Secrets": "x"}]}),
        '{"Metadata": {"ImageID": "' + SECRET_SCAN_ID[:30],
    ],
    ids=[
        "empty",
        "list",
        "null",
        "no-id",
        "other-image",
        "id-not-a-string",
        "results-not-a-list",
        "result-not-an-object",
        "secrets-not-a-list",
        "torn",
    ],
)
def test_a_secret_cache_entry_not_naming_the_image_is_discarded_never_a_pass(tmp_path: Path, entry: str) -> None:
    cache = tmp_path / f"{SECRET_SCAN_ID.removeprefix('sha256:')}.json"
    cache.write_text(entry)
    assert verify.cached_layer_secrets(cache, SECRET_SCAN_ID) is None  # not a result: the image is scanned again
    assert not cache.exists()  # and the forged entry is gone, so the new scan's result replaces it


def test_a_secret_cache_entry_of_the_image_is_its_result(tmp_path: Path) -> None:
    cache = tmp_path / "entry.json"
    assert verify.cached_layer_secrets(cache, SECRET_SCAN_ID) is None  # none cached: scanned
    defect = json.loads((VERIFY_DATA / "trivy-secret-defect.json").read_text())
    cache.write_text(json.dumps(defect))
    found = verify.cached_layer_secrets(cache, defect["Metadata"]["ImageID"])
    assert found is not None and any(f.startswith("/app/config/.env:") for f in found), found
    # The same result read for another image ID is not that image's.
    assert verify.cached_layer_secrets(cache, SECRET_SCAN_ID) is None and not cache.exists()
    clean = {"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": None}
    cache.write_text(json.dumps(clean))
    assert verify.cached_layer_secrets(cache, SECRET_SCAN_ID) == []


def test_a_secret_scan_that_exited_non_zero_or_read_another_image_cannot_run(tmp_path: Path) -> None:
    from pipelines import _proc
    from pipelines.errors import ScanError

    out = tmp_path / "secrets.json"
    out.write_text(json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": []}))
    failed = _proc.Result(("trivy", "image"), 1, "", "FATAL image scan error: secret analyzer failed", 1.0)
    with pytest.raises(ScanError) as exc:
        verify.read_layer_secrets(out, failed, "api", SECRET_SCAN_ID)
    assert "exit 1" in exc.value.render() and "secret analyzer failed" in exc.value.render()
    ok = _proc.Result(("trivy", "image"), 0, "", "", 1.0)
    with pytest.raises(ScanError, match=r"is about image sha256:6{64}, not the image asked about"):
        other = {"Metadata": {"ImageID": "sha256:" + "6" * 64}, "Results": []}
        out.write_text(json.dumps(other))
        verify.read_layer_secrets(out, ok, "api", SECRET_SCAN_ID)
    with pytest.raises(ScanError, match="names no image ID"):
        out.write_text("{}")
        verify.read_layer_secrets(out, ok, "api", SECRET_SCAN_ID)
    with pytest.raises(ScanError, match="not a Trivy result"):
        out.write_text(json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": [{"Secrets": "x"}]}))
        verify.read_layer_secrets(out, ok, "api", SECRET_SCAN_ID)
    out.unlink()
    with pytest.raises(ScanError, match="produced no result"):
        verify.read_layer_secrets(out, ok, "api", SECRET_SCAN_ID)
    out.write_text(json.dumps({"Metadata": {"ImageID": SECRET_SCAN_ID}, "Results": []}))
    assert verify.read_layer_secrets(out, ok, "api", SECRET_SCAN_ID)["Metadata"]["ImageID"] == SECRET_SCAN_ID


def test_from_lines_of_the_project_dockerfiles() -> None:
    api = (ROOT / "services" / "api" / "Dockerfile").read_text()
    assert verify.from_lines(api) == [("${BUILDER_IMAGE}", "builder"), ("${RUNTIME_IMAGE}", "runtime")]
    runtime = (ROOT / "pipelines" / "golden" / "python-runtime" / "Dockerfile").read_text()
    assert verify.from_lines(runtime) == [("${BASE_IMAGE}", "assemble"), ("scratch", "")]
    assert verify.expand("${BASE_IMAGE}", {"BASE_IMAGE": "r@sha256:1"}) == "r@sha256:1"


# Written here in the shape of a Debian rootfs's /etc/passwd and /etc/shadow (base-passwd's accounts, locked).
PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
# not an account line
broken:x:notanumber:0::/:/bin/false
"""
SHADOW = """root:*:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
bin:*:20000:0:99999:7:::
sys:*:20000:0:99999:7:::
sync:*:20000:0:99999:7:::
www-data:*:20000:0:99999:7:::
_apt:*:20000:0:99999:7:::
nobody:!:20000:0:99999:7:::
"""


def test_passwd_and_shadow_of_a_debian_rootfs() -> None:
    passwd = verify.parse_passwd(PASSWD)
    assert ("root", 0, 0, "/root") in passwd
    assert ("nobody", 65534, 65534, "/nonexistent") in passwd
    assert "broken" not in {p[0] for p in passwd}  # a uid that is not a number is not an account
    assert len(passwd) == 8 and len({p[1] for p in passwd}) == len(passwd)
    assert verify.empty_passwords(SHADOW) == []
    assert verify.empty_passwords(SHADOW.replace("sync:*:", "sync::")) == ["sync"]
    assert verify.empty_passwords("root::19000:0:99999:7:::\nbin:*:19000::::::\n") == ["root"]


def test_passwd_of_this_debian_host_reads_as_the_c_library_reads_it() -> None:
    """Real data: the host's /etc/passwd (base-passwd's accounts and more), against getpwnam(3)."""
    import pwd

    from tests.harness import host_file

    passwd = verify.parse_passwd(host_file("/etc/passwd").read_text())
    assert ("root", 0, 0, "/root") in passwd
    for name, uid, gid, home in passwd:
        entry = pwd.getpwnam(name)
        assert (entry.pw_uid, entry.pw_gid, entry.pw_dir) == (uid, gid, home), name


def test_shadow_of_this_debian_host_reads_as_passwd_status_reads_it() -> None:
    """Real data: the host's /etc/shadow; the accounts without a password are those `passwd --status` calls NP."""
    import shutil
    import subprocess

    from tests.harness import host_file

    shadow = host_file("/etc/shadow")
    if not os.access(shadow, os.R_OK):
        pytest.skip(f"{shadow} is readable by root only")
    tool = shutil.which("passwd") or "/usr/bin/passwd"
    host_file(tool, "part of Debian's passwd package")
    r = subprocess.run([tool, "--status", "--all"], capture_output=True, text=True, timeout=60, check=True)
    status = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines() if line.strip()}
    assert status
    assert sorted(verify.empty_passwords(shadow.read_text())) == sorted(n for n, s in status.items() if s == "NP")


def test_a_ledger_waiver_turns_the_failed_cell_of_its_image_only(tmp_path: Path) -> None:
    ledger = tmp_path / "waivers.yaml"
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ledger.write_text(
        "waivers:\n"
        "  - id: VFY-BASE\n"
        "    scope: {image: legacy-*}\n"
        "    reason: vendor image, pinned upstream soon\n"
        "    owner: platform-team\n"
        f"    expires: {until}\n"
    )
    entries, problems = waivers.load_ledger(ledger, display="waivers.yaml", max_days=90, today=dt.date.today())
    assert problems == []
    cells = [
        Check("VFY-BASE", Outcome.FAIL, "not pinned: x:1", group="legacy-app", evidence="inspect"),
        Check("VFY-BASE", Outcome.FAIL, "not pinned: y:1", group="api", evidence="inspect"),
        Check("VFY-USER", Outcome.FAIL, "USER root", group="legacy-app", evidence="inspect"),
    ]
    out = verify.apply_waivers(cells, entries)
    assert [c.outcome for c in out] == [Outcome.WAIVED, Outcome.FAIL, Outcome.FAIL]
    assert "vendor image" in out[0].detail and "platform-team" in out[0].detail
    assert "waiver waivers.yaml" in out[0].evidence


def test_explain_maps_every_dockle_checkpoint() -> None:
    r = run_cli("verify", "--explain", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    ids = {d["id"] for d in data["dockle"]}
    assert {f"CIS-DI-{i:04d}" for i in range(1, 11)} <= ids
    assert {f"DKL-DI-{i:04d}" for i in range(1, 7)} | {f"DKL-LI-{i:04d}" for i in range(1, 4)} <= ids
    columns = {c["id"] for c in data["columns"]}
    for d in data["dockle"]:
        named = {w.strip(",;()") for w in d["covered_by"].split() if w.startswith("VFY-")}
        assert named <= columns, d
        assert named or d["covered_by"].startswith(("elsewhere:", "n/a:")), d


def _runtime_facts(*extra: tuple[str, int, int, int, bytes]) -> verify.Facts:
    """The golden runtime's recorded filesystem index, plus entries (path, mode, uid, gid, tar type)."""
    data = json.loads(gzip.decompress((VERIFY_DATA / "python-runtime-tree.json.gz").read_bytes()))
    for path, mode, uid, gid, kind in extra:
        data["entries"].append([path, kind.decode(), mode, uid, gid, 0, ""])
    info = ImageInfo.from_inspect(json.loads((VERIFY_DATA / "python-runtime-inspect.json").read_text())[0])
    target = verify.Target("python-runtime", "ref", verify.ROLE_RULES["runtime-base"], None)
    return verify.Facts(target, info, [], verify.tree_from_record(data), None, ([], "recorded"))


WRITABLE = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")


def test_the_recorded_golden_runtime_passes_its_filesystem_cells() -> None:
    f = _runtime_facts()
    assert len(f.tree.entries) > 1000
    for c in (
        verify.check_shell(f),
        verify.check_buildtools(f),
        verify.check_setuid(f),
        verify.check_world_writable(f, WRITABLE),
        verify.check_appfiles(f, WRITABLE),
    ):
        assert c.outcome is Outcome.PASS, c
    assert verify.python_minors(f.tree) == {"3.11"}
    assert verify.check_user(f).outcome is Outcome.PASS  # no container run: the config and /etc/passwd


@pytest.mark.parametrize(
    ("entry", "check", "named"),
    [
        (("usr/bin/bash", 0o755, 0, 0, tarfile.REGTYPE), "VFY-SHELL", "/usr/bin/bash"),
        (("opt/venv/bin/pip3.11", 0o755, 0, 0, tarfile.REGTYPE), "VFY-SHELL", "/opt/venv/bin/pip3.11"),
        (("usr/bin/x86_64-linux-gnu-gcc-12", 0o755, 0, 0, tarfile.REGTYPE), "VFY-BUILDTOOLS", "gcc-12"),
        (("opt/app/.git", 0o755, 0, 0, tarfile.DIRTYPE), "VFY-BUILDTOOLS", "/opt/app/.git"),
        (("usr/bin/newgrp", 0o2755, 0, 0, tarfile.REGTYPE), "VFY-SETUID", "/usr/bin/newgrp (-rwxr-sr-x)"),
        (("opt/app", 0o777, 0, 0, tarfile.DIRTYPE), "VFY-WORLDWRITABLE", "/opt/app (drwxrwxrwx)"),
        (("opt/app/main.py", 0o644, 65532, 0, tarfile.REGTYPE), "VFY-APPFILES", "/opt/app/main.py (65532:0"),
        (("opt/app/cfg", 0o775, 0, 65532, tarfile.DIRTYPE), "VFY-APPFILES", "/opt/app/cfg (0:65532"),
    ],
)
def test_one_added_entry_fails_one_filesystem_cell_naming_it(
    entry: tuple[str, int, int, int, bytes], check: str, named: str
) -> None:
    f = _runtime_facts(entry)
    cells = {
        c.name: c
        for c in (
            verify.check_shell(f),
            verify.check_buildtools(f),
            verify.check_setuid(f),
            verify.check_world_writable(f, WRITABLE),
            verify.check_appfiles(f, WRITABLE),
        )
    }
    failed = {k for k, c in cells.items() if c.outcome is Outcome.FAIL}
    assert failed == {check}, cells
    assert named in cells[check].detail, cells[check]


def _tree_record(*extra: tuple[str, int, int, int, bytes]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress((VERIFY_DATA / "python-runtime-tree.json.gz").read_bytes()))
    for path, mode, uid, gid, kind in extra:
        data["entries"].append([path, kind.decode(), mode, uid, gid, 0, ""])
    return data


def _filesystem_cells(tree: Any) -> list[Check]:
    info = ImageInfo.from_inspect(json.loads((VERIFY_DATA / "python-runtime-inspect.json").read_text())[0])
    target = verify.Target("python-runtime", "ref", verify.ROLE_RULES["runtime-base"], None)
    f = verify.Facts(target, info, [], tree, None, ([], "recorded"))
    return [
        verify.check_user(f),
        verify.check_shell(f),
        verify.check_buildtools(f),
        verify.check_setuid(f),
        verify.check_world_writable(f, WRITABLE),
        verify.check_appfiles(f, WRITABLE),
    ]


@pytest.mark.parametrize(
    "extra",
    [
        (),
        (("usr/bin/bash", 0o755, 0, 0, tarfile.REGTYPE),),
        (("usr/local/bin/python3.12", 0o755, 0, 0, tarfile.SYMTYPE),),
        (("opt/venv/bin/pip3.11", 0o755, 0, 0, tarfile.REGTYPE),),
        (("usr/bin/x86_64-linux-gnu-gcc-12", 0o755, 0, 0, tarfile.REGTYPE),),
        (("opt/app/.git", 0o755, 0, 0, tarfile.DIRTYPE),),
        (("var/lib/apt/lists/deb.debian.org_Packages", 0o644, 0, 0, tarfile.REGTYPE),),
        (("usr/lib/x/newgrp", 0o2755, 0, 0, tarfile.REGTYPE),),
        (("opt/app", 0o777, 0, 0, tarfile.DIRTYPE),),
        (("opt/app/main.py", 0o644, 65532, 0, tarfile.REGTYPE),),
        (("opt/app/cfg", 0o775, 0, 65532, tarfile.DIRTYPE),),
        (("opt/app/shared", 0o664, 0, 0, tarfile.REGTYPE), ("tmp/x", 0o1777, 0, 0, tarfile.DIRTYPE)),
    ],
)
def test_the_tree_summary_gives_every_filesystem_cell_the_full_indexs_answer(
    extra: tuple[tuple[str, int, int, int, bytes], ...],
) -> None:
    record = _tree_record(*extra)
    full = verify.tree_from_record(record)
    summary = verify.tree_from_record(verify.tree_summary(record, "code"))
    # A fraction of the entries, and the same count for the cells that report one.
    assert len(summary.entries) * 5 < len(full.entries)
    assert summary.entry_count == full.entry_count == len(record["entries"])
    assert _filesystem_cells(summary) == _filesystem_cells(full)
    assert verify.python_minors(summary) == verify.python_minors(full)
    if extra:
        # Each added entry is one a cell names: dropping it would hide a finding.
        kept = {e[0] for e in verify.tree_summary(record, "code")["entries"]}
        assert {e[0] for e in extra} <= kept


def test_the_tree_summary_is_read_only_for_its_image_id_and_code(tmp_path: Path) -> None:
    record = _tree_record()
    image_id = record["image_id"]
    exports: list[str] = []

    def export() -> dict[str, Any]:
        exports.append(image_id)
        return json.loads(json.dumps(record))

    trees = tmp_path / "trees"
    first = verify.cached_tree(trees, image_id, export)
    assert exports == [image_id] and first.count is None  # exported, the full index
    name = image_id.removeprefix("sha256:")
    summary_file = trees / f"{name}.summary.json"
    assert (trees / f"{name}.json").is_file() and summary_file.is_file()
    warm = verify.cached_tree(trees, image_id, export)
    assert exports == [image_id] and warm.count == len(record["entries"])  # the summary
    assert _filesystem_cells(warm) == _filesystem_cells(first)

    # Written by other code (a changed check): the summary is made again from the full index, not trusted.
    stale = json.loads(summary_file.read_text())
    stale["code"], stale["entries"] = "other code", []
    summary_file.write_text(json.dumps(stale))
    again = verify.cached_tree(trees, image_id, export)
    assert exports == [image_id] and again.count is None
    assert json.loads(summary_file.read_text())["entries"]  # rewritten under this code

    # Another image's summary under this image's name is not this image's.
    stale = json.loads(summary_file.read_text())
    stale["image_id"], stale["entries"] = "sha256:" + "1" * 64, []
    summary_file.write_text(json.dumps(stale))
    assert verify.cached_tree(trees, image_id, export).count is None

    # A torn summary and a torn index: exported again.
    summary_file.write_text("{")
    (trees / f"{name}.json").write_text("[")
    assert verify.cached_tree(trees, image_id, export).count is None
    assert exports == [image_id, image_id]


def test_tmp_like_paths_and_the_users_home_are_not_findings() -> None:
    f = _runtime_facts(
        ("tmp/cache", 0o1777, 0, 0, tarfile.DIRTYPE),
        ("home/nonroot/.config", 0o755, 65532, 65532, tarfile.DIRTYPE),
        ("usr/bin/sh-wrapper.txt", 0o644, 0, 0, tarfile.REGTYPE),
    )
    assert verify.check_world_writable(f, WRITABLE).outcome is Outcome.PASS
    assert verify.check_appfiles(f, WRITABLE).outcome is Outcome.PASS
    assert verify.check_shell(f).outcome is Outcome.PASS


# --------------------------------------------------------------------------- [verify] config


def test_verify_config_defaults_and_the_project_settings() -> None:
    from pipelines import config

    cfg = config.load(ROOT / "pipeline.toml")
    assert cfg.verify.stack_only == ("ingestion",)
    assert cfg.verify.run["postgres"].tmpfs == ("/var/run/postgresql:uid=999,gid=999,mode=0755",)
    assert "/tmp" in cfg.verify.writable_paths


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ('stack_only = ["nope"]', "verify.stack_only", "'nope' names no image or service"),
        ('writable_paths = ["tmp"]', "verify.writable_paths", "not an absolute path"),
        ("memory_mb = 4", "verify.memory_mb", "must be >= 16"),
        ("colour = 1", "verify.colour", "unknown key"),
        ('[verify.run.nope]\ntmpfs = ["/x"]', "verify.run.nope", "names no image or service"),
        ('[verify.run.postgres]\ntmpfs = ["x"]', "verify.run.postgres.tmpfs", "absolute path"),
    ],
)
def test_bad_verify_config_names_the_key(table: str, key: str, problem: str) -> None:
    text = (ROOT / "pipeline.toml").read_text()
    head = text.split("[verify]")[0]
    # Next to the real config, so every relative path in it resolves; removed afterwards.
    path = ROOT / f".pipeline-verify-test-{os.getpid()}.toml"
    path.write_text(head + "[verify]\n" + table + "\n")
    try:
        r = run_cli_outcome("--config", str(path), "config")
    finally:
        path.unlink()
    assert r.returncode == 2, r.stdout + r.stderr
    assert key in r.stderr and problem in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def _api_target_and_limits() -> tuple[Any, verify.Target, verify.Limits]:
    from pipelines import config

    cfg = config.load(ROOT / "pipeline.toml")
    target = verify.Target("api", "ref", verify.ROLE_RULES["runtime"], cfg.images["api"])
    return cfg, target, verify.Limits("256m", 128, 1_000_000_000, (), "[verify] limits")


def test_a_passed_run_is_reused_only_under_its_own_key(tmp_path: Path) -> None:
    cfg, target, limits = _api_target_and_limits()
    info = _recorded_info()
    key = verify.run_key(cfg, target, info, limits)
    run = verify.RunFacts(
        argv="docker run -d --read-only ref",
        status=verify.parse_status((PROC / "api-hardened.status").read_text()),
        status_source="/proc/42/status",
        health="healthy",
        healthy_after=0.8,
        stayed="healthy",
        stop_s=0.3,
        exit_code=0,
    )
    assert verify.load_run(tmp_path, key) is None  # nothing recorded: the container runs
    verify.save_run(tmp_path, key, run)
    found = verify.load_run(tmp_path, key)
    assert found is not None
    again, when = found
    assert again.status == run.status and again.healthy_after == 0.8 and again.stop_s == 0.3
    # The evidence says the run was reused, and from when.
    assert again.argv.startswith(run.argv) and f"reused: the run of {when}" in again.argv
    # Another image ID, other limits, another [verify] table or role: another key, so the container runs.
    other_id = verify.run_key(cfg, target, dataclasses.replace(info, id="sha256:" + "1" * 64), limits)
    other_limits = verify.run_key(cfg, target, info, dataclasses.replace(limits, pids=64))
    other_cfg = verify.run_key(
        dataclasses.replace(cfg, verify=dataclasses.replace(cfg.verify, health_deadline=30)), target, info, limits
    )
    other_role = verify.run_key(cfg, dataclasses.replace(target, role=verify.ROLE_RULES["service"]), info, limits)
    assert len({key, other_id, other_limits, other_cfg, other_role}) == 5
    assert all(verify.load_run(tmp_path, k) is None for k in (other_id, other_limits, other_cfg, other_role))
    # A torn record is no record.
    path = next((tmp_path / "verify" / "runs").glob("*.json"))
    path.write_text(path.read_text()[:40])
    assert verify.load_run(tmp_path, key) is None


def test_a_forged_secret_cache_is_scanned_again_and_the_secret_found(tools: object, tmp_path: Path) -> None:
    """A `{}` (or another image's result) under ARTIFACTS/verify/secrets/ does not pass the image: Trivy runs."""
    from pipelines import config

    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    # A GitHub token shape (Trivy's github-pat rule), assembled so no token sits in this file.
    (ctx / "app" / ".env").write_text("GH=" + "ghp_" + "x7Kp2QzR9m" * 3 + "4bN8wV" + "\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    tag = f"pipelines-tests/verify-forged-cache:{os.getpid()}"
    docker("build", "--tag", tag, str(ctx), timeout=300)
    try:
        cfg = config.load(ROOT / "pipeline.toml")
        cfg = dataclasses.replace(cfg, project=dataclasses.replace(cfg.project, artifacts=tmp_path / "artifacts"))
        info = ImageInfo.from_inspect(json.loads(docker("image", "inspect", tag).stdout)[0])
        target = verify.Target("forged", info.id, verify.ROLE_RULES["runtime"], None)
        cache = tmp_path / "artifacts" / "verify" / "secrets" / f"{info.id.removeprefix('sha256:')}.json"
        cache.parent.mkdir(parents=True)
        for forged in ({}, {"Metadata": {"ImageID": "sha256:" + "6" * 64}, "Results": []}):
            cache.write_text(json.dumps(forged))
            found, evidence = verify.layer_secrets(cfg, target, info)
            assert found and any(f.startswith("/app/.env:") for f in found), (forged, found, evidence)
            assert "cached" not in evidence, evidence
            # The new scan's result replaced the forged entry, and is read back as this image's.
            assert json.loads(cache.read_text())["Metadata"]["ImageID"] == info.id
            again, evidence = verify.layer_secrets(cfg, target, info)
            assert again == found and "cached" in evidence, evidence
    finally:
        docker("image", "rm", "-f", tag, check=False)


def test_the_environments_compose_limits_run_the_image_they_name(tools: object) -> None:
    from pipelines import config
    from pipelines.result import Context
    from pipelines.tools import Toolchain

    cfg = config.load(ROOT / "pipeline.toml")
    ctx = Context(cfg, Toolchain())

    def target(name: str) -> verify.Target:
        return verify.Target(name, "ref", verify.ROLE_RULES["runtime"], cfg.images[name])

    prod = verify.compose_services(ctx, "prod")
    api = verify.limits_for(cfg, "prod", target("api"), prod)
    # The server, not the one-shot migrate job that runs the same image with another entrypoint.
    assert api.source == "limits of Compose service 'api' in prod"
    assert (api.memory, api.pids, api.nano_cpus) == (256 * 1024 * 1024, 128, 1_000_000_000)
    db = verify.limits_for(cfg, "prod", target("postgres"), prod)
    assert db.memory == 512 * 1024 * 1024
    assert any(t.startswith("/var/run/postgresql:") for t in db.tmpfs), db.tmpfs
    dev = verify.limits_for(cfg, "dev", target("api"), verify.compose_services(ctx, "dev"))
    assert dev.source == "[verify] limits (dev's Compose sets no limits for 'api')"
    assert (dev.memory, dev.pids) == (f"{cfg.verify.memory_mb}m", cfg.verify.pids)
    assert verify.repository("127.0.0.1:5000/pipelines/api:dev") == "127.0.0.1:5000/pipelines/api"
    assert verify.repository("127.0.0.1:5000/pipelines/api@sha256:" + "0" * 64) == "127.0.0.1:5000/pipelines/api"


# --------------------------------------------------------------------------- engine: reference and defect images

APP = """\
import os, signal, sys, time
# Ready once started; a SIGTERM ends it at once (unless told to ignore it, as PID 1 without a handler does).
if "--no-handler" not in sys.argv:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open("/tmp/ready", "w") as f:
    f.write("ok")
while True:
    time.sleep(0.2)
"""
HEALTH = '["/usr/bin/python3", "-c", "import os, sys; sys.exit(0 if os.path.exists(\'/tmp/ready\') else 1)"]'
TOKEN = "ghp_" + "Zx8Qw2Er4Ty6Ui8Op0As" + "Df2Gh4Jk6Lz8Xc0Vb2"
AWS = "AKIA" + "2E0A8F3B244C9986"

# name -> (Dockerfile lines replacing the defaults, the one check it must fail, what the evidence must name)
DEFECTS: dict[str, tuple[dict[str, str], str, str]] = {
    "good": ({}, "", ""),
    "root": ({"user": "USER 0:0"}, "VFY-USER", "USER '0:0' is root"),
    "setuid": ({"extra": "COPY --from=tools /out/helper /app/helper"}, "VFY-SETUID", "/app/helper (-rwsr-xr-x)"),
    "shell": ({"extra": "COPY --from=tools /usr/bin/dash /usr/bin/sh"}, "VFY-SHELL", "/usr/bin/sh"),
    "secret": (
        {"extra": f"ENV GITHUB_TOKEN={TOKEN}\nCOPY --from=tools /out/config/ /app/config/"},
        "VFY-SECRETS",
        "ENV GITHUB_TOKEN=<github-token, ",
    ),
    "world-writable": ({"extra": "COPY --from=tools /out/ww/ /app/"}, "VFY-WORLDWRITABLE", "/app/data"),
    "no-healthcheck": ({"health": ""}, "VFY-HEALTHCHECK", "no HEALTHCHECK"),
    "never-healthy": (
        {
            "health": 'HEALTHCHECK --interval=1s --timeout=2s --start-period=2s --retries=2 CMD ["/usr/bin/python3", '
            '"-c", "raise SystemExit(1)"]'
        },
        "VFY-HEALTHY",
        "unhealthy",
    ),
    "ignores-sigterm": (
        {"entrypoint": 'ENTRYPOINT ["/usr/bin/python3", "/app/app.py", "--no-handler"]'},
        "VFY-SIGTERM",
        "exit 137",
    ),
    "base-by-tag": ({"base_label": "TAG"}, "VFY-BASE", "python-runtime:dev"),
}


def _dockerfile(runtime: str, rootfs: str, parts: dict[str, str]) -> str:
    base_label = f"{runtime.rsplit('@', 1)[0]}:dev" if parts.get("base_label") == "TAG" else runtime
    health = parts.get("health", f"HEALTHCHECK --interval=5s --timeout=3s --start-period=5s CMD {HEALTH}")
    lines = [
        f"FROM {rootfs} AS tools",
        # Inputs of the defects, made where a shell exists; each defect image copies only its own.
        "RUN mkdir -p /out/ww/data /out/config && cp /usr/bin/true /out/helper && chmod 4755 /out/helper"
        " && chmod 0777 /out/ww/data"
        f" && printf 'GITHUB_TOKEN={TOKEN}\\nAWS_ACCESS_KEY_ID={AWS}\\n' > /out/config/.env",
        f"FROM {runtime}",
        "COPY app.py /app/app.py",
        parts.get("extra", ""),
        "LABEL "
        + " ".join(
            f'org.opencontainers.image.{k}="{v}"'
            for k, v in {
                "title": "verify-defect",
                "version": "0",
                "created": "2026-01-01T00:00:00Z",
                "revision": "0" * 40,
                "source": "https://example.invalid/verify-defect",
                "base.name": base_label,
            }.items()
        ),
        parts.get("user", "USER 65532:65532"),
        health,
        parts.get("entrypoint", 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/python3", "/app/app.py"]'),
    ]
    return "\n".join(line for line in lines if line) + "\n"


@pytest.fixture(scope="module")
def defect_images(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    runtime = built["images"]["python-runtime"]["ref"]
    rootfs = built["images"]["debian"]["ref"]
    assert "@sha256:" in runtime and "@sha256:" in rootfs
    tags: dict[str, str] = {}
    try:
        for name, (parts, _, _) in DEFECTS.items():
            ctx = tmp_path_factory.mktemp(f"defect-{name}")
            (ctx / "app.py").write_text(APP)
            (ctx / "Dockerfile").write_text(_dockerfile(runtime, rootfs, parts))
            tag = f"127.0.0.1:5000/pipelines-tests/verify-{name}:{os.getpid()}"
            docker("buildx", "build", "--load", "--tag", tag, str(ctx), timeout=600)
            tags[name] = tag
        yield tags
    finally:
        for tag in tags.values():
            docker("image", "rm", "-f", tag, check=False)


def _cells(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in report["checks"]:
        out.setdefault(c["group"], {})[c["name"]] = c
    return out


def test_reference_images_pass_every_cell_that_applies(built: dict[str, Any]) -> None:
    r = run_cli("verify", "--env", "dev", "--format", "json")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    report = json.loads(r.stdout)
    cells = _cells(report)
    assert set(cells) == set(built["images"])
    for image, row in cells.items():
        assert set(row) == set(verify.SPECS), image
        for c in row.values():
            assert c["outcome"] in ("pass", "n/a", "waived"), (image, c)
            assert c["evidence"], (image, c)
            assert c["detail"], (image, c)
    # What runs is proven by running it: every application row passes the run checks.
    for image in ("api", "postgres", "proxy"):
        for check in ("VFY-USER", "VFY-PRIVS", "VFY-HEALTHY", "VFY-SIGTERM", "VFY-READONLY", "VFY-APPFILES"):
            assert cells[image][check]["outcome"] == "pass", (image, cells[image][check])
    assert "/proc/" in cells["api"]["VFY-PRIVS"]["evidence"]
    assert cells["api"]["VFY-SHELL"]["outcome"] == "pass"
    assert cells["python-builder"]["VFY-BUILDTOOLS"]["outcome"] == "n/a"
    assert "by design" in cells["python-builder"]["VFY-BUILDTOOLS"]["detail"]
    # The benchmark's own target, measured by the stage: under 3 s per image without a healthcheck wait.
    assert report["images"] and all(i["seconds"] > 0 for i in report["images"])


def test_each_defect_image_fails_exactly_its_check(defect_images: dict[str, str]) -> None:
    r = run_cli("verify", "--env", "dev", "--format", "json", *defect_images.values())
    assert r.returncode == 1, r.stderr[-4000:]
    report = json.loads(r.stdout)
    cells = _cells(report)
    by_tag = {tag.rpartition("/")[2]: name for name, tag in defect_images.items()}
    assert {by_tag[g] for g in cells} == set(DEFECTS)
    for group, row in cells.items():
        name = by_tag[group]
        _, expected, evidence = DEFECTS[name]
        failed = {k: c for k, c in row.items() if c["outcome"] == "fail"}
        assert set(failed) == ({expected} if expected else set()), (name, failed)
        if expected:
            assert evidence in failed[expected]["detail"], (name, failed[expected])
            assert failed[expected]["evidence"], name
    secret = cells[defect_images["secret"].rpartition("/")[2]]["VFY-SECRETS"]
    assert "layer /app/config/.env" in secret["detail"], secret
    assert "trivy" in secret["evidence"]
    # SARIF: one run per image, with the failed cell as a result under its check id.
    run_dir = max((ROOT / "artifacts" / "verify").glob("*/verify.sarif"), key=lambda p: p.stat().st_mtime).parent
    sarif = json.loads((run_dir / "verify.sarif").read_text())
    results = {
        r["automationDetails"]["id"].split("/")[2]: {x["ruleId"] for x in r["results"]}
        for r in sarif["runs"]
        if r["results"]
    }
    for name, tag in defect_images.items():
        expected = DEFECTS[name][1]
        assert results.get(tag.rpartition("/")[2], set()) == ({expected} if expected else set()), name
    # The Markdown report (the job summary) is the matrix: one row per image, one column per check.
    md = max((ROOT / "artifacts" / "verify").glob("*/verify.md"), key=lambda p: p.stat().st_mtime).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| image |"))
    assert header.count("|") == len(verify.CHECKS) + 2
    for group in cells:
        assert any(line.startswith(f"| {group} |") for line in md.splitlines()), group
