"""Steps built on ShellCommand, with Buildbot's names and behaviour: SetPropertyFromCommand,
ShellSequence (+ ShellArg), WarningCountingShellCommand and Compile."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from coordinator.domain.location import caller_location
from coordinator.domain.results import Result, combine
from coordinator.domain.steps.base import BuildStep, ShellCommand, StepContext
from coordinator.domain.steps.logs import OutputCollector

PROPERTY_SOURCE = "SetPropertyFromCommand Step"
ExtractFn = Callable[[int, str, str], Mapping[str, Any]]


class SetPropertyFromCommand(ShellCommand):
    """Run a command and set a property from its output: `property` gets stdout (stripped with
    `strip`) when the command succeeds, or `extract_fn(rc, stdout, stderr)` returns a dict of
    properties (called whatever the exit code). Output is also stored in the `stdio` log; at most
    `collect_limit` bytes per channel are kept for the property."""

    name = "SetPropertyFromCommand"

    def __init__(
        self,
        command: Any,
        property: Any = None,  # noqa: A002 - Buildbot's argument name
        extract_fn: ExtractFn | None = None,
        strip: bool = True,
        collect_limit: int = 1024 * 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(command, **kwargs)
        self.property = property
        self.extract_fn = extract_fn
        self.strip = strip
        self.collect_limit = collect_limit
        if (property is None) == (extract_fn is None):
            self.errors.append("give exactly one of property= or extract_fn=")
        if extract_fn is not None and not callable(extract_fn):
            self.errors.append(f"extract_fn must be a function (rc, stdout, stderr) -> dict, not {extract_fn!r}")
        if not isinstance(strip, bool):
            self.errors.append(f"strip must be True or False, not {strip!r}")

    async def run(self, ctx: StepContext) -> Result:
        collector = OutputCollector(self.collect_limit)
        finished = await self.run_shell(ctx, collect=collector)
        result = self.evaluate(finished, ctx)
        if result == Result.CANCELLED:
            return result
        if self.extract_fn is not None:
            self._set_all(ctx, self.extract_fn(finished.rc, collector.stdout, collector.stderr))
        elif result == Result.SUCCESS:
            value = collector.stdout.strip() if self.strip else collector.stdout
            ctx.set_property(str(ctx.render(self.property)), value, PROPERTY_SOURCE)
        return result

    @staticmethod
    def _set_all(ctx: StepContext, props: Mapping[str, Any]) -> None:
        if not isinstance(props, Mapping):
            raise TypeError(f"extract_fn must return a dict of properties, not {props!r}")
        for name, value in props.items():
            json.dumps(value)  # stored as JSON: a value that cannot be is the step's EXCEPTION
            ctx.set_property(str(name), value, PROPERTY_SOURCE)


class ShellArg:
    """One command of a ShellSequence, with Buildbot's flags and defaults for folding its result
    into the step's (haltOnFailure stops the sequence)."""

    def __init__(
        self,
        command: Any,
        logname: str | None = None,
        haltOnFailure: bool = False,
        flunkOnFailure: bool = True,
        warnOnFailure: bool = False,
        warnOnWarnings: bool = False,
        flunkOnWarnings: bool = False,
    ) -> None:
        self.defined_at = caller_location()
        self.command = command
        self.logname = logname
        self.haltOnFailure = haltOnFailure
        self.flunkOnFailure = flunkOnFailure
        self.warnOnFailure = warnOnFailure
        self.warnOnWarnings = warnOnWarnings
        self.flunkOnWarnings = flunkOnWarnings

    def errors(self) -> list[str]:
        problems = ShellCommand(self.command).errors
        if self.logname is not None and (not isinstance(self.logname, str) or not self.logname):
            problems.append(f"logname must be a non-empty string, not {self.logname!r}")
        for flag in ("haltOnFailure", "flunkOnFailure", "warnOnFailure", "warnOnWarnings", "flunkOnWarnings"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag} must be True or False, not {getattr(self, flag)!r}")
        return problems


