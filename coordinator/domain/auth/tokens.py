"""API tokens: random secrets shown once at creation, stored only as a SHA-256 hash (a token is
256 random bits, so a fast hash is enough: there is nothing to brute-force), optionally expiring,
revocable. Verification is one lookup by hash, cached briefly so a busy client costs no database
round trip per call; revoking through this object empties the cache at once."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from coordinator.domain.auth.identity import Identity
from coordinator.domain.errors import InvalidArgument, NotFound

PREFIX = "gty_"
CACHE_SECONDS = 5.0
MAX_NAME = 200


@dataclass(frozen=True)
class ApiToken:
    id: int
    user: str
    groups: tuple[str, ...]
    description: str
    created_at: float
    expires_at: float | None  # None: never
    revoked_at: float | None = None
    created_by: str = ""
    last4: str = ""  # the token's last 4 characters, to tell tokens apart in a list

    def valid_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class NewToken:
    user: str
    groups: tuple[str, ...]
    description: str
    created_at: float
    expires_at: float | None
    created_by: str
    last4: str
    digest: str = field(repr=False)


class TokenStore(Protocol):
    async def add_token(self, token: NewToken) -> ApiToken: ...

    async def token_by_digest(self, digest: str) -> ApiToken | None: ...

    async def list_tokens(self, user: str | None = None) -> list[ApiToken]: ...

    async def revoke_token(self, token_id: int, at: float) -> ApiToken | None:
        """Mark revoked (idempotent); None when there is no such token."""
        ...


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvalidToken(Exception):
    """The presented token is unknown, revoked or expired (which one is not said)."""


class Tokens:
    def __init__(self, store: TokenStore, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.now = now
        self._cache: dict[str, tuple[float, ApiToken | None]] = {}

    async def create(
        self, user: str, groups: Sequence[str] = (), *, description: str = "",
        ttl_seconds: float | None = None, created_by: str = "",
    ) -> tuple[str, ApiToken]:
        """Returns (the secret, shown once; the stored record)."""
        if not user or len(user) > MAX_NAME or any(not g or len(g) > MAX_NAME for g in groups):
            raise InvalidArgument("a token needs a user name (and group names) of 1 to 200 characters")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise InvalidArgument("a token's lifetime must be positive")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        record = await self.store.add_token(NewToken(
            user=user, groups=tuple(groups), description=description[:MAX_NAME], created_at=now,
            expires_at=now + ttl_seconds if ttl_seconds is not None else None,
            created_by=created_by, last4=secret[-4:], digest=digest_of(secret),
        ))
        return secret, record

    async def identify(self, token: str) -> Identity:
        """The identity a token stands for; raises InvalidToken."""
        if not token.startswith(PREFIX) or len(token) > 200:
            raise InvalidToken()
        digest = digest_of(token)
        now = self.now()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            record = cached[1]
        else:
            record = await self.store.token_by_digest(digest)
            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: a flood of bogus tokens cannot grow it
            self._cache[digest] = (now, record)
        if record is None or not record.valid_at(now):
            raise InvalidToken()
        return Identity(record.user, frozenset(record.groups), "token")

    async def list(self, user: str | None = None) -> list[ApiToken]:
        return await self.store.list_tokens(user)

    async def revoke(self, token_id: int) -> ApiToken:
        record = await self.store.revoke_token(token_id, self.now())
        if record is None:
            raise NotFound(f"no token {token_id}")
        self._cache.clear()
        return record
