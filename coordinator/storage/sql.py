"""The SQL storage, for SQLite and PostgreSQL alike: one store per concept, all sharing one
writer (group commit) and one engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from coordinator.domain.events import Event
from coordinator.storage import codec, schema
from coordinator.storage.audit_store import SqlAudit
from coordinator.storage.build_store import SqlBuilds
from coordinator.storage.buildset_store import SqlBuildsets
from coordinator.storage.changes import SqlChanges
from coordinator.storage.db import Database
from coordinator.storage.journal_store import SqlJournal
from coordinator.storage.ledger import SqlBookkeeper
from coordinator.storage.log_store import SqlLogs
from coordinator.storage.notification_store import SqlOutbox
from coordinator.storage.retention_store import SqlRetention
from coordinator.storage.scheduler_store import SqlSchedulers
from coordinator.storage.token_store import SqlTokens
from coordinator.storage.worker_store import SqlWorkers
from coordinator.storage.writer import Writer

log = logging.getLogger(__name__)

t_events = schema.events


class StorageError(Exception):
    """The database cannot be opened or used; the message says why."""


def database_url(url: str | None, data_dir: Path) -> str:
    """Normalise a user's database URL to an async driver URL (default: SQLite in data_dir)."""
    if not url:
        return f"sqlite+aiosqlite:///{(data_dir / 'gantry.sqlite').resolve()}"
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql:", "postgres:", "postgresql+psycopg2:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    return url


async def open_storage(url: str, publish: Callable[[list[Event]], None]) -> SqlStorage:
    """Open (and migrate) the database at `url`, ready for use."""
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {}
    if not is_sqlite:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite:

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets status readers run while the writer commits; NORMAL is durable in WAL
            # against process crashes (what "acknowledged" promises), fsync at checkpoints.
            # Before the first table exists, so new databases can give deleted space back
            # (the janitor's incremental vacuum); a no-op on an existing database.
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    try:
        async with engine.begin() as conn:
            await conn.run_sync(schema.migrate)
    except schema.SchemaTooNew as exc:
        await engine.dispose()
        raise StorageError(str(exc)) from None
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await engine.dispose()
        raise StorageError(f"cannot open the database {engine.url!r}: {exc}") from None
    storage = SqlStorage(engine, publish)
    storage.start()
    return storage


class SqlStorage:
    """The stores, by concept; each implements the domain's role ports of its concept."""

    def __init__(self, engine: AsyncEngine, publish: Callable[[list[Event]], None]) -> None:
        self.engine = engine
        self.writer = Writer(engine, publish)
        db = Database(engine, self.writer)
        self.changes = SqlChanges(db)
        self.buildsets = SqlBuildsets(db)
        self.book = SqlBookkeeper(db)
        self.builds = SqlBuilds(db)
        self.logs = SqlLogs(db)
        self.journal = SqlJournal(db)
        self.schedulers = SqlSchedulers(db)
        self.workers = SqlWorkers(db)
        self.events = SqlEventLog(db)
        self.outbox = SqlOutbox(db)
        self.tokens = SqlTokens(db)
        self.audit = SqlAudit(db)
        self.retention = SqlRetention(db)

    def start(self) -> None:
        self.writer.start()

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.engine.dispose()


class SqlEventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        def q(c: sa.Connection) -> list[Event]:
            rows = c.execute(
                sa.select(t_events).where(t_events.c.id > since_id).order_by(t_events.c.id).limit(limit)
            )
            return [codec.event_from_row(r) for r in rows]

        return await self.db.read(q)

    async def last_event_id(self) -> int:
        return await self.db.read(lambda c: int(c.execute(sa.select(sa.func.max(t_events.c.id))).scalar() or 0))

    async def pruned_through(self) -> int:
        """Every event up to this id was deleted by retention (0: none was)."""
        t = schema.event_retention
        return await self.db.read(lambda c: int(c.execute(sa.select(t.c.pruned_through)).scalar() or 0))
