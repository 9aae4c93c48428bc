"""The SQL implementation of the domain's Repository, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from coordinator.domain.events import Event
from coordinator.domain.model import Artifact, Build, Buildset, SchedulerRecord, Step
from coordinator.storage import artifacts, codec, dependent_store, scheduler_store, schema
from coordinator.storage.build_store import BuildStore
from coordinator.storage.buildset_store import BuildsetStore
from coordinator.storage.changes import ChangeSourceStates, ChangeStore
from coordinator.storage.dispatch_store import DispatchStore
from coordinator.storage.notification_store import NotificationStore
from coordinator.storage.worker_store import WorkerStore
from coordinator.storage.writer import Tx, Writer

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


async def open_repository(url: str, publish: Callable[[list[Event]], None]) -> SqlRepository:
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
    repo = SqlRepository(engine, publish)
    repo.start()
    return repo


class SqlRepository(
    ChangeStore, ChangeSourceStates, BuildsetStore, DispatchStore, BuildStore, WorkerStore, NotificationStore
):
    """The Repository: each concept's storage is a mixin in its own module; what is left here is
    the lifecycle, the event log and thin delegations to function modules."""

    def __init__(self, engine: AsyncEngine, publish: Callable[[list[Event]], None]) -> None:
        self.engine = engine
        self.writer = Writer(engine, publish)

    def start(self) -> None:
        self.writer.start()

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.engine.dispose()

    # ---------------------------------------------------------------- scheduler state

    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]:
        return await self._read(lambda c: scheduler_store.load(c, names))

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None:
        await self.writer.submit(lambda tx: scheduler_store.set_enabled(tx.conn, name, enabled))

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        return await self.writer.submit(lambda tx: dependent_store.backlog(tx.conn, scheduler, upstream))

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        def op(tx: Tx) -> dict[str, int]:
            dropped = scheduler_store.drop_unconfigured(tx.conn, configured)
            for name in dependent_store.forget(tx.conn, dependents):
                dropped.setdefault(name, 0)
            return dropped

        return await self.writer.submit(op)

    # ---------------------------------------------------------------- events

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        def q(c: sa.Connection) -> list[Event]:
            rows = c.execute(
                sa.select(t_events).where(t_events.c.id > since_id).order_by(t_events.c.id).limit(limit)
            )
            return [codec.event_from_row(r) for r in rows]

        return await self._read(q)

    async def last_event_id(self) -> int:
        return await self._read(lambda c: int(c.execute(sa.select(sa.func.max(t_events.c.id))).scalar() or 0))

    async def wait_idle(self) -> None:
        """Wait until everything queued so far is committed (tests and shutdown)."""
        await self.writer.submit(lambda tx: None)

    # ---------------------------------------------------------------- artifacts

    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        return await self.writer.submit(artifacts.add(build, step, name, size, sha256, at))

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        return await self._read(lambda c: artifacts.list_for_build(c, builder, number))

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None:
        return await self._read(lambda c: artifacts.get(c, builder, number, name))

