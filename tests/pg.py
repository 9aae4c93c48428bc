"""The one PostgreSQL server of the tests, and the databases they make on it.

$GANTRY_TEST_PG names the server by the URL of its maintenance database (default
postgresql://postgres@127.0.0.1:5432/postgres). The tests connect there only to CREATE and DROP
databases of their own, with unique names, so they need nothing prepared on the server.

A server that cannot be used (not running, auth refused, asyncpg missing) skips the PostgreSQL
cases, saying why; with GANTRY_REQUIRE_PG=1 (CI sets it) it fails them instead, so a green run
means they ran.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("GANTRY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRED = os.environ.get("GANTRY_REQUIRE_PG", "") not in ("", "0")
CONNECT_TIMEOUT = 10.0


def url_of(name: str) -> str:
    """The URL of database `name` on the test server (same host, port, user)."""
    return urlunsplit(urlsplit(PG_URL)._replace(path="/" + name))


async def admin(sql: str) -> None:
    """Run one statement on the maintenance database (CREATE/DROP DATABASE cannot run in a
    transaction, so each is its own connection's only statement)."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=CONNECT_TIMEOUT)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def why_unavailable() -> str | None:
    """None if the server answers on its maintenance database, else why not."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed"
    try:
        await admin("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - unreachable, auth refused, no such database, ...
        return f"PostgreSQL at {PG_URL} is not usable: {exc!r}"
    return None


def unavailable(why: str) -> NoReturn:
    """Skip, or fail when GANTRY_REQUIRE_PG is set."""
    if REQUIRED:
        pytest.fail(f"{why} (GANTRY_REQUIRE_PG is set: PostgreSQL cases must run)", pytrace=False)
    pytest.skip(why)


async def require() -> None:
    """Return when the server is usable; otherwise skip or fail the calling test."""
    why = await why_unavailable()
    if why:
        unavailable(why)


def require_sync() -> None:
    """`require` for synchronous fixtures (no event loop running)."""
    why = asyncio.run(why_unavailable())
    if why:
        unavailable(why)


async def create_database(prefix: str) -> str:
    """A new empty database named `prefix` + a unique suffix; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    await admin(f'CREATE DATABASE "{name}"')
    return name


async def drop_database(name: str) -> None:
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def database(prefix: str) -> AsyncIterator[str]:
    """A fresh database for the block (skip or fail first if there is no server); yields its
    URL and drops it afterwards."""
    await require()
    name = await create_database(prefix)
    try:
        yield url_of(name)
    finally:
        await drop_database(name)
