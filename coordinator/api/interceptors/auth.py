"""The one authorization check of the gRPC API: every call's identity (token, client certificate,
trusted proxy header) and its action from the METHODS table, before the method runs."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from coordinator.api.gate import Credentials, Gate, bearer_of, current_identity
from coordinator.api.interceptors.methods import METHODS, MethodRule
from coordinator.api.interceptors.wrapping import wrap
from coordinator.domain.auth import actions
from coordinator.domain.auth.identity import Identity
from coordinator.domain.errors import PermissionDenied, Unauthenticated
from coordinator.logsafe import clip

log = logging.getLogger(__name__)
WORKER_MAX_MESSAGE = 16 * 1024 * 1024  # also the server's receive limit unless a caller's is larger


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v.decode("latin-1") if isinstance(v, bytes) else v
    return None


def peer_ip(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' / 'ipv6:[::1]:5000' -> the address."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return ""


def credentials_of(context: grpc.aio.ServicerContext, gate: Gate) -> Credentials:
    auth_ctx = context.auth_context() or {}
    cn = auth_ctx.get("x509_common_name") or []
    # grpc verified the chain already (TLS with a client CA): a certificate here is genuine.
    cert_user = cn[0].decode() if cn else None
    subject = (auth_ctx.get("x509_subject") or [b""])[0].decode()
    cert_groups = organizational_units(subject) if cert_user else ()
    proxy_user = proxy_groups = None
    if gate.auth.proxy_header:
        proxy_user = _metadata(context, gate.auth.proxy_header.lower())
        if gate.auth.proxy_groups_header:
            proxy_groups = _metadata(context, gate.auth.proxy_groups_header.lower())
    return Credentials(
        peer_ip=peer_ip(context.peer() or ""),
        bearer=bearer_of(_metadata(context, "authorization")),
        cert_user=cert_user, cert_groups=cert_groups,
        proxy_user=proxy_user or None,
        proxy_groups=tuple(g.strip() for g in (proxy_groups or "").split(",") if g.strip()),
    )


def organizational_units(subject: str) -> tuple[str, ...]:
    """The OU values of an RFC 2253 subject such as 'CN=alice,OU=dev,OU=ops'."""
    parts = re.split(r"(?<!\\),", subject)
    return tuple(p.split("=", 1)[1].replace("\\,", ",").strip() for p in parts
                 if p.strip().upper().startswith("OU="))


def builders_of(request: Any, rule: MethodRule) -> list[str]:
    names: list[str] = []
    for field in rule.builder_fields:
        value = getattr(request, field, "")
        names += [value] if isinstance(value, str) else list(value)
    return [n for n in names if n]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        rule = METHODS.get(method)
        gate = self.gate
        raised = gate.auth.largest_message() > WORKER_MAX_MESSAGE

        async def guard(request: Any, context: grpc.aio.ServicerContext) -> None:
            if rule is None:  # a method nobody classified: refuse rather than guess
                log.error("no authorization rule for %s: refused", method)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} has no authorization rule")
                return
            if rule.action == actions.WORKER:
                return  # the worker proves itself in its Hello; its stream keeps the server's limit
            if rule.action == actions.PUBLIC:
                # No identity needed (a stale token must not break a health probe): the
                # anonymous size limit.
                await sized(request, context, None)
                return
            try:
                who = await gate.identify(credentials_of(context, gate))
            except Unauthenticated as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
                return
            current_identity.set(who)  # also for the audit log of a refusal
            try:
                gate.authorize(who, rule.action, builders_of(request, rule) if request is not None else [])
            except Unauthenticated as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            except PermissionDenied as exc:
                log.info("refused %s to %s: %s", method, clip(who.describe()), exc)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            await sized(request, context, who)

        async def sized(request: Any, context: grpc.aio.ServicerContext, who: Identity | None) -> None:
            """Each caller's own message-size limit (the server's receive limit is the largest of
            them); a client stream's messages are checked one by one as they come."""
            if request is None:
                return
            limit = gate.max_message(who)
            size = request.ByteSize()
            if size > limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, too_large(size, limit, who))

        async def each_sized(request: Any, context: grpc.aio.ServicerContext) -> None:
            if rule is None:
                return
            if rule.action == actions.WORKER:
                # Worker streams keep WORKER_MAX_MESSAGE even when a role's limit raised the
                # server's (measured only then: a log chunk is not sized twice for nothing).
                if raised and (size := request.ByteSize()) > WORKER_MAX_MESSAGE:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"the message is {size} bytes; a worker may send at most {WORKER_MAX_MESSAGE}")
                return
            await sized(request, context, current_identity.get() if rule.action != actions.PUBLIC else None)

        return wrap(handler, guard, stream_guard=each_sized)


def too_large(size: int, limit: int, who: Identity | None) -> str:
    whom = "an anonymous caller" if who is None or who.anonymous else who.user
    setting = "max_message_anonymous" if who is None or who.anonymous else "max_message"
    return (f"the request is {size} bytes; {whom} may send at most {limit} bytes "
            f"(Auth({setting}=..., max_message_roles=...) in the configuration)")
