"""Records every control call (force, stop, rebuild, cancel, scheduler, token admin...) in the
audit log with who, from where and how it ended — refusals included. Sits outside the auth
interceptor so it sees its refusals, inside the limits one so a flood is not recorded."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from coordinator.api.gate import current_identity
from coordinator.api.interceptors.auth import peer_ip
from coordinator.api.interceptors.methods import METHODS
from coordinator.domain.auth.audit import AUDITED, AuditEntry, AuditStore
from coordinator.logsafe import clip

log = logging.getLogger(__name__)
# Request fields worth recording (never properties: they may carry anything).
TARGET_FIELDS = ("builder", "number", "request_id", "name", "enabled", "id", "user", "groups", "reason")


def describe_target(request: Any) -> str:
    parts = []
    for field in TARGET_FIELDS:
        if request is None or not hasattr(request, "DESCRIPTOR") or field not in request.DESCRIPTOR.fields_by_name:
            continue
        value = getattr(request, field)
        if value in ("", 0) and not isinstance(value, bool):
            continue
        if not isinstance(value, str | int | float | bool):
            value = ",".join(map(str, value))
            if not value:
                continue
        parts.append(f"{field}={clip(value, 100)}")
    return " ".join(parts)


class AuditInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, store: AuditStore, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        rule = METHODS.get(handler_call_details.method)
        if handler is None or handler.unary_unary is None:
            return handler
        if rule is None or not rule.audited or rule.action not in AUDITED:
            return handler
        inner, action = handler.unary_unary, rule.action

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            outcome, detail = "ok", ""
            try:
                return await inner(request, context)
            except BaseException:
                code = context.code()
                outcome = code.name if isinstance(code, grpc.StatusCode) else "error"
                detail = context.details() or ""
                raise
            finally:
                who = current_identity.get()
                entry = AuditEntry(
                    at=self.now(), user=who.user if who else "", via=who.via if who else "",
                    source=peer_ip(context.peer() or ""), action=action, target=describe_target(request),
                    outcome=outcome, detail=detail,
                )
                try:
                    await self.store.add_audit(entry)
                except Exception:  # the action happened; a lost audit line is logged, not raised
                    log.exception("could not record %s by %s in the audit log", action, clip(entry.user))

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
