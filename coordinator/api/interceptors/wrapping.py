"""Wrap a grpc.aio method handler so a guard runs before the method, whatever its cardinality."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Guard = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


def wrap(
    handler: grpc.RpcMethodHandler, guard: Guard, *,
    deserializer: Callable[[bytes], Any] | None = None,
    stream_guard: Guard | None = None,
) -> grpc.RpcMethodHandler:
    """A handler whose behaviour first awaits `guard(request, context)` (request is None for a
    client stream), then runs the original. `stream_guard` sees each streamed request."""
    des = deserializer or handler.request_deserializer
    ser = handler.response_serializer
    if handler.unary_unary is not None:
        uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await guard(request, context)
            return await uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)
    if handler.unary_stream is not None:
        us = handler.unary_stream

        if inspect.isasyncgenfunction(us):
            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await guard(request, context)
                async for item in us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)

        async def unary_stream_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await guard(request, context)
            return await us(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream_writer, des, ser)

    def checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if stream_guard is None:
            return requests

        async def each() -> AsyncIterator[Any]:
            async for r in requests:
                await stream_guard(r, context)
                yield r

        return each()

    if handler.stream_unary is not None:
        su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            await guard(None, context)
            return await su(checked(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, des, ser)
    ss = handler.stream_stream
    if inspect.isasyncgenfunction(ss):
        async def stream_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await guard(None, context)
            async for item in ss(checked(requests, context), context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)

    async def stream_stream_writer(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        await guard(None, context)
        return await ss(checked(requests, context), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream_writer, des, ser)