class ShellSequence(ShellCommand):
    """Run several commands in order in one step, each into its own log (its `logname`, else
    `stdio`, `stdio2`, …), with the step's workdir, env and timeouts. The step's result folds the
    commands' results as a build folds its steps' (Buildbot's computeResultAndTermination)."""

    name = "ShellSequence"

    def __init__(self, commands: list[ShellArg], **kwargs: Any) -> None:
        super().__init__("(sequence)", **kwargs)
        self.commands = commands
        if not isinstance(commands, list | tuple) or not commands:
            self.errors.append("commands must be a non-empty list of ShellArg(...)")
            self.commands = []
        self.lognames = _lognames(self.commands, self.errors)

    async def run(self, ctx: StepContext) -> Result:
        overall = Result.SUCCESS
        for arg, logname in zip(self.commands, self.lognames, strict=True):
            finished = await self.run_shell(ctx, arg.command, log_name=logname)
            overall, halt = combine(overall, arg, self.evaluate(finished, ctx))
            if halt or overall in (Result.CANCELLED, Result.EXCEPTION, Result.RETRY):
                break
        return overall

    def describe(self, done: bool, result: Result | None = None, ctx: StepContext | None = None) -> str:
        return BuildStep.describe(self, done, result, ctx)


def _lognames(commands: list[Any], errors: list[str]) -> list[str]:
    names: list[str] = []
    for i, arg in enumerate(commands):
        if not isinstance(arg, ShellArg):
            errors.append(f"commands must contain ShellArg(...) objects, not {arg!r}")
            names.append(f"stdio{i + 1}")
            continue
        errors.extend(f"command {i + 1}: {e}" for e in arg.errors())
        taken = {a.logname for a in commands if isinstance(a, ShellArg)} | set(names)
        name = arg.logname or next(n for n in _default_names() if n not in taken)
        if name in names:
            errors.append(f"two commands write to the log {name!r}; give one a logname=")
        names.append(name)
    return names


def _default_names() -> Any:
    yield "stdio"
    n = 2
    while True:
        yield f"stdio{n}"
        n += 1


class WarningCountingShellCommand(ShellCommand):
    """A ShellCommand that counts the lines of its `stdio` log (stdout and stderr) matching
    `warningPattern` (a regex matched at the start of each line, as Buildbot's re.match) as the
    output arrives, sets the property `warnings-count`, and ends WARNINGS when any were found —
    FAILURE when more than `maxWarnCount`, or when the command failed."""

    name = "shell"

    def __init__(
        self,
        command: Any,
        warningPattern: str | re.Pattern[str] = r".*warning[: ].*",
        maxWarnCount: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(command, **kwargs)
        self.maxWarnCount = maxWarnCount
        self.warningPattern: re.Pattern[str] = re.compile("$^")
        try:
            self.warningPattern = re.compile(warningPattern)
        except (re.error, TypeError) as exc:
            self.errors.append(f"warningPattern must be a regular expression, not {warningPattern!r} ({exc})")
        if maxWarnCount is not None and (not isinstance(maxWarnCount, int) or maxWarnCount < 0):
            self.errors.append(f"maxWarnCount must be None or a whole number >= 0, not {maxWarnCount!r}")

    async def run(self, ctx: StepContext) -> Result:
        count = 0

        def observe(channel: int, line: str) -> None:
            nonlocal count
            if self.warningPattern.match(line):
                count += 1

        ctx.add_log_observer("stdio", observe)
        result = self.evaluate(await self.run_shell(ctx), ctx)
        ctx.set_property("warnings-count", count, "WarningCountingShellCommand")
        if result != Result.SUCCESS:
            return result
        if self.maxWarnCount is not None and count > self.maxWarnCount:
            return Result.FAILURE
        return Result.WARNINGS if count else Result.SUCCESS


class Compile(WarningCountingShellCommand):
    """Buildbot's Compile: a WarningCountingShellCommand named "compile"."""

    name = "compile"

    def __init__(self, command: Any = ("make", "all"), **kwargs: Any) -> None:
        kwargs.setdefault("description", "compiling")
        kwargs.setdefault("descriptionDone", "compile")
        super().__init__(list(command) if isinstance(command, tuple) else command, **kwargs)
