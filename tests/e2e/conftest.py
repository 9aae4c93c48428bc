"""Fixtures of the end-to-end tests: a `cluster` of real processes, and `db` (SQLite and a fresh
PostgreSQL database per test, on the server of `tests.pg`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from tests import pg
from tests.e2e.harness import Cluster


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


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None (the coordinator's default SQLite in its data dir), or the URL of a new PostgreSQL
    database created for this test and dropped after it (see `tests.pg` for when that skips)."""
    if request.param == "sqlite":
        yield None
        return
    async with pg.database("gantry_test") as url:
        yield url
