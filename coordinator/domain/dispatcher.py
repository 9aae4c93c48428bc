"""The dispatcher: gives each pending build request to a free worker of its builder.

Pending requests sit in one heap per builder ordered by (priority desc, submission, id), so a
dispatch pass looks only at the head of each heap — never scans every pending request. A request
is claimed in the database (one conditional UPDATE) before its build starts, so two coordinators
can never start the same request.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Sequence
from typing import Any

from coordinator.domain.build_runner import BuildRunner
from coordinator.domain.builders import Builder
from coordinator.domain.logs import LogWatchers
from coordinator.domain.model import BuildRequest, Property, SourceStamp
from coordinator.domain.ports import Clock, Repository
from coordinator.domain.results import Result
from coordinator.domain.sessions import WorkerRegistry, WorkerSession
from coordinator.domain.trigger_port import TriggerPort

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        repo: Repository,
        workers: WorkerRegistry,
        clock: Clock,
        watchers: LogWatchers,
        coordinator_id: str,
    ) -> None:
        self.repo = repo
        self.workers = workers
        self.clock = clock
        self.watchers = watchers
        self.coordinator_id = coordinator_id
        self.builders: dict[str, Builder] = {}
        # What Trigger steps submit through (the service sets it); None: triggering fails.
        self.trigger_port: TriggerPort | None = None
        self._pending: dict[str, list[tuple[int, float, int, BuildRequest]]] = {}
        self.running: dict[tuple[str, int], BuildRunner] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        workers.on_change = self.kick

    def configure(self, builders: Sequence[Builder]) -> None:
        self.builders = {b.name: b for b in builders}
        self.kick()

    async def start(self) -> None:
        for req in await self.repo.unclaimed_requests():
            self.add_request(req)
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="dispatcher")

    def add_request(self, req: BuildRequest) -> None:
        heapq.heappush(
            self._pending.setdefault(req.builder, []), (-req.priority, req.submitted_at, req.id, req)
        )
        self.kick()

    def pending_count(self, builder: str) -> int:
        return len(self._pending.get(builder, ()))

    def kick(self) -> None:
        self._kick.set()

    def find_running(self, builder: str, number: int) -> BuildRunner | None:
        return self.running.get((builder, number))

    async def aclose(self) -> None:
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._dispatch_pass()
            except Exception:
                log.exception("dispatch pass failed; will retry on the next event")

    async def _dispatch_pass(self) -> None:
        for builder_name in list(self._pending):
            heap = self._pending[builder_name]
            builder = self.builders.get(builder_name)
            if builder is None:
                continue  # not configured (any more): keep the requests until it is
            while heap:
                session = self._pick_worker(builder)
                if session is None:
                    break
                _, _, _, req = heapq.heappop(heap)
                slot = f"request:{req.id}"
                session.builds.add(slot)
                try:
                    claimed = await self.repo.claim_request(req.id, self.coordinator_id, self.clock.now())
                except Exception:
                    session.builds.discard(slot)
                    heapq.heappush(heap, (-req.priority, req.submitted_at, req.id, req))
                    raise
                if not claimed:
                    session.builds.discard(slot)
                    continue
                task = asyncio.get_running_loop().create_task(self._run_build(req, builder, session, slot))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not heap:
                self._pending.pop(builder_name, None)

    def _pick_worker(self, builder: Builder) -> WorkerSession | None:
        best: WorkerSession | None = None
        for name in builder.workers:
            s = self.workers.sessions.get(name)
            if s is None or s.free_slots <= 0:
                continue
            if best is None or s.free_slots > best.free_slots:
                best = s
        return best

    async def _properties(
        self, req: BuildRequest, builder: Builder, session: WorkerSession
    ) -> tuple[list[Property], list[SourceStamp]]:
        """The new build's properties, and its source stamps (for rendering)."""
        props: dict[str, Property] = {}
        buildset = await self.repo.get_buildset(req.buildset_id)
        stamps = list(buildset.sourcestamps) if buildset is not None else []
        if buildset is not None:
            for p in buildset.properties:
                props[p.name] = p
            if buildset.sourcestamps:
                ss = buildset.sourcestamps[0]
                for name in ("branch", "revision", "repository", "project", "codebase"):
                    props[name] = Property(name, getattr(ss, name), "Build")
        props["buildername"] = Property("buildername", builder.name, "Builder")
        for k, v in builder.properties.items():
            props[k] = Property(k, v, "Builder")
        props["workername"] = Property("workername", session.name, "Worker")
        for k, v in session.info.items():
            props[f"worker_{k}"] = Property(f"worker_{k}", v, "Worker")
        decl = self.workers.decls.get(session.name)
        if decl is not None:
            for k, v in decl.properties.items():
                props[k] = Property(k, v, "Worker")
        return list(props.values()), stamps

    async def _run_build(self, req: BuildRequest, builder: Builder, session: WorkerSession, slot: str) -> None:
        build = None
        key = None
        try:
            props, stamps = await self._properties(req, builder, session)
            build = await self.repo.start_build(req, session.name, props, self.clock.now())
            key = (builder.name, build.number)
            session.builds.add(f"{builder.name}/{build.number}")
            session.builds.discard(slot)
            runner = BuildRunner(
                build, builder.steps, builder.builddir, session, self.repo, self.watchers, self.clock, stamps,
                self.trigger_port,
            )
            self.running[key] = runner
            try:
                result, state, requeue = await runner.run()
            except Exception:
                log.exception("build %s/%d crashed", builder.name, build.number)
                result, state, requeue = Result.EXCEPTION, "exception", False
            await self.repo.finish_build(build, result, state, self.clock.now(), requeue)
            if requeue:
                self.add_request(req)
        except asyncio.CancelledError:
            # Coordinator shutting down: the claim stays; the next start re-queues it as RETRY.
            raise
        except Exception:
            log.exception("could not run request %d", req.id)
        finally:
            if key is not None:
                self.running.pop(key, None)
                session.builds.discard(f"{key[0]}/{key[1]}")
            session.builds.discard(slot)
            if not self._closing:
                self.kick()
