"""What the agent's process tells its connection, and back: drain (SIGTERM) and exit.

Draining: the agent tells the coordinator (a `Draining` message, repeated after every
reconnect) so that no new build starts on it; the coordinator answers `Shutdown` once no build
runs there, and the agent exits. An agent that is not connected when it is asked to drain has
nothing the coordinator could finish: it exits at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class AgentControl:
    def __init__(self) -> None:
        self.drain_reason = ""  # set once the agent drains
        self.shutdown = asyncio.Event()  # the agent should exit (drained, or nothing to drain)
        self.shutdown_reason = ""
        self._announce: Callable[[str], None] | None = None  # the connected session's
        self._leave: Callable[[str], Awaitable[None]] | None = None

    def drain(self, reason: str) -> None:
        self.drain_reason = reason
        if self._announce is None:
            self.exit(f"{reason}; not connected, nothing to finish")
        else:
            self._announce(reason)

    def exit(self, reason: str) -> None:
        self.shutdown_reason = reason
        self.shutdown.set()

    async def leave(self, reason: str) -> None:
        """Stopping now: tell the connected coordinator (if any) not to wait for our commands —
        they are killed — so their builds are retried at once rather than after the grace
        period. Returns once the message is written; the caller bounds the wait."""
        if self._leave is not None:
            await self._leave(reason)

    def attach(self, announce: Callable[[str], None], leave: Callable[[str], Awaitable[None]]) -> None:
        """A session is connected: it tells the coordinator that we drain (now, and later)."""
        self._announce = announce
        self._leave = leave
        if self.drain_reason:
            announce(self.drain_reason)

    def detach(self) -> None:
        self._announce = None
        self._leave = None
