"""What the Mercurial and SVN source steps share: their options' checks, the source stamp
they use, and running one checked command on the worker (a failure raises SourceFailed with the
message the user reads in the step's log)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.steps.base import StepContext
from coordinator.domain.steps.logs import OutputCollector
from coordinator.domain.workers.commands import Finished

MODES = {"incremental": (None,), "full": ("clean", "fresh", "clobber")}


class SourceFailed(Exception):
    """A VCS command failed; the message is what the user reads in the log."""


def option_errors(step: str, repourl: object, mode: object, method: object, timeout: object,
                  codebase: object, flags: Mapping[str, object]) -> list[str]:
    problems = []
    if not isinstance(repourl, str | Renderable) or repourl == "":
        problems.append(f"{step} needs repourl= (a URL, or a path on the worker), not {repourl!r}")
    if mode not in MODES:
        problems.append(f"mode must be 'incremental' or 'full', not {mode!r}")
    elif method not in MODES[str(mode)]:
        allowed = " or ".join(repr(m) for m in MODES[str(mode)] if m)
        problems.append(f"method {method!r} is not valid with mode={mode!r}"
                        + (f" (use {allowed})" if allowed else " (give no method)"))
    for flag, value in flags.items():
        if not isinstance(value, bool):
            problems.append(f"{flag} must be True or False, not {value!r}")
    if not isinstance(codebase, str):
        problems.append(f"codebase must be a string, not {codebase!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        problems.append(f"timeout must be a number of seconds >= 0, not {timeout!r}")
    return problems


def stamp_of(ctx: StepContext, codebase: str) -> SourceStamp | None:
    return next((ss for ss in ctx.sourcestamps if ss.codebase == codebase), None)


class WorkerCommands:
    """The commands of one source step run, in its workdir, with a plain failure message."""

    def __init__(self, ctx: StepContext, workdir: str, timeout: float, env: Mapping[str, str]) -> None:
        self.ctx = ctx
        self.workdir = workdir
        self.timeout = timeout
        self.env = dict(env)

    async def run(self, argv: list[str], *, workdir: str | None = None,
                  collect: OutputCollector | None = None) -> Finished:
        finished = await self.ctx.run_command(
            argv, workdir=self.workdir if workdir is None else workdir, env=self.env,
            timeout=self.timeout, collect=collect,
        )
        if self.ctx.interrupted or finished.reason == "interrupted":
            raise SourceFailed("interrupted")
        if finished.reason:
            raise SourceFailed(f"{shlex.join(argv)}: {finished.reason}")
        return finished

    async def check(self, argv: list[str], what: str, collect: OutputCollector | None = None) -> Finished:
        finished = await self.run(argv, collect=collect)
        if finished.rc != 0:
            raise SourceFailed(f"{what} ({argv[0]} exited with code {finished.rc})")
        return finished

    async def output(self, argv: list[str], what: str) -> str:
        collector = OutputCollector(64 * 1024)
        await self.check(argv, what, collect=collector)
        return collector.stdout.strip()

    async def exists(self, path: str) -> bool:
        return (await self.run(["test", "-e", path])).rc == 0

    async def clobber(self) -> None:
        if (await self.run(["rm", "-rf", "--", self.workdir], workdir=".")).rc != 0:
            raise SourceFailed(f"could not remove the directory {self.workdir!r} on the worker")
