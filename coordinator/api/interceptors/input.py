"""Malformed requests are INVALID_ARGUMENT, not UNKNOWN with a traceback in the log: grpc would
log an ERROR with a stack for every request whose bytes do not parse — a log flood anyone can
cause. The deserializer is wrapped to hand on a marker instead, which the guard refuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from coordinator.api.interceptors.wrapping import wrap
from coordinator.logsafe import clip

log = logging.getLogger(__name__)


class Malformed:
    """Stands for a request whose bytes are not a valid message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError, and whatever else a parser raises on junk
            return Malformed(type(exc).__name__)

    return parse


async def _refuse_malformed(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, Malformed):
        log.info("malformed request from %s (%s)", clip(context.peer()), request.reason)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid message of this method")


class InputInterceptor(grpc.aio.ServerInterceptor):
    """The outermost interceptor: its deserializer is the one grpc uses."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap(handler, _refuse_malformed, deserializer=_safe(handler.request_deserializer),
                    stream_guard=_refuse_malformed)
