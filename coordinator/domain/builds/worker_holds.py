"""Pausing and draining workers: an operator's hold (stored, so it survives a restart) or an
agent's own drain on SIGTERM (for its connection only).

Both stop the dispatcher from starting builds on the worker; a drain then tells the agent to
exit once no build runs there. The dispatcher is told first and synchronously, and `pause`
returns only once the starts already under way on that worker are settled, so no build ever
starts on a worker after `pause` returned.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from coordinator.domain import events
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.changes.validation import check_length
from coordinator.domain.errors import NotFound
from coordinator.domain.model import WorkerHold
from coordinator.domain.ports import Clock, WorkerExit, WorkerHoldStore
from coordinator.domain.workers.sessions import WorkerRegistry, WorkerSession

log = logging.getLogger(__name__)

PAUSED, DRAINING, ACTIVE = "paused", "draining", "active"


class WorkerHolds:
    def __init__(self, store: WorkerHoldStore, dispatcher: Dispatcher, workers: WorkerRegistry, clock: Clock) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.workers = workers
        self.clock = clock
        self.exit: WorkerExit | None = None  # the worker stream (app.py sets it)
        self.holds: dict[str, WorkerHold] = {}  # the operators' (stored)
        self._agent_drains: dict[str, tuple[WorkerSession, str]] = {}  # worker -> (its session, why)
        self._told: weakref.WeakSet[WorkerSession] = weakref.WeakSet()  # sessions told to exit
        self._lock = asyncio.Lock()  # one operator change at a time (the stored state stays in order)

    async def start(self) -> None:
        """Load the stored holds (before the dispatcher starts: none of them may get a build)."""
        self.holds = await self.store.load_worker_holds()
        for name, hold in self.holds.items():
            self.dispatcher.held[name] = hold.state

    # -- what operators do
    async def pause(self, name: str, reason: str) -> WorkerHold:
        return await self._hold(name, PAUSED, reason)

    async def drain(self, name: str, reason: str) -> WorkerHold:
        hold = await self._hold(name, DRAINING, reason)
        self.tell_idle_to_exit()
        return hold

    async def resume(self, name: str, reason: str) -> None:
        self._known(name, reason)
        async with self._lock:
            if name in self.holds:
                at = self.clock.now()
                await self.store.set_worker_hold(name, None, [events.worker_state(name, ACTIVE, reason, at)])
                del self.holds[name]
            if name not in self._agent_drains:
                self.dispatcher.release(name)

    def state_of(self, name: str) -> tuple[str, str]:
        """("active" | "paused" | "draining", why) as `gantry workers` shows it."""
        hold = self.holds.get(name)
        if hold is not None:
            return hold.state, hold.reason
        drain = self._agent_drains.get(name)
        if drain is not None and drain[0] is self.workers.sessions.get(name):
            return DRAINING, drain[1]
        return ACTIVE, ""

    async def _hold(self, name: str, state: str, reason: str) -> WorkerHold:
        self._known(name, reason)
        async with self._lock:
            previous = self.dispatcher.held.get(name)
            self.dispatcher.held[name] = state  # at once: no new reservation from here on
            hold = WorkerHold(state, reason, self.clock.now())
            try:
                await self.store.set_worker_hold(name, hold, [events.worker_state(name, state, reason, hold.at)])
            except BaseException:
                if previous is None:
                    self.dispatcher.held.pop(name, None)
                else:
                    self.dispatcher.held[name] = previous
                raise
            self.holds[name] = hold
        await self.dispatcher.hold(name, state)  # returns once the starts under way are settled
        return hold

    def _known(self, name: str, reason: str) -> None:
        if name not in self.workers.decls:
            known = ", ".join(sorted(self.workers.decls)) or "none"
            raise NotFound(f"no worker named {name!r} (configured workers: {known})")
        check_length("reason", reason, 1024)

    # -- what agents and the worker stream tell us
    def agent_draining(self, name: str, reason: str) -> None:
        """The agent drains (SIGTERM): for this connection, no new builds; exit when idle."""
        session = self.workers.sessions.get(name)
        if session is None:
            return
        log.info("worker %s is draining: %s", name, reason)
        self._agent_drains[name] = (session, reason)
        self.dispatcher.held.setdefault(name, DRAINING)
        self.tell_idle_to_exit()

    def workers_changed(self) -> None:
        """A worker connected or went away: an agent's drain ends with its connection (a new
        agent process takes builds unless an operator holds it); a draining one may be idle."""
        for name, (session, _) in list(self._agent_drains.items()):
            if self.workers.sessions.get(name) is not session:
                del self._agent_drains[name]
                if name not in self.holds:
                    self.dispatcher.release(name)
        self.tell_idle_to_exit()

    def tell_idle_to_exit(self) -> None:
        """Tell every draining worker that runs nothing to exit (once per connection)."""
        if self.exit is None:
            return
        for name, state in self.dispatcher.held.items():
            session = self.workers.sessions.get(name)
            if state != DRAINING or session is None or session.closed or session.builds or session in self._told:
                continue
            _, why = self.state_of(name)
            if self.exit.ask_to_exit(name, why or "drained"):
                self._told.add(session)
                log.info("worker %s drained: told it to exit", name)
