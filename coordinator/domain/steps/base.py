"""Build steps: the documented base class users subclass, and ShellCommand.

A step decides; the worker only runs primitive commands. A step gets a :class:`StepContext`
from the build runner (run a command with its output in a log, read and set properties) and
returns a Result. Flags have Buildbot's names and defaults, and Buildbot's meaning.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from coordinator.domain.location import caller_location
from coordinator.domain.model import Artifact, CaseResult, PropertyValue, SourceStamp
from coordinator.domain.ports import ArtifactStore, ByteSink
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.logs import LineObserver, OutputCollector
from coordinator.domain.steps.trigger_port import Triggered
from coordinator.domain.workers.commands import FileResult, Finished
from coordinator.domain.workers.transfers import Chunks

T = TypeVar("T")

class StepContext(Protocol):
    """What a running step can do; provided by the build runner."""

    @property
    def builder(self) -> str: ...

    @property
    def worker(self) -> str: ...

    @property
    def build_number(self) -> int: ...

    def get_property(self, name: str, default: Any = None) -> Any: ...

    def has_property(self, name: str) -> bool: ...

    def render(self, value: Any) -> Any: ...

    def add_log_observer(self, log_name: str, observer: LineObserver) -> None: ...

    def set_property(self, name: str, value: Any, source: str) -> None: ...

    async def run_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str = "build",
        env: Mapping[str, str] | None = None,
        timeout: float = 1200,
        max_time: float = 0,
        log_name: str = "stdio",
        collect: OutputCollector | None = None,
    ) -> Finished: ...

    async def run_master_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 1200,
        max_time: float = 0,
        log_name: str = "stdio",
    ) -> Finished: ...

    async def write_log(self, text: str, log_name: str = "stdio") -> None: ...

    async def record_tests(self, cases: Sequence[CaseResult]) -> None:
        """Store the test cases this step ran (test history: failing, flaky, slowest)."""
        ...

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]: ...

    @property
    def interrupted(self) -> bool: ...

    # -- files on the worker: paths relative to the builder directory unless absolute. Expected
    # failures raise TransferError (the step FAILs with its message), a lost worker WorkerLost.
    async def mkdir(self, path: str) -> None: ...

    async def rmdir(self, path: str) -> None: ...

    async def stat(self, path: str) -> FileResult | None: ...

    async def glob(self, pattern: str) -> list[str]: ...

    async def upload(
        self, workersrc: str, sink: ByteSink, *, max_size: int = 0, directory: bool = False
    ) -> FileResult: ...

    async def download(self, chunks: Chunks, workerdest: str, *, max_size: int = 0, mode: int = 0) -> FileResult:
        """Send `chunks` (or, given a function, what it gives: read again to start over after a
        lost worker stream) to the worker's file `workerdest`."""
        ...

    # -- the coordinator's files and what the step records
    @property
    def artifacts(self) -> ArtifactStore: ...

    async def add_artifact(self, name: str, size: int, sha256: str) -> Artifact: ...

    async def add_log(self, name: str, text: str) -> None: ...

    def set_state(self, text: str) -> None: ...


    async def add_url(self, name: str, url: str) -> None:
        """Link something from the current step (stored at once, shown by clients)."""
        ...

    async def trigger(
        self, scheduler: str, sourcestamps: Sequence[SourceStamp], properties: Sequence[PropertyValue], *, wait: bool
    ) -> Triggered:
        """Submit a buildset through the Triggerable scheduler named `scheduler`."""
        ...

    async def unless_stopped(self, aw: Awaitable[T]) -> T | None:
        """`aw`'s value, or None (and `aw` cancelled) when the build is stopped first."""
        ...

    async def add_steps(self, steps: Sequence[BuildStep]) -> None:
        """Append `steps` to the build: they run after every step it has now."""
        ...

    @property
    def step_names(self) -> Sequence[str]:
        """The names of the build's steps so far."""
        ...


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
    # bool, or a function: doStepIf(ctx) -> bool; hideStepIf(result, ctx) -> bool.
    doStepIf: bool | Callable[[StepContext], Any] = True
    hideStepIf: bool | Callable[[Result, StepContext], Any] = False

    def __init__(
        self,
        *,
        name: str | None = None,
        description: str | Renderable | None = None,
        descriptionDone: str | Renderable | None = None,
        haltOnFailure: bool | None = None,
        flunkOnFailure: bool | None = None,
        warnOnFailure: bool | None = None,
        warnOnWarnings: bool | None = None,
        flunkOnWarnings: bool | None = None,
        alwaysRun: bool | None = None,
        doStepIf: bool | Callable[[StepContext], Any] | None = None,
        hideStepIf: bool | Callable[[Result, StepContext], Any] | None = None,
        locks: Sequence[Any] | None = None,
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
        ):
            if value is not None:
                if not isinstance(value, bool):
                    self.errors.append(f"{flag} must be True or False, not {value!r}")
                setattr(self, flag, value)
        for option, fn in (("doStepIf", doStepIf), ("hideStepIf", hideStepIf)):
            if fn is not None:
                if not isinstance(fn, bool) and not callable(fn):
                    self.errors.append(f"{option} must be True, False or a function, not {fn!r}")
                setattr(self, option, fn)
        # MasterLock / WorkerLock (or lock.access(mode)) held while this step runs.
        self.locks: list[Any] = list(locks) if isinstance(locks, list | tuple) else []
        if locks is not None and not isinstance(locks, list | tuple):
            self.errors.append(f"locks must be a list of locks such as MasterLock('name'), not {locks!r}")

    async def should_run(self, ctx: StepContext) -> bool:
        """Buildbot's doStepIf: a bool, or a function of the step context (may be async)."""
        if isinstance(self.doStepIf, bool):
            return self.doStepIf
        verdict = self.doStepIf(ctx)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)

    def is_hidden(self, result: Result, ctx: StepContext) -> bool:
        """Buildbot's hideStepIf: a bool, or a function of (result, step context)."""
        if isinstance(self.hideStepIf, bool):
            return self.hideStepIf
        return bool(self.hideStepIf(result, ctx))

    async def run(self, ctx: StepContext) -> Result:
        """Do the step's work; return its result."""
        raise NotImplementedError

    def describe(self, done: bool, result: Result | None = None, ctx: StepContext | None = None) -> str:
        """The step's state string (Buildbot's description / descriptionDone), rendered for
        the build when `ctx` is given."""
        text = (self.descriptionDone if done else self.description) or self.name
        rendered = ctx.render(text) if ctx is not None else text
        text = self.name if rendered in (None, "") else str(rendered)
        if done and result not in (None, Result.SUCCESS):
            text = f"{text} ({result.label})"  # type: ignore[union-attr]
        return text


