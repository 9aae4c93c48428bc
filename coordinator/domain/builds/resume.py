"""Builds that outlive their coordinator: which of a dead coordinator's running builds can
continue, and what of them was stored.

A restarted coordinator finds the builds it was running in the database. What is stored is
enough to continue one: the steps that finished (their results; the build's properties as they
were after the last of them, stored with each step's end), the step that was running (its logs:
the chunks of its command's output stored so far) and the command itself, which the worker
kept running and reports when it reconnects (its id starts with "BUILDID-STEP-"). A running
step continues only if it is one whose run is exactly one command (ShellCommand and the steps
built on it without a run of their own): its run() is executed again, and its command is
adopted instead of started, so nothing happens twice on the worker. Anything else — an
unconfigured builder or worker, changed steps, a step that runs several commands, transfers or
triggers — ends RETRY as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from coordinator.domain.builds.builders import Builder
from coordinator.domain.model import Build, LogChunk, Step
from coordinator.domain.ports import LogReads
from coordinator.domain.steps.base import BuildStep, ShellCommand
from coordinator.domain.steps.shell import SetPropertyFromCommand, WarningCountingShellCommand

# The run() methods that run exactly one command, into the log they create (nothing written
# to it before): a step with one of them can adopt its command after a restart.
_ONE_COMMAND_RUNS = {ShellCommand.run, SetPropertyFromCommand.run, WarningCountingShellCommand.run}
PAGE = 1024 * 1024


def running_step(build: Build) -> Step | None:
    """The step that was running (started, not finished), if any."""
    return next((s for s in build.steps if s.started_at is not None and s.finished_at is None), None)


def refusal(build: Build | None, builder: Builder | None, workers: Mapping[str, object]) -> str:
    """Why this build cannot continue after a restart ("" if it can)."""
    if build is None:
        return "the build is gone"
    if builder is None:
        return f"builder {build.builder} is not configured any more"
    if build.worker not in workers:
        return f"worker {build.worker} is not configured any more"
    if [s.name for s in build.steps] != [s.name for s in builder.steps]:
        return "the builder's steps changed"
    step = running_step(build)
    if step is not None and step.logs and not one_command(builder.steps[step.number]):
        return f"step {step.name} cannot be continued (it does more than run one command)"
    return ""


def one_command(step_def: BuildStep) -> bool:
    return getattr(type(step_def), "run", None) in _ONE_COMMAND_RUNS


def command_prefix(build: Build, step: Step) -> str:
    """How the ids of the step's commands start (BuildContext.command_id)."""
    return f"{build.id}-{step.number}-"


async def stored_chunks(reads: LogReads, log_id: int) -> list[LogChunk]:
    """Every chunk of a log, in order (read a page at a time)."""
    chunks: list[LogChunk] = []
    offset = 0
    while True:
        page = await reads.read_log(log_id, offset, PAGE, 0)
        page = [c for c in page if c.offset >= offset]
        if not page:
            return chunks
        chunks.extend(page)
        end = page[-1].offset + len(page[-1].data)
        if end <= offset:
            return chunks
        offset = end
