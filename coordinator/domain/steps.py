"""Build steps: the documented base class users subclass, and ShellCommand.

A step decides; the worker only runs primitive commands. A step gets a :class:`StepContext`
from the build runner (run a command with its output in a log, read and set properties) and
returns a Result. Flags have Buildbot's names and defaults, and Buildbot's meaning.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from coordinator.domain.commands import Finished
from coordinator.domain.results import Result


class StepContext(Protocol):
    """What a running step can do; provided by the build runner."""

    @property
    def builder(self) -> str: ...

    @property
    def worker(self) -> str: ...

    def get_property(self, name: str, default: Any = None) -> Any: ...

    def set_property(self, name: str, value: Any, source: str) -> None: ...

    async def run_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str,
        env: Mapping[str, str],
        timeout: float,
        max_time: float,
        log_name: str = "stdio",
    ) -> Finished: ...

    @property
    def interrupted(self) -> bool: ...


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def caller_location(depth: int = 2) -> tuple[str, int]:
    """File and line of the configuration code that created an object (for config errors)."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            assert frame is not None
            frame = frame.f_back
        # Skip frames inside this package (subclass __init__ chains) to reach the user's file.
        while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE_DIR, "<")):
            frame = frame.f_back
        if frame is None:
            return "<unknown>", 0
        return frame.f_code.co_filename, frame.f_lineno
    finally:
        del frame


class BuildStep:
    """Base class of every step. Subclass it and override :meth:`run` for custom steps."""

    name = "step"
    # Buildbot's defaults.
    haltOnFailure = False
    flunkOnFailure = True
    warnOnFailure = False
    warnOnWarnings = True
    flunkOnWarnings = False
    alwaysRun = False
    hideStepIf: bool = False

    def __init__(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        descriptionDone: str | None = None,
        haltOnFailure: bool | None = None,
        flunkOnFailure: bool | None = None,
        warnOnFailure: bool | None = None,
        warnOnWarnings: bool | None = None,
        flunkOnWarnings: bool | None = None,
        alwaysRun: bool | None = None,
        hideStepIf: bool | None = None,
    ) -> None:
        self.defined_at = caller_location()
        self.errors: list[str] = []
        if name is not None:
            self.name = name
        if not isinstance(self.name, str) or not self.name.strip():
            self.errors.append("a step needs a non-empty name")
        self.description = description
        self.descriptionDone = descriptionDone
        for flag, value in (
            ("haltOnFailure", haltOnFailure),
            ("flunkOnFailure", flunkOnFailure),
            ("warnOnFailure", warnOnFailure),
            ("warnOnWarnings", warnOnWarnings),
            ("flunkOnWarnings", flunkOnWarnings),
            ("alwaysRun", alwaysRun),
            ("hideStepIf", hideStepIf),
        ):
            if value is not None:
                if not isinstance(value, bool):
                    self.errors.append(f"{flag} must be True or False, not {value!r}")
                setattr(self, flag, value)

    async def run(self, ctx: StepContext) -> Result:
        """Do the step's work; return its result."""
        raise NotImplementedError

    def describe(self, done: bool, result: Result | None = None) -> str:
        """The step's state string (Buildbot's description / descriptionDone)."""
        text = (self.descriptionDone if done else self.description) or self.name
        if done and result not in (None, Result.SUCCESS):
            text = f"{text} ({result.label})"  # type: ignore[union-attr]
        return text


class ShellCommand(BuildStep):
    """Run a command on the worker: a list of arguments, or a string for the shell."""

    name = "shell"

    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str = "build",
        env: Mapping[str, str] | None = None,
        timeout: float | None = 1200,
        max_time: float | None = None,
        maxTime: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.workdir = workdir
        self.env = dict(env or {})
        self.timeout = timeout or 0.0
        self.max_time = max_time if max_time is not None else (maxTime or 0.0)
        if isinstance(command, str):
            if not command.strip():
                self.errors.append("command must not be empty")
        elif isinstance(command, Sequence) and command and all(isinstance(a, str) for a in command):
            pass
        else:
            self.errors.append(f"command must be a string or a non-empty list of strings, not {command!r}")
        if not isinstance(workdir, str) or workdir.startswith("/") or ".." in workdir.split("/"):
            self.errors.append(f"workdir must be a relative path inside the build directory, not {workdir!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()):
            self.errors.append("env must map strings to strings")
        for label, value in (("timeout", self.timeout), ("max_time", self.max_time)):
            if not isinstance(value, int | float) or value < 0:
                self.errors.append(f"{label} must be a number of seconds >= 0, not {value!r}")

    def command_text(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def describe(self, done: bool, result: Result | None = None) -> str:
        if self.description or self.descriptionDone:
            return super().describe(done, result)
        text = repr(_shorten(self.command_text()))
        if not done:
            return f"running {text}"
        return text if result in (None, Result.SUCCESS) else f"{text} ({result.label})"  # type: ignore[union-attr]

    async def run(self, ctx: StepContext) -> Result:
        finished = await ctx.run_command(
            self.command,
            workdir=self.workdir,
            env=self.env,
            timeout=self.timeout,
            max_time=self.max_time,
        )
        return self.evaluate(finished, ctx)

    def evaluate(self, finished: Finished, ctx: StepContext) -> Result:
        """Result of the command: CANCELLED if interrupted, else 0 -> SUCCESS, other -> FAILURE."""
        if finished.reason == "interrupted" or ctx.interrupted:
            return Result.CANCELLED
        return Result.SUCCESS if finished.rc == 0 else Result.FAILURE


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
