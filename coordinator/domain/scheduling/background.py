"""Work an object starts on the side and does not await (a scheduler's timed submission, a
Dependent's follow-up of a finished buildset): each failure is logged, and closing waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any


class Background:
    """One owner's background tasks; `log` is the owner's logger, so a failure names its source."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._log.error("background work failed: %s", t.exception())

        task.add_done_callback(done)

    @property
    def pending(self) -> list[asyncio.Future[Any]]:
        """The tasks not finished yet."""
        return list(self._tasks)

    async def wait(self) -> None:
        """Wait for every task started so far (their failures are logged, not raised)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
