"""The one error tree of the pipeline.

Every failure a user can cause or meet is a :class:`PipelineError`. Each one says
what failed, what was seen and what to do; :func:`pipelines.cli.main` is the
single boundary that turns them into a message and an exit code.
"""

from __future__ import annotations

# Exit codes, shared by every stage: 0 clean, 1 the stage ran and said no
# (build failed, gate closed), 2 the stage could not run at all, 3 a bug in
# the pipeline itself (never a verdict), 130 interrupted.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """Base of all errors the pipeline reports to a user.

    By default an error means the stage could not run (exit 2): "no recorded
    build" or "engine down" must never read as "the gate said no". Only
    :class:`StageFailed` and its children are verdicts (exit 1).
    """

    exit_code = EXIT_UNUSABLE

    def __init__(self, what: str, *, seen: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.seen = seen
        self.hint = hint

    def render(self) -> str:
        lines = [f"error: {self.what}"]
        if self.seen:
            seen = self.seen.rstrip()
            if "\n" in seen:
                lines.append("  seen:")
                lines.extend(f"    {line}" for line in seen.splitlines())
            else:
                lines.append(f"  seen: {seen}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ConfigError(PipelineError):
    """The pipeline config (or a file it names) is invalid."""

    exit_code = EXIT_UNUSABLE

    def __init__(self, file: str, key: str, problem: str, *, hint: str | None = None) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}", hint=hint)
        self.file = file
        self.key = key
        self.problem = problem


class ConfigNotFound(ConfigError):
    """No config file where one was looked for (linting named paths works without one)."""


class ToolNotFound(PipelineError):
    """A required external tool is missing, too old or not working."""

    exit_code = EXIT_UNUSABLE


class EngineUnavailable(ToolNotFound):
    """The Docker daemon does not answer."""


class StageFailed(PipelineError):
    """The stage ran to its end and its verdict is no (a build broke, a gate closed)."""

    exit_code = EXIT_FAILED


class CommandFailed(PipelineError):
    """An external command exited non-zero (or could not be judged a success)."""

    def __init__(
        self,
        what: str,
        *,
        argv: list[str] | None = None,
        returncode: int | None = None,
        seen: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(what, seen=seen, hint=hint)
        self.argv = argv or []
        self.returncode = returncode


class CommandTimeout(CommandFailed):
    """An external command ran past its timeout and was stopped."""


class BuildFailed(StageFailed):
    """An image did not build: the Dockerfile, its inputs or BuildKit said no."""


class GateFailed(StageFailed):
    """A stage ran to the end and its gate said no."""


class RegistryUnavailable(PipelineError):
    """The configured registry does not answer."""


class ScanError(PipelineError):
    """The scan could not produce a trustworthy result."""


class Interrupted(PipelineError):
    """The user pressed Ctrl-C; children were stopped."""

    exit_code = EXIT_INTERRUPTED


class InputError(PipelineError):
    """A file handed to a stage cannot be read as what it should be (Dockerfile, Compose, ...)."""

    exit_code = EXIT_UNUSABLE
