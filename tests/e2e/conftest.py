"""Fixtures of the end-to-end tests: a `cluster` of real processes, and `db` (SQLite and, when
reachable, a fresh PostgreSQL database per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.harness import Cluster

# Where a PostgreSQL server for the tests lives; its database name is replaced per test.
PG_URL = os.environ.get("GANTRY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so `cluster` knows whether to print the logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        await c.aclose()
        failed = any(
            getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            print("\n" + c.logs())


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None (the coordinator's default SQLite in its data dir), or the URL of a new PostgreSQL
    database created for this test and dropped after it; skipped when no server answers."""
    if request.param == "sqlite":
        yield None
        return
    asyncpg = pytest.importorskip("asyncpg")
    admin_url = PG_URL
    try:
        conn = await asyncpg.connect(admin_url, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means "not here"
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {exc}")
    name = f"gantry_test_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield _with_database(admin_url, name)
    finally:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
