"""API tokens in SQL (the TokenStore port of coordinator/domain/auth/tokens.py)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from coordinator.domain.auth.tokens import ApiToken, NewToken
from coordinator.storage import schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t = schema.api_tokens


def _record(r: Any) -> ApiToken:
    return ApiToken(
        id=r.id, user=r.user, groups=tuple(json.loads(r.groups_json)), description=r.description,
        created_at=r.created_at, expires_at=r.expires_at, revoked_at=r.revoked_at,
        created_by=r.created_by, last4=r.last4,
    )


class SqlTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_token(self, token: NewToken) -> ApiToken:
        def op(tx: Tx) -> ApiToken:
            res = tx.conn.execute(t.insert().values(
                digest=token.digest, user=token.user, groups_json=json.dumps(list(token.groups)),
                description=token.description, created_at=token.created_at, expires_at=token.expires_at,
                created_by=token.created_by, last4=token.last4,
            ))
            new_id = res.inserted_primary_key[0]  # type: ignore[index]
            return _record(tx.conn.execute(sa.select(t).where(t.c.id == new_id)).one())

        return await self.db.write(op)

    async def token_by_digest(self, digest: str) -> ApiToken | None:
        def q(c: sa.Connection) -> ApiToken | None:
            row = c.execute(sa.select(t).where(t.c.digest == digest)).first()
            return _record(row) if row is not None else None

        return await self.db.read(q)

    async def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        def q(c: sa.Connection) -> list[ApiToken]:
            query = sa.select(t).order_by(t.c.id)
            if user is not None:
                query = query.where(t.c.user == user)
            return [_record(r) for r in c.execute(query)]

        return await self.db.read(q)

    async def revoke_token(self, token_id: int, at: float) -> ApiToken | None:
        def op(tx: Tx) -> ApiToken | None:
            tx.conn.execute(t.update().where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=at))
            row = tx.conn.execute(sa.select(t).where(t.c.id == token_id)).first()
            return _record(row) if row is not None else None

        return await self.db.write(op)
