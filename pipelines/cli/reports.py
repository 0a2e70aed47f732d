"""Where a finished stage's Result goes: every format under its directory, the verdict, the job summary, stdout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import inputs, render, report
from ..errors import InputError
from ..result import Result


def emit(
    res: Result,
    fmt: str,
    output: Path | None,
    *,
    artifacts: Path | None = None,
    environ: dict[str, str] | None = None,
) -> None:
    """Write every format under the stage's directory, the job summary, and the chosen format."""
    environ = dict(os.environ) if environ is None else environ
    if res.out_dir is not None:
        inputs.make_dir(res.out_dir, f"{res.stage} reports")
        try:
            render.write_all(res, res.out_dir)
        except OSError as exc:
            raise InputError(
                f"cannot write the {res.stage} reports under {res.out_dir}: {exc.strerror}",
                hint="make the artifacts directory ([project].artifacts) writable",
            ) from None
    if artifacts is not None and res.env and res.subjects:
        # What this stage concluded about exactly these images: promotion and deploy trust only that. Only a
        # result that judged an environment's build records one (verdicts.conclude), so the other commands
        # need not load the records' models (pydantic: 0.1-0.2 s of each start).
        from .. import verdicts

        verdicts.conclude(artifacts, res)
    report.step_summary(render.markdown(res), environ)
    text = render.render(res, fmt) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: directory {output.parent} does not exist", hint="create it first")
    # A directory, a FIFO with no reader or a device is one clear error, never a hang.
    inputs.write_text(output, text, f"{res.stage} report (--output)")
