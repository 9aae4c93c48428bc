"""API tokens and the audit log in memory, with the SQL stores' semantics (the reference for the
contract tests). Kept beside memory.py rather than in it: it shares nothing with the build tables."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from coordinator.domain.auth.audit import MAX_TEXT, AuditEntry
from coordinator.domain.auth.tokens import ApiToken, NewToken


class MemoryTokens:
    def __init__(self) -> None:
        self._rows: dict[int, ApiToken] = {}
        self._by_digest: dict[str, int] = {}

    async def add_token(self, token: NewToken) -> ApiToken:
        await asyncio.sleep(0)
        if token.digest in self._by_digest:
            raise ValueError("duplicate token digest")
        record = ApiToken(
            id=len(self._rows) + 1, user=token.user, groups=tuple(token.groups), description=token.description,
            created_at=token.created_at, expires_at=token.expires_at, created_by=token.created_by,
            last4=token.last4,
        )
        self._rows[record.id] = record
        self._by_digest[token.digest] = record.id
        return record

    async def token_by_digest(self, digest: str) -> ApiToken | None:
        await asyncio.sleep(0)
        token_id = self._by_digest.get(digest)
        return self._rows[token_id] if token_id is not None else None

    async def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        await asyncio.sleep(0)
        return [r for _, r in sorted(self._rows.items()) if user is None or r.user == user]

    async def revoke_token(self, token_id: int, at: float) -> ApiToken | None:
        await asyncio.sleep(0)
        record = self._rows.get(token_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = self._rows[token_id] = replace(record, revoked_at=at)
        return record


class MemoryAudit:
    def __init__(self) -> None:
        self._rows: list[AuditEntry] = []

    async def add_audit(self, entry: AuditEntry) -> None:
        await asyncio.sleep(0)
        self._rows.append(replace(entry, id=len(self._rows) + 1, target=entry.target[:MAX_TEXT],
                                  detail=entry.detail[:MAX_TEXT]))

    async def list_audit(self, limit: int, before_id: int = 0, user: str | None = None) -> list[AuditEntry]:
        await asyncio.sleep(0)
        rows = [r for r in reversed(self._rows)
                if (before_id <= 0 or r.id < before_id) and (user is None or r.user == user)]
        return rows[:limit]
