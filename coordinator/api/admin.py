"""AdminService: operating a running coordinator (pause, drain and resume workers; reload the
configuration)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from coordinator.api import convert
from coordinator.api.servicers import Ctx
from coordinator.domain.builds.retention import Janitor
from coordinator.domain.builds.worker_holds import WorkerHolds
from coordinator.domain.errors import FailedPrecondition, InvalidArgument
from coordinator.domain.status.queries import Queries
from coordinator.reconfig import Plan
from protos.gantry.v1 import admin_pb2, admin_pb2_grpc, control_pb2


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        holds: WorkerHolds,
        queries: Queries,
        reconfig: Callable[[bool], Awaitable[Plan]],
        janitor: Janitor | None = None,
    ) -> None:
        self.holds = holds
        self.queries = queries
        self.reconfig = reconfig  # the coordinator's (FailedPrecondition without a file to reload)
        self.janitor = janitor

    async def RunJanitor(self, request: admin_pb2.JanitorRequest, context: Ctx) -> Any:
        if self.janitor is None:
            raise FailedPrecondition("this coordinator has no janitor")
        report = await self.janitor.sweep(request.dry_run)
        return admin_pb2.JanitorResponse(
            counts=[
                admin_pb2.JanitorCount(builder=builder, kind=kind, count=n)
                for (builder, kind), n in sorted(report.deleted.items())
            ],
            batches=report.batches,
            reclaimed=report.reclaimed,
            dry_run=report.dry_run,
        )

    async def Reconfig(self, request: admin_pb2.ReconfigRequest, context: Ctx) -> Any:
        plan = await self.reconfig(request.dry_run)
        return admin_pb2.ReconfigResponse(
            config_file=plan.config_file,
            changes=[
                admin_pb2.ConfigChange(kind=kind, change=change, names=names)
                for kind, d in plan.changes.items()
                for change, names in (("added", d.added), ("removed", d.removed), ("changed", d.changed))
                if names
            ],
            notes=plan.notes,
            applied=plan.applied,
        )

    async def PauseWorker(self, request: admin_pb2.WorkerHoldRequest, context: Ctx) -> Any:
        await self.holds.pause(_name(request), request.reason)
        return await self._worker(request.name)

    async def DrainWorker(self, request: admin_pb2.WorkerHoldRequest, context: Ctx) -> Any:
        await self.holds.drain(_name(request), request.reason)
        return await self._worker(request.name)

    async def ResumeWorker(self, request: admin_pb2.WorkerHoldRequest, context: Ctx) -> Any:
        await self.holds.resume(_name(request), request.reason)
        return await self._worker(request.name)

    async def _worker(self, name: str) -> control_pb2.Worker:
        return next(convert.worker_pb(w) for w in await self.queries.list_workers() if w.name == name)


def _name(request: admin_pb2.WorkerHoldRequest) -> str:
    if not request.name:
        raise InvalidArgument("name is required")
    return request.name
