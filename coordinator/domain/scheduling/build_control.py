"""What a user does to builds by hand: force one (through a ForceScheduler), rebuild one, stop a
running one, cancel a request that has not started; and what forcing a builder takes (its form)."""

from __future__ import annotations

import logging
from typing import NamedTuple

from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.lookup import find_build, find_builder
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.changes.validation import check_length, check_properties
from coordinator.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from coordinator.domain.model import BuildRequest, NewBuildset, PropertyValue, SourceStamp
from coordinator.domain.ports import BuildReads, RequestReads
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.force import CodebaseForm, ForceScheduler, ParameterInfo

log = logging.getLogger(__name__)
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000  # of a forced build request


class ForceForm(NamedTuple):
    scheduler: str
    parameters: list[ParameterInfo]
    codebases: list[SourceStamp]
    codebase_forms: list[CodebaseForm]


class BuildControl:
    def __init__(
        self,
        builds: BuildReads,
        requests: RequestReads,
        submitter: BuildsetSubmitter,
        schedulers: SchedulerControl,
        dispatcher: Dispatcher,
    ) -> None:
        self.builds = builds
        self.requests = requests
        self.submitter = submitter
        self.schedulers = schedulers
        self.dispatcher = dispatcher  # the configured builders and the running builds

    async def force_build(
        self,
        builder: str,
        *,
        reason: str = "",
        owner: str = "",
        branch: str = "",
        revision: str = "",
        repository: str = "",
        project: str = "",
        properties: list[PropertyValue] | None = None,
        priority: int | None = None,
        sourcestamps: list[SourceStamp] | None = None,
        scheduler: str = "",
    ) -> tuple[int, int]:
        if not builder:
            raise InvalidArgument("builder is required")
        if builder not in self.submitter.matrices:  # a matrix builder: one build per combination
            find_builder(self.dispatcher.builders, builder)
        if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidArgument(
                f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY} (higher runs first), not {priority}"
            )
        for field, value, limit in (
            ("reason", reason, 1024), ("owner", owner, 256), ("branch", branch, 256),
            ("revision", revision, 256), ("repository", repository, 1024), ("project", project, 256),
        ):
            check_length(field, value, limit)
        props = properties or []
        check_properties(props)
        sched = self.force_scheduler(builder, scheduler)
        for i, stamp in enumerate(sourcestamps or ()):
            for field, value, limit in (
                ("codebase", stamp.codebase, 256), ("branch", stamp.branch, 256), ("revision", stamp.revision, 256),
                ("repository", stamp.repository, 1024), ("project", stamp.project, 256),
            ):
                check_length(f"sourcestamps[{i}].{field}", value, limit)
        top = SourceStamp(repository=repository, branch=branch, revision=revision, project=project)
        bs = sched.force_buildset(
            builder, reason=reason, owner=owner, top=top, per_codebase=sourcestamps or [], properties=props,
        )
        if priority is not None:
            bs.priority = priority
        bs_id, req_ids = await self.submitter.submit(bs)
        # A matrix builder's: its first combination's request (the buildset has them all).
        return bs_id, req_ids[builder] if builder in req_ids else req_ids[bs.builders[0]]

    def force_scheduler(self, builder: str, name: str = "") -> ForceScheduler:
        """The ForceScheduler named `name` (empty: the first one) that lists `builder`."""
        names = self.submitter.matrices_of(builder)  # a matrix's ForceScheduler forces one combination too
        forcing = [
            s for s in self.schedulers.schedulers if isinstance(s, ForceScheduler) and names & set(s.builders)
        ]
        found = [s for s in forcing if not name or s.name == name]
        if found:
            sched = next((s for s in found if s.enabled), None)
            if sched is None:
                raise FailedPrecondition(
                    f"builder {builder!r} cannot be forced: its ForceScheduler {found[0].name!r} is disabled; "
                    f"enable it with `gantry scheduler enable {found[0].name}`"
                )
            return sched
        if not forcing:
            raise InvalidArgument(
                f"builder {builder!r} cannot be forced: no ForceScheduler lists it in the configuration"
            )
        raise InvalidArgument(
            f"no ForceScheduler named {name!r} lists builder {builder!r} "
            f"(ForceSchedulers of {builder!r}: {', '.join(s.name for s in forcing)})"
        )

    def force_form(self, builder: str) -> ForceForm:
        """What forcing `builder` takes: its ForceScheduler's name ("" if none), parameters,
        codebases with their defaults and each codebase's fields."""
        try:
            sched = self.force_scheduler(builder)
        except (InvalidArgument, FailedPrecondition):
            return ForceForm("", [], [], [])
        return ForceForm(sched.name, sched.parameter_infos(), list((sched.codebases or {}).values()),
                         sched.codebase_infos())

    async def rebuild_build(self, builder: str, number: int) -> tuple[int, int]:
        """Buildbot's rebuild: a new buildset with the build's source stamps, buildset
        properties and changes, for the build's builder only."""
        if not builder:
            raise InvalidArgument("builder is required")
        build = await find_build(self.builds, builder, number)
        find_builder(self.dispatcher.builders, builder)  # it must still be configured to run
        old = await self.requests.get_buildset(build.buildset_id)
        if old is None:  # a build always has its buildset; only a damaged database lacks it
            raise NotFound(f"the buildset {build.buildset_id} of build {builder} #{number} no longer exists")
        # The rebuild keeps the original request's priority (as Buildbot's rebuild does).
        requests = await self.requests.list_build_requests(builder, build.buildset_id, 1000)
        priority = next((r.priority for r in requests if r.id == build.build_request_id), 0)
        props = [p for p in old.properties if p.name != "rebuilt_buildid"]
        props.append(PropertyValue("rebuilt_buildid", build.id, "Rebuild"))
        bs_id, req_ids = await self.submitter.submit(NewBuildset(
            reason=f"rebuild of {builder} #{number}",
            scheduler="rebuild",
            builders=[builder],
            sourcestamps=list(old.sourcestamps),
            properties=props,
            change_ids=list(old.change_ids),
            priority=priority,
        ))
        return bs_id, req_ids[builder]

    async def stop_build(self, builder: str, number: int, reason: str) -> bool:
        build = await find_build(self.builds, builder, number)
        if build.complete:
            return False
        runner = self.dispatcher.find_running(builder, number)
        if runner is None:
            return False
        runner.stop(reason or "stopped by request")
        return True

    async def cancel_work(self, request_id: int, reason: str) -> None:
        """The build cancellers' way (cancellers.py): cancel the request if nobody claimed it,
        else stop its build here, now or as soon as it starts; nothing if it is complete."""
        cancelled, now = await self.submitter.cancel([request_id], reason)
        req = now.get(request_id)
        if cancelled or req is None or req.complete:
            return
        if not self.dispatcher.stop_request(request_id, reason):
            # It finished meanwhile, or another coordinator claimed it (its dispatcher runs it).
            log.info("build request %d is not running here; not stopped: %s", request_id, reason)

    async def cancel_build_request(self, request_id: int, reason: str) -> BuildRequest:
        """Cancel a request that has not started (Buildbot's cancel of a pending request)."""
        if request_id <= 0:
            raise InvalidArgument("request_id must be a positive build request id")
        check_length("reason", reason, 1024)
        cancelled, now = await self.submitter.cancel([request_id], reason or "cancelled by request")
        req = now.get(request_id)
        if req is None:
            raise NotFound(f"no build request with id {request_id}")
        if cancelled:
            return req
        if req.complete:
            how = f"collapsed into request {req.absorbed_by}" if req.absorbed_by else (
                f"result {req.result.label}" if req.result is not None else "done")
            raise FailedPrecondition(f"build request {request_id} is already complete ({how}); nothing to cancel")
        raise FailedPrecondition(
            f"build request {request_id} has already started on builder {req.builder!r}; "
            f"stop its build instead (`gantry builds --builder {req.builder}` lists it, `gantry stop` stops it)"
        )