class ShellCommand(BuildStep):
    """Run a command on the worker: a list of arguments, or a string for the shell."""

    name = "shell"

    def __init__(
        self,
        command: Sequence[str | Renderable] | str | Renderable,
        *,
        workdir: str | Renderable = "build",
        env: Mapping[str, str | Renderable] | None = None,
        timeout: float | None = 1200,
        max_time: float | None = None,
        maxTime: float | None = None,
        decodeRC: Mapping[int, Result | int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decodeRC: dict[int, Result] = {0: Result.SUCCESS}
        if decodeRC is not None:
            self.decodeRC = _decode_rc(decodeRC, self.errors)
        self.command = command
        self.workdir = workdir
        self.env = dict(env or {})
        self.timeout = timeout or 0.0
        self.max_time = max_time if max_time is not None else (maxTime or 0.0)
        self.errors.extend(_command_errors(command))
        if isinstance(workdir, str) and not _relative(workdir) or not isinstance(workdir, str | Renderable):
            self.errors.append(f"workdir must be a relative path inside the build directory, not {workdir!r}")
        if not all(isinstance(k, str) and isinstance(v, str | Renderable) for k, v in self.env.items()):
            self.errors.append("env must map strings to strings (or renderables)")
        for label, value in (("timeout", self.timeout), ("max_time", self.max_time)):
            if not isinstance(value, int | float) or value < 0:
                self.errors.append(f"{label} must be a number of seconds >= 0, not {value!r}")

    def command_text(self, command: Any = None) -> str:
        command = self.command if command is None else command
        if isinstance(command, str):
            return command
        if isinstance(command, Renderable):
            return repr(command)
        return shlex.join(str(a) for a in command)

    def describe(self, done: bool, result: Result | None = None, ctx: StepContext | None = None) -> str:
        if self.description or self.descriptionDone:
            return super().describe(done, result, ctx)
        command = render_command(self.command, ctx) if ctx is not None else self.command
        text = repr(_shorten(self.command_text(command)))
        if not done:
            return f"running {text}"
        return text if result in (None, Result.SUCCESS) else f"{text} ({result.label})"  # type: ignore[union-attr]

    async def run(self, ctx: StepContext) -> Result:
        return self.evaluate(await self.run_shell(ctx), ctx)

    async def run_shell(
        self,
        ctx: StepContext,
        command: Any = None,
        *,
        log_name: str = "stdio",
        collect: OutputCollector | None = None,
    ) -> Finished:
        """Run `command` (default: this step's) rendered for the build, with this step's
        workdir, env and timeouts, into the log `log_name`."""
        return await ctx.run_command(
            render_command(self.command if command is None else command, ctx),
            workdir=render_workdir(self.workdir, ctx),
            env={k: str(v) for k, v in ctx.render(self.env).items()},
            timeout=self.timeout,
            max_time=self.max_time,
            log_name=log_name,
            collect=collect,
        )

    def evaluate(self, finished: Finished, ctx: StepContext) -> Result:
        """Result of the command: CANCELLED if interrupted, a timeout FAILURE, else the exit code
        through decodeRC (default {0: SUCCESS}); codes it does not list -> FAILURE."""
        if finished.reason == "interrupted" or ctx.interrupted:
            return Result.CANCELLED
        if finished.reason:  # timeout, max_time, failed to start
            return Result.FAILURE
        return self.decodeRC.get(finished.rc, Result.FAILURE)


def _decode_rc(mapping: Any, errors: list[str]) -> dict[int, Result]:
    codes = {r.value for r in Result}
    good = isinstance(mapping, Mapping) and all(
        isinstance(k, int) and not isinstance(k, bool) and isinstance(v, int) and v in codes
        for k, v in mapping.items()
    )
    if not good:
        errors.append(f"decodeRC must map exit codes (int) to results such as SUCCESS, not {mapping!r}")
        return {0: Result.SUCCESS}
    return {k: Result(v) for k, v in mapping.items()}


def _command_errors(command: Any) -> list[str]:
    if isinstance(command, Renderable):
        return []
    if isinstance(command, str):
        return [] if command.strip() else ["command must not be empty"]
    if isinstance(command, Sequence) and command and all(_is_arg(a) for a in command):
        return []
    return [f"command must be a string or a non-empty list of strings (or renderables), not {command!r}"]


def _is_arg(arg: Any) -> bool:
    if isinstance(arg, list | tuple):
        return all(_is_arg(a) for a in arg)
    return isinstance(arg, str | int | float | Renderable)


def _relative(path: str) -> bool:
    return not path.startswith("/") and ".." not in path.split("/")


def _flatten(args: Any) -> list[str]:
    if isinstance(args, list | tuple):
        return [a for arg in args for a in _flatten(arg)]
    return [str(args)]


def render_command(command: Any, ctx: StepContext) -> list[str] | str:
    """The command rendered for the build: a string (for the shell), or a flat list of
    strings (nested lists, as renderables may produce, are flattened as in Buildbot)."""
    rendered = ctx.render(command)
    return rendered if isinstance(rendered, str) else _flatten(rendered)


def render_workdir(workdir: Any, ctx: StepContext) -> str:
    rendered = str(ctx.render(workdir))
    if not _relative(rendered):
        raise ValueError(f"workdir {rendered!r} is not a relative path inside the build directory")
    return rendered


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
