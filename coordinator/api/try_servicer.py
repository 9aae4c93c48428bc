"""The TryService: a thin adapter over the try jobs use case (scheduling/try_.py).

A try job runs the sender's code on the workers: who may send one is the authorization rule of
the `try` action (scoped to builders like force), enforced by the interceptor like every call."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from coordinator.api import convert
from coordinator.api.gate import current_identity
from coordinator.domain.scheduling.try_ import TryJob, TryJobs
from protos.gantry.v1 import try_pb2, try_pb2_grpc

Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class TryServicer(try_pb2_grpc.TryServiceServicer):
    def __init__(self, jobs: TryJobs) -> None:
        self.jobs = jobs

    async def SubmitTry(self, request: try_pb2.SubmitTryRequest, context: Ctx) -> Any:
        # An authenticated sender is the author; without auth (loopback), what the client says.
        who = current_identity.get()
        author = who.user if who is not None and not who.anonymous else request.author
        bs_id, req_ids, scheduler = await self.jobs.submit_try(TryJob(
            builders=list(request.builders), patch=request.patch, author=author,
            repository=request.repository, branch=request.branch, revision=request.revision,
            project=request.project, codebase=request.codebase,
            comment=request.comment, properties=convert.properties_in(list(request.properties)),
            scheduler=request.scheduler,
        ))
        return try_pb2.SubmitTryResponse(buildset_id=bs_id, build_request_ids=req_ids, scheduler=scheduler)

