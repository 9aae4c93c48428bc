"""MasterShellCommand: Buildbot's step that runs a command on the coordinator host."""

from __future__ import annotations

from typing import Any

from coordinator.domain.properties.renderables import Renderable
from coordinator.domain.results import Result
from coordinator.domain.steps.base import ShellCommand, StepContext, render_command

DISABLED = (
    "MasterShellCommand runs commands on the coordinator host and is disabled; "
    "set allow_master_commands=True to enable it"
)


class MasterShellCommand(ShellCommand):
    """Run `command` on the coordinator host (in its data directory, or `workdir` below it, or
    an absolute `workdir`), its output in the step's `stdio` log; the result comes from the exit
    code through `decodeRC`, as for ShellCommand. Stop and timeouts kill its process group.
    Only allowed with ``MasterConfig(allow_master_commands=True)``."""

    name = "MasterShellCommand"

    def __init__(self, command: Any, *, workdir: str | Renderable | None = None, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.workdir = "" if workdir is None else workdir  # type: ignore[assignment]
        if not isinstance(self.workdir, str | Renderable):
            self.errors.append(f"workdir must be a directory (a string), not {workdir!r}")

    async def run(self, ctx: StepContext) -> Result:
        finished = await ctx.run_master_command(
            render_command(self.command, ctx),
            workdir=str(ctx.render(self.workdir)),
            env={k: str(v) for k, v in ctx.render(self.env).items()},
            timeout=self.timeout,
            max_time=self.max_time,
        )
        return self.evaluate(finished, ctx)
