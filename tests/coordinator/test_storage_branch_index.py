"""The builder page's branch filter (`list_builds` with a branch) is an index seek on SQLite and
PostgreSQL, also for a branch without builds (it once scanned the builder's whole history), and
migration 13 lists the branches of the builds stored before it."""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.storage import schema
from coordinator.storage.build_store import list_builds_query
from coordinator.storage.sql import SqlStorage
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.test_storage_contract import Backend, _open, sql_only

backend = contract.backend  # the contract tests' fixture: a SQLite file, or a database on the test server

HISTORY = 3000  # enough builds that PostgreSQL's planner, given statistics, prefers its indexes


async def _seed(db: SqlStorage, builder: str) -> None:
    """A long history of `builder`, every build on main (rows written directly: fast)."""
    bs, br, b = schema.buildsets, schema.buildrequests, schema.builds
    async with db.engine.begin() as c:
        await c.execute(bs.insert(), [
            {"id": i, "reason": "r", "scheduler": "s", "submitted_at": 0.0, "complete": True,
             "sourcestamps_json": '[{"branch":"main"}]', "properties_json": "[]", "change_ids_json": "[]"}
            for i in range(1, HISTORY + 1)])
        await c.execute(br.insert(), [
            {"id": i, "buildset_id": i, "builder": builder, "priority": 0, "submitted_at": 0.0, "complete": True}
            for i in range(1, HISTORY + 1)])
        await c.execute(b.insert(), [
            {"id": i, "builder": builder, "number": i, "worker": "w", "buildrequest_id": i, "buildset_id": i,
             "started_at": 0.0} for i in range(1, HISTORY + 1)])
        await c.run_sync(_backfill)
        if c.dialect.name == "postgresql":
            await c.exec_driver_sql("ANALYZE")


def _backfill(conn: sa.Connection) -> None:
    """What migration 13 does to a database that has builds: list their branches."""
    conn.execute(schema.build_branches.delete())
    schema.build_branches.drop(conn)
    schema._v13_build_branches(conn)


async def _plan(db: SqlStorage, branch: str) -> str:
    stmt = list_builds_query("app", 50, branch=branch)
    async with db.engine.connect() as c:
        sql = str(stmt.compile(c.sync_connection, compile_kwargs={"literal_binds": True}))
        if c.dialect.name == "sqlite":
            rows = await c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            return "\n".join(str(r[-1]) for r in rows)
        rows = await c.exec_driver_sql("EXPLAIN " + sql)
        return "\n".join(str(r[0]) for r in rows)


@sql_only
async def test_the_branch_filter_seeks_also_for_a_branch_without_builds(backend: Backend) -> None:
    store = await _open(await backend.fresh_url())
    try:
        await _seed(store.sql, "app")
        for branch in ("no-such-branch", "main"):
            plan = await _plan(store.sql, branch)
            if backend.kind == "sqlite":
                # A covering-index seek on (builder, branch), read newest first: no sort, no scan.
                assert "SEARCH build_branches USING COVERING INDEX" in plan, plan
                assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
            else:
                assert "build_branches" in plan and "Seq Scan" not in plan, plan
                if branch == "no-such-branch":  # driven by the branch index, not the builder's history
                    assert "using build_branches" in plan and "builds_builder_number" not in plan, plan
        # The filter still answers what it did before (the contract tests check the details).
        got = await store.db.builds.list_builds("app", 3, branch="main")
        assert [b.number for b in got] == [HISTORY, HISTORY - 1, HISTORY - 2]
        assert await store.db.builds.list_builds("app", 3, branch="no-such-branch") == []
    finally:
        await store.db.aclose()


@sql_only
async def test_migration_13_lists_the_branches_of_stored_builds(backend: Backend) -> None:
    store = await _open(await backend.fresh_url())
    try:
        bs, br, b = schema.buildsets, schema.buildrequests, schema.builds
        async with store.sql.engine.begin() as c:
            await c.execute(bs.insert(), [
                {"id": 1, "reason": "r", "scheduler": "s", "submitted_at": 0.0, "complete": True,
                 "sourcestamps_json": '[{"branch":"main","codebase":"a"},{"branch":"dev","codebase":"b"}]',
                 "properties_json": "[]", "change_ids_json": "[]"},
                {"id": 2, "reason": "r", "scheduler": "s", "submitted_at": 0.0, "complete": True,
                 "sourcestamps_json": '[{"branch":"","codebase":""}]', "properties_json": "[]",
                 "change_ids_json": "[]"},
            ])
            await c.execute(br.insert(), [
                {"id": i, "buildset_id": i, "builder": "app", "priority": 0, "submitted_at": 0.0, "complete": True}
                for i in (1, 2)])
            await c.execute(b.insert(), [
                {"id": i, "builder": "app", "number": i, "worker": "w", "buildrequest_id": i, "buildset_id": i,
                 "started_at": 0.0} for i in (1, 2)])
            await c.run_sync(_backfill)
            rows = (await c.execute(sa.select(schema.build_branches).order_by("build_id", "branch"))).all()
        assert [tuple(r) for r in rows] == [("app", "dev", 1), ("app", "main", 1)]
        assert [x.number for x in await store.db.builds.list_builds("app", 5, branch="dev")] == [1]
    finally:
        await store.db.aclose()
