"""Try jobs (Buildbot's ``buildbot try`` and its Try_Userpass scheduler): a developer sends a
patch and a base revision; the builders a TryScheduler lists build that revision with the patch
applied (the Git step applies it), in one buildset.

What is checked before anything is stored: the builders are listed by an enabled TryScheduler,
the patch is neither empty nor larger than that scheduler's `max_patch_size`, the author is
given. The patch travels base64-encoded in the source stamp (stored with the buildset); the
author and comment become the builds' properties (owner, patch_author, patch_comment).
Who may send one is the `try` authorization rule (checked by the API before this runs).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.changes.validation import check_length, check_properties
from coordinator.domain.errors import FailedPrecondition, InvalidArgument
from coordinator.domain.location import caller_location
from coordinator.domain.model import NewBuildset, PropertyValue, SourceStamp
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.schedulers import Scheduler

DEFAULT_MAX_PATCH = 4 * 1024 * 1024
# A SubmitTry message carries the patch; the gRPC server takes messages up to 16 MiB.
LARGEST_MAX_PATCH = 12 * 1024 * 1024
SOURCE = "Try"


class TryScheduler(Scheduler):
    """``TryScheduler("try", builderNames=["test", "lint"], max_patch_size=1_000_000)``: the
    builders that accept try jobs (`gantry try --builder B`)."""

    def __init__(
        self,
        name: str,
        builderNames: Sequence[str] = (),
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        *,
        builders: Sequence[str] = (),
        max_patch_size: int = DEFAULT_MAX_PATCH,
    ) -> None:
        super().__init__(name, list(builderNames) or list(builders), properties, priority)
        self.defined_at = caller_location()
        self.max_patch_size = max_patch_size
        if isinstance(max_patch_size, bool) or not isinstance(max_patch_size, int) or not (
            0 < max_patch_size <= LARGEST_MAX_PATCH
        ):
            self.errors.append(f"max_patch_size must be a number of bytes from 1 to {LARGEST_MAX_PATCH}, "
                               f"not {max_patch_size!r}")


@dataclass
class TryJob:
    """What a developer sends (SubmitTry)."""

    builders: list[str]
    patch: bytes
    author: str
    repository: str = ""
    branch: str = ""
    revision: str = ""
    project: str = ""
    codebase: str = ""
    comment: str = ""
    properties: list[PropertyValue] = field(default_factory=list)
    scheduler: str = ""


class TryJobs:
    def __init__(self, schedulers: SchedulerControl, submitter: BuildsetSubmitter) -> None:
        self.schedulers = schedulers
        self.submitter = submitter

    async def submit_try(self, job: TryJob) -> tuple[int, dict[str, int], str]:
        """Store the try job's buildset: (buildset id, request per builder, scheduler name)."""
        self._check(job)
        sched = self.scheduler_for(job.builders, job.scheduler)
        size = len(job.patch)
        if size > sched.max_patch_size:
            raise InvalidArgument(
                f"the patch is {_size(size)} ({size} bytes); TryScheduler {sched.name!r} accepts at most "
                f"{_size(sched.max_patch_size)} (its max_patch_size): try a smaller change"
            )
        stamp = SourceStamp(
            repository=job.repository, branch=job.branch, revision=job.revision, project=job.project,
            codebase=job.codebase, patch=base64.b64encode(job.patch).decode("ascii"),
            patch_author=job.author, patch_comment=job.comment,
        )
        props = [*sched.scheduler_properties(), *(PropertyValue(p.name, p.value, SOURCE) for p in job.properties)]
        props += [PropertyValue("owner", job.author, SOURCE), PropertyValue("patch_author", job.author, SOURCE),
                  PropertyValue("patch_comment", job.comment, SOURCE)]
        what = f": {job.comment.splitlines()[0]}" if job.comment.strip() else ""
        bs_id, req_ids = await self.submitter.submit(NewBuildset(
            reason=f"try job by '{job.author}'{what}", scheduler=sched.name, builders=list(job.builders),
            sourcestamps=[stamp], properties=props, priority=sched.priority,
        ))
        return bs_id, req_ids, sched.name

    def scheduler_for(self, builders: Sequence[str], name: str = "") -> TryScheduler:
        """The TryScheduler named `name` (empty: the first enabled one) listing every builder."""
        trying = [s for s in self.schedulers.schedulers if isinstance(s, TryScheduler) and (not name or s.name == name)]
        if not trying:
            raise InvalidArgument(
                f"no TryScheduler named {name!r} in the configuration" if name else
                "this coordinator takes no try jobs: no TryScheduler in its configuration")
        def listed(b: str, s: TryScheduler) -> bool:  # a combination of a listed matrix is listed
            return bool(self.submitter.matrices_of(b) & set(s.builders))

        fit = [s for s in trying if all(listed(b, s) for b in builders)]
        if not fit:
            accepted = sorted({b for s in trying for b in s.builders})
            refused = [b for b in builders if not any(listed(b, s) for s in trying)]
            raise InvalidArgument(
                f"builder{'s' if len(refused) != 1 else ''} {', '.join(map(repr, refused or builders))} "
                f"{'do' if len(refused) != 1 else 'does'} not take try jobs "
                f"(builders that do: {', '.join(accepted) or 'none'})"
            )
        sched = next((s for s in fit if s.enabled), None)
        if sched is None:
            raise FailedPrecondition(
                f"TryScheduler {fit[0].name!r} is disabled; enable it with `gantry scheduler enable {fit[0].name}`")
        return sched

    @staticmethod
    def _check(job: TryJob) -> None:
        if not job.builders:
            raise InvalidArgument("name at least one builder to try on (--builder B)")
        if len(set(job.builders)) != len(job.builders):
            raise InvalidArgument(f"a builder is named twice: {job.builders}")
        if not job.patch.strip():
            raise InvalidArgument("the patch is empty: there is nothing to try (no uncommitted change?)")
        if not job.author.strip():
            raise InvalidArgument("author is required (who sends the try job, e.g. 'Jane <jane@example.org>')")
        for name, value, limit in (
            ("author", job.author, 256), ("comment", job.comment, 1024), ("branch", job.branch, 256),
            ("revision", job.revision, 256), ("repository", job.repository, 1024), ("project", job.project, 256),
            ("codebase", job.codebase, 256), ("scheduler", job.scheduler, 128),
        ):
            check_length(name, value, limit)
        check_properties(job.properties)


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"
