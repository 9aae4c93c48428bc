"""TokenService and AuditService: thin adapters over coordinator/domain/auth/."""

from __future__ import annotations

import grpc

from coordinator.api.gate import current_identity
from coordinator.domain.auth.audit import AuditStore
from coordinator.domain.auth.tokens import ApiToken, Tokens
from protos.gantry.v1 import auth_pb2, auth_pb2_grpc


def token_pb(t: ApiToken) -> auth_pb2.Token:
    return auth_pb2.Token(
        id=t.id, user=t.user, groups=list(t.groups), description=t.description, created_at=t.created_at,
        expires_at=t.expires_at or 0.0, revoked_at=t.revoked_at or 0.0, created_by=t.created_by, last4=t.last4,
    )


def caller() -> str:
    """Who is calling, as the auth interceptor found it ('' without auth)."""
    who = current_identity.get()
    return who.user if who is not None else ""


class TokenServicer(auth_pb2_grpc.TokenServiceServicer):
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def CreateToken(
        self, request: auth_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateTokenResponse:
        secret, record = await self.tokens.create(
            request.user, list(request.groups), description=request.description,
            ttl_seconds=request.ttl_seconds or None, created_by=caller(),
        )
        return auth_pb2.CreateTokenResponse(secret=secret, token=token_pb(record))

    async def ListTokens(
        self, request: auth_pb2.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListTokensResponse:
        return auth_pb2.ListTokensResponse(tokens=[token_pb(t) for t in await self.tokens.list(request.user or None)])

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.Token:
        return token_pb(await self.tokens.revoke(request.id))


class AuditServicer(auth_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def ListAudit(
        self, request: auth_pb2.ListAuditRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListAuditResponse:
        limit = min(max(request.limit or 100, 1), 1000)
        entries = await self.store.list_audit(limit, request.before_id, request.user or None)
        return auth_pb2.ListAuditResponse(entries=[
            auth_pb2.AuditEntry(id=e.id, at=e.at, user=e.user, via=e.via, source=e.source, action=e.action,
                                target=e.target, outcome=e.outcome, detail=e.detail)
            for e in entries
        ])
