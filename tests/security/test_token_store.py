"""The TokenStore and AuditStore contracts on memory, SQLite and PostgreSQL, and the Tokens
rules on top of them (hashed at rest, shown once, expiry, revocation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from coordinator.domain.auth.audit import AuditEntry, AuditStore
from coordinator.domain.auth.tokens import InvalidToken, NewToken, Tokens, TokenStore
from coordinator.domain.errors import InvalidArgument, NotFound
from coordinator.storage.memory_auth import MemoryAudit, MemoryTokens
from coordinator.storage.sql import SqlStorage, database_url, open_storage
from tests import pg


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenStore]:
    if request.param == "memory":
        yield MemoryTokens()
        return
    if request.param == "sqlite":
        db = await open_storage(database_url(None, tmp_path), lambda _e: None)
        try:
            yield db.tokens
        finally:
            await db.aclose()
        return
    await pg.require()
    async with pg.database("gantry_tokens") as url:
        db = await open_storage(database_url(url, tmp_path), lambda _e: None)
        try:
            yield db.tokens
        finally:
            await db.aclose()


def new(digest: str, user: str = "alice", expires_at: float | None = None) -> NewToken:
    return NewToken(user=user, groups=("dev", "ops"), description="ci", created_at=100.0,
                    expires_at=expires_at, created_by="admin", last4="abcd", digest=digest)


async def test_a_token_is_found_by_digest_listed_and_revoked(store: TokenStore) -> None:
    a = await store.add_token(new("a" * 64))
    b = await store.add_token(new("b" * 64, user="bob", expires_at=200.0))
    assert a.id != b.id
    assert (await store.token_by_digest("a" * 64)) == a
    assert a.groups == ("dev", "ops") and a.created_by == "admin" and a.last4 == "abcd"
    assert await store.token_by_digest("c" * 64) is None
    assert [t.id for t in await store.list_tokens()] == [a.id, b.id]
    assert [t.user for t in await store.list_tokens("bob")] == ["bob"]
    revoked = await store.revoke_token(a.id, 150.0)
    assert revoked is not None and revoked.revoked_at == 150.0
    again = await store.revoke_token(a.id, 160.0)  # idempotent: the first time stays
    assert again is not None and again.revoked_at == 150.0
    assert await store.revoke_token(9999, 1.0) is None
    assert (await store.token_by_digest("a" * 64)).revoked_at == 150.0  # type: ignore[union-attr]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_tokens_identify_until_revoked_or_expired(store: TokenStore) -> None:
    clock = Clock()
    tokens = Tokens(store, clock)
    secret, record = await tokens.create("alice", ["developers"], ttl_seconds=60, created_by="root")
    assert secret.startswith("gty_") and record.last4 == secret[-4:] and record.expires_at == 1060.0
    who = await tokens.identify(secret)
    assert who.user == "alice" and who.groups == frozenset({"developers"}) and who.via == "token"
    with pytest.raises(InvalidToken):
        await tokens.identify(secret + "x")
    with pytest.raises(InvalidToken):
        await tokens.identify("not-a-token")
    clock.t = 1061.0
    with pytest.raises(InvalidToken):
        await tokens.identify(secret)  # expired, even though cached as valid a moment ago

    forever, rec = await tokens.create("bob")
    assert (await tokens.identify(forever)).user == "bob"
    await tokens.revoke(rec.id)
    with pytest.raises(InvalidToken):
        await tokens.identify(forever)  # at once: revoking empties the cache
    with pytest.raises(NotFound):
        await tokens.revoke(424242)
    with pytest.raises(InvalidArgument):
        await tokens.create("")


async def test_the_database_holds_no_token_in_clear(tmp_path: Path) -> None:
    db: SqlStorage = await open_storage(database_url(None, tmp_path), lambda _e: None)
    try:
        secret, _ = await Tokens(db.tokens).create("alice")
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT * FROM api_tokens"))).all()
        assert rows and all(secret not in str(tuple(r)) and secret[4:] not in str(tuple(r)) for r in rows)
    finally:
        await db.aclose()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())  # noqa: ASYNC240
    assert secret.encode() not in raw and secret[4:].encode() not in raw


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def audit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditStore]:
    if request.param == "memory":
        yield MemoryAudit()
        return
    if request.param == "sqlite":
        db = await open_storage(database_url(None, tmp_path), lambda _e: None)
        try:
            yield db.audit
        finally:
            await db.aclose()
        return
    await pg.require()
    async with pg.database("gantry_audit") as url:
        db = await open_storage(database_url(url, tmp_path), lambda _e: None)
        try:
            yield db.audit
        finally:
            await db.aclose()


async def test_the_audit_log_pages_newest_first_and_filters_by_user(audit: AuditStore) -> None:
    for i in range(5):
        await audit.add_audit(AuditEntry(at=float(i), user="ann" if i % 2 else "bob", via="token",
                                         source="127.0.0.1", action="force", target=f"builder=b{i}",
                                         outcome="ok", detail="x" * 2000))
    newest = await audit.list_audit(2)
    assert [e.target for e in newest] == ["builder=b4", "builder=b3"]
    assert newest[0].id > newest[1].id and len(newest[0].detail) == 500
    older = await audit.list_audit(10, before_id=newest[1].id)
    assert [e.target for e in older] == ["builder=b2", "builder=b1", "builder=b0"]
    assert [e.target for e in await audit.list_audit(10, user="ann")] == ["builder=b3", "builder=b1"]
