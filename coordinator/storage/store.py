"""What every part of SqlRepository shares: the engine for reads and the writer for writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator.storage.writer import Writer

T = TypeVar("T")


class Store:
    """Base of the storage mixins; SqlRepository sets `engine` and `writer`."""

    engine: AsyncEngine
    writer: Writer

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)
