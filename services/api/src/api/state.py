"""State the api's processes share: the server's workers are separate processes in one container."""

from __future__ import annotations

import tempfile
from pathlib import Path

# Present while the api drains before it stops: /ready says 503 so the front door sends no more.
DRAINING = Path(tempfile.gettempdir()) / "api-draining"
