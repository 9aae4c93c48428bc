"""Domain errors -> gRPC status codes, in one table, applied by one interceptor."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from coordinator.domain import errors

log = logging.getLogger(__name__)

STATUS_FOR: dict[type[errors.GantryError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(exc: errors.GantryError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns expected domain errors into status codes with their message; logs the unexpected."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner_uu(request, context)
                except errors.GantryError as exc:
                    await context.abort(status_for(exc), str(exc))
                except NotImplementedError:  # a library servicer's unimplemented method (Health/List)
                    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this method is not implemented")

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None and not inspect.isasyncgenfunction(handler.unary_stream):
            inner_uw = handler.unary_stream  # writes with context.write (the health service's Watch)

            async def unary_stream_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner_uw(request, context)
                except errors.GantryError as exc:
                    await context.abort(status_for(exc), str(exc))

            return grpc.unary_stream_rpc_method_handler(
                unary_stream_writer, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    async for item in inner_us(request, context):
                        yield item
                except errors.GantryError as exc:
                    await context.abort(status_for(exc), str(exc))

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # the worker stream handles its own errors
