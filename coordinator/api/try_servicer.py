"""The TryService: a thin adapter over the try jobs use case (scheduling/try_.py)."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from coordinator.api import convert
from coordinator.domain.scheduling.try_ import TryJob, TryJobs
from protos.gantry.v1 import try_pb2, try_pb2_grpc

Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class TryServicer(try_pb2_grpc.TryServiceServicer):
    def __init__(self, jobs: TryJobs) -> None:
        self.jobs = jobs

    async def SubmitTry(self, request: try_pb2.SubmitTryRequest, context: Ctx) -> Any:
        bs_id, req_ids, scheduler = await self.jobs.submit_try(TryJob(
            builders=list(request.builders), patch=request.patch, author=request.author,
            repository=request.repository, branch=request.branch, revision=request.revision,
            project=request.project, codebase=request.codebase,
            comment=request.comment, properties=convert.properties_in(list(request.properties)),
            scheduler=request.scheduler,
        ))
        return try_pb2.SubmitTryResponse(buildset_id=bs_id, build_request_ids=req_ids, scheduler=scheduler)
