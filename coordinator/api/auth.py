"""Token authentication of change submissions: an optional bearer token that SubmitChanges
requires (`gantry coordinator start --change-token-file FILE`), checked by one interceptor."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

SUBMIT_CHANGES = "/gantry.v1.ChangeService/SubmitChanges"


def change_token_refusal(sent: str | bytes | None, expected: bytes, where: str) -> str | None:
    """Why a submission that sent `sent` (its `authorization` value, None: absent) is refused,
    or None when it carries the token; the gRPC interceptor and the HTTP middleware share it."""
    if sent is None:
        return (f"this coordinator requires a token to submit changes: send {where} "
                "`authorization: Bearer TOKEN` (gantry hook install --token-file FILE)")
    if hmac.compare_digest(sent.encode() if isinstance(sent, str) else sent, expected):
        return None
    return "the token sent to submit changes is not valid (check the token file)"


class ChangeTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses SubmitChanges with UNAUTHENTICATED unless it carries `authorization: Bearer TOKEN`."""

    def __init__(self, token: str, methods: frozenset[str] = frozenset({SUBMIT_CHANGES})) -> None:
        self._expected = f"Bearer {token}".encode()
        self._methods = methods

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method not in self._methods:
            return handler
        sent = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"), None
        )
        message = change_token_refusal(sent, self._expected, "the metadata")
        if message is None:
            return handler

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(
            refuse, handler.request_deserializer, handler.response_serializer
        )
