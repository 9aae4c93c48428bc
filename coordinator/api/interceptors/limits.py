"""Per-client limits (a client is its address): a token bucket on control calls (force, stop,
submit, token admin... every action but read), and a cap on concurrently open streams (Subscribe,
FollowLog, worker streams...). Over a limit: RESOURCE_EXHAUSTED saying which, logged once per
client per minute. Reads are not rate-limited (clients poll; the stream cap bounds what they hold)."""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from coordinator.api.interceptors.auth import peer_ip
from coordinator.api.interceptors.methods import METHODS
from coordinator.domain.auth import actions
from coordinator.domain.auth.limits import FailureLimiter, RateLimiter
from coordinator.logsafe import clip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientLimits:
    control_rate: float = 20.0  # control calls per second per client, sustained
    control_burst: float = 100.0
    max_streams: int = 20_000  # open streaming calls per client (a dashboard host may hold many)


class LimitsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, limits: ClientLimits, now: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._control = RateLimiter(limits.control_rate, limits.control_burst, now)
        self._open: Counter[str] = Counter()
        self._logged = FailureLimiter(limit=1 << 30, window=60.0, now=now)

    def _refusal(self, client: str, what: str) -> str:
        if self._logged.failed(f"{what}:{client}"):
            log.warning("client %s is over its %s limit (logged once a minute)", clip(client, 64), what)
        return f"too many {what} from {client}: slow down"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        rule = METHODS.get(handler_call_details.method)
        streaming = handler.unary_stream is not None or handler.stream_stream is not None
        control = rule is not None and rule.action not in (actions.READ, actions.PUBLIC, actions.WORKER)
        if control and handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                client = peer_ip(context.peer() or "")
                if not self._control.allow(client):
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._refusal(client, "control calls"))
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if streaming:
            return self._counted(handler)
        return handler

    def _counted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Open streams per client, counted while the method runs."""
        limits, opened = self.limits, self._open

        def enter(context: grpc.aio.ServicerContext) -> str | None:
            client = peer_ip(context.peer() or "")
            if opened[client] >= limits.max_streams:
                return None
            opened[client] += 1
            return client

        def leave(client: str) -> None:
            opened[client] -= 1
            if opened[client] <= 0:
                del opened[client]

        async def run(stream: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            client = enter(context)
            if client is None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    self._refusal(peer_ip(context.peer() or ""), "open streams"))
                return
            try:
                async for item in stream:
                    yield item
            finally:
                leave(client)

        async def run_writer(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            client = enter(context)
            if client is None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    self._refusal(peer_ip(context.peer() or ""), "open streams"))
            try:
                return await call()
            finally:
                leave(client)  # type: ignore[arg-type]

        des, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_stream is not None:
            us = handler.unary_stream
            if inspect.isasyncgenfunction(us):
                async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                    async for item in run(us(request, context), context):
                        yield item

                return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)

            async def unary_stream_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
                return await run_writer(lambda: us(request, context), context)

            return grpc.unary_stream_rpc_method_handler(unary_stream_writer, des, ser)
        ss = handler.stream_stream
        if inspect.isasyncgenfunction(ss):
            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                async for item in run(ss(requests, context), context):
                    yield item

            return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)

        async def stream_stream_writer(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            return await run_writer(lambda: ss(requests, context), context)

        return grpc.stream_stream_rpc_method_handler(stream_stream_writer, des, ser)
