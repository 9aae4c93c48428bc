"""What every SQL store shares: the engine for reads and the one writer for writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator.storage.writer import Tx, Writer

T = TypeVar("T")


class Database:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self.engine = engine
        self.writer = writer

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in the writer's next group commit; returns once it is committed."""
        return await self.writer.submit(fn)
