"""Builds that outlive their coordinator: which of a dead coordinator's running builds can
continue, and what of them was stored.

A restarted coordinator finds the builds it was running in the database. What is stored is
enough to continue one: the steps that finished (their results; the build's properties as they
were after the last of them, stored with each step's end), the step that was running (its logs:
the chunks stored so far; its command journal: what each action it finished did, see
journal.py) and its command in flight, which the worker kept running and reports when it
reconnects (its id starts with "BUILDID-STEP-").

The running step continues by replay: its run() is executed again from the beginning; the
actions it journaled return what they returned before without running again (nor writing to its
logs again), the command that was in flight is adopted from the worker instead of started, and
the rest runs normally. So any step continues — ShellCommand, ShellSequence, the source steps,
file transfers, Trigger, custom steps — as long as its run() is deterministic (it asks for the
same actions in the same order given the same results) and does its side effects through the
step context. What cannot continue ends RETRY (re-queued), as before a restart was survivable:
an unconfigured builder or worker, changed steps (refused here, before the build is loaded), a
replay that asks for something else than its journal holds, a MasterShellCommand that was
running on the coordinator host (its process went with the coordinator), or a command in flight
whose output was stored but which the worker no longer has (those are decided as the step
replays, journal.CannotContinue / WorkerLost).
"""

from __future__ import annotations

from collections.abc import Mapping

from coordinator.domain.builds.builders import Builder
from coordinator.domain.model import Build, LogChunk, Step
from coordinator.domain.ports import LogReads

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
    return ""


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
