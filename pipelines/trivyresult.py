"""Reading a Trivy JSON result: shared by every stage that runs Trivy (scan, verify).

Trivy's exit code is never the verdict (its JSON is), but a run that exited
non-zero did not finish, whatever file it left behind: that is an error
(exit 2), never a pass. A result is about exactly one image, named by the
``Metadata.ImageID`` Trivy reports; a result that names no image, or another
one, is an error too, so no verdict speaks for an image nobody examined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import _proc
from .errors import ScanError


def read_result(path: Path, what: str, r: _proc.Result, ok: tuple[int, ...] = (0,)) -> Any:
    """The JSON Trivy (or another scanner) wrote to ``path`` in the run ``r``; ScanError unless it finished."""
    if r.returncode not in ok:
        # Without --exit-code Trivy exits 0 whatever it found: anything else is a failed run, and a file it
        # left (a partial write, or one from before) is no answer.
        raise ScanError(
            f"{what} failed (exit {r.returncode})",
            seen=_proc.tail(r.stderr or r.stdout, 15),
            hint="a scan that did not finish is a failure, never a pass",
        )
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    if not text.strip():
        raise ScanError(
            f"{what} produced no result (exit {r.returncode})",
            seen=_proc.tail(r.stderr or r.stdout, 15),
            hint="a scan without a result is a failure, never a pass",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanError(f"{what} wrote invalid JSON ({exc})") from None


def reported_image_id(data: Any) -> str:
    """The image ID a Trivy result says it read (``Metadata.ImageID``); empty when it names none."""
    meta = data.get("Metadata") if isinstance(data, dict) else None
    image_id = meta.get("ImageID") if isinstance(meta, dict) else None
    return image_id if isinstance(image_id, str) else ""


def check_image_id(data: Any, name: str, image_id: str) -> str:
    """``image_id`` when the result ``data`` reports having read exactly that image; else ScanError."""
    reported = reported_image_id(data)
    if not reported:
        raise ScanError(
            f"Trivy's result for {name} names no image ID: it cannot be tied to the image {image_id}",
            hint="a result that does not say what it examined is not a scan of this image",
        )
    if reported != image_id:
        raise ScanError(
            f"Trivy's result for {name} is about image {reported}, not the image asked about ({image_id})",
            seen=f"asked: {image_id}\nreported: {reported}",
            hint="the scanned archive was not this image; run the scan again",
        )
    return reported
