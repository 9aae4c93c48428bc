"""The TryService: a thin adapter over the try jobs use case (scheduling/try_.py).

A try job runs the sender's code on the workers, and authorization does not exist yet: until it
does, only clients on the coordinator's own host (loopback, or a Unix socket) may send one."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from coordinator.api import convert
from coordinator.domain.errors import PermissionDenied
from coordinator.domain.scheduling.try_ import TryJob, TryJobs
from protos.gantry.v1 import try_pb2, try_pb2_grpc

Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class TryServicer(try_pb2_grpc.TryServiceServicer):
    def __init__(self, jobs: TryJobs) -> None:
        self.jobs = jobs

    async def SubmitTry(self, request: try_pb2.SubmitTryRequest, context: Ctx) -> Any:
        if not is_local_peer(context.peer()):
            raise PermissionDenied(
                f"try jobs are accepted only from this coordinator's host for now (you are {context.peer()}): "
                "send it from there (e.g. through an SSH tunnel to the coordinator's port)"
            )
        bs_id, req_ids, scheduler = await self.jobs.submit_try(TryJob(
            builders=list(request.builders), patch=request.patch, author=request.author,
            repository=request.repository, branch=request.branch, revision=request.revision,
            project=request.project, codebase=request.codebase,
            comment=request.comment, properties=convert.properties_in(list(request.properties)),
            scheduler=request.scheduler,
        ))
        return try_pb2.SubmitTryResponse(buildset_id=bs_id, build_request_ids=req_ids, scheduler=scheduler)


def is_local_peer(peer: str) -> bool:
    """gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") is this host."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    if kind == "ipv4":
        return rest.startswith("127.")
    if kind == "ipv6":
        host = rest.rsplit("]", 1)[0].lstrip("[")
        return host == "::1" or host.startswith("::ffff:127.")
    return False
