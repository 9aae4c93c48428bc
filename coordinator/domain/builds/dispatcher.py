"""The dispatcher: gives each pending build request to a free worker of its builder.

Pending requests sit in one heap per builder ordered by (priority desc, submission, id), so a
dispatch pass looks only at the head of each heap — never scans every pending request (only a
builder's own nextBuild hook sees its whole queue). Workers qualify by the builder's list and
worker_labels; nextWorker / canStartBuild choose among those with a free slot, as in Buildbot.
A request is claimed in the database (one conditional UPDATE) before its build starts, so two
coordinators can never start the same request; as it starts, the builder's compatible pending
requests are collapsed into it (buildsets loaded once per request, one write for all).
`pending_requests()` says why each unstarted request waits.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.domain import events
from coordinator.domain.builds import bookkeeping, resume
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.locks import LockRegistry, accesses
from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.builds.selection import (
    choose_worker,
    maybe_await,
    next_build,
    qualified_workers,
)
from coordinator.domain.model import (
    Build,
    BuildRequest,
    Buildset,
    PendingRequest,
    PropertyValue,
    SourceStamp,
)
from coordinator.domain.ports import (
    ArtifactStore,
    Bookkeeper,
    BuildReads,
    BuildWriter,
    Clock,
    HostCommands,
    JournalStore,
    LogReads,
    LogRecorder,
    RequestQueue,
    SecretProvider,
)
from coordinator.domain.results import Result
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.steps.trigger_port import TriggerPort
from coordinator.domain.workers.sessions import WorkerRegistry, WorkerSession

log = logging.getLogger(__name__)

Entry = tuple[int, float, int, BuildRequest]  # (-priority, submitted_at, id, request): heap order


class Dispatcher:
    def __init__(
        self,
        requests: RequestQueue,
        builds: BuildWriter,
        logs: LogRecorder,
        book: Bookkeeper,
        workers: WorkerRegistry,
        clock: Clock,
        watchers: LogWatchers,
        coordinator_id: str,
        artifacts: ArtifactStore | None = None,
        *,
        secrets: Sequence[SecretProvider] = (),
        host: HostCommands | None = None,
        build_reads: BuildReads | None = None,
        log_reads: LogReads | None = None,
        journal: JournalStore | None = None,
    ) -> None:
        self.requests = requests
        self.builds = builds
        self.logs = logs
        self.book = book
        self.artifacts = artifacts
        self.locks = LockRegistry()
        self._refused: dict[str, str] = {}  # builder -> why its head did not start on a free worker
        self.workers = workers
        self.clock = clock
        self.watchers = watchers
        self.coordinator_id = coordinator_id
        self.builders: dict[str, Builder] = {}
        self.secrets = list(secrets)  # the configuration's secretsProviders
        self.host = host  # runs MasterShellCommand; None unless the configuration allows it
        # What builds resumed after a coordinator restart read (None: they end RETRY instead).
        self.build_reads = build_reads
        self.log_reads = log_reads
        self.journal = journal  # the running steps' command journals (what a resumed step replays)
        # What Trigger steps submit through (app.py sets it: it is built on this dispatcher);
        # None: triggering fails.
        self.trigger_port: TriggerPort | None = None
        self._pending: dict[str, list[Entry]] = {}
        self.running: dict[tuple[str, int], BuildRunner] = {}
        # Requests being claimed or started here (no runner yet), and why those that must stop
        # as soon as their runner exists were stopped (stop_request).
        self._starting: set[int] = set()
        self._doomed: dict[int, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        # Workers an operator paused or is draining: worker -> "paused"/"draining". Checked in
        # the same synchronous stretch that reserves a slot, so no new reservation follows hold().
        self.held: dict[str, str] = {}
        # Starts under way, (worker, "request:ID"), by worker name rather than on the session: a
        # start on a session that was replaced meanwhile still counts until it settles.
        self._reserved: set[tuple[str, str]] = set()
        self._slots_freed = asyncio.Condition()
        self.on_slot_freed: Callable[[], None] = lambda: None  # e.g. a drained worker may now exit

    def configure(self, builders: Sequence[Builder]) -> None:
        self.builders = {b.name: b for b in builders}
        self.kick()

    async def start(self, orphans: Sequence[Build] = ()) -> None:
        """Load the pending requests; `orphans` (the builds this coordinator was running when it
        stopped) continue where they can, the others end RETRY and their requests are queued."""
        kept = [found for build in orphans if (found := await self._resumable(build)) is not None]
        released = await bookkeeping.release_orphans(
            self.book, self.coordinator_id, self.clock.now(), keep=[b.build_request_id for b, _ in kept]
        )
        if released:
            log.info("re-queued %d build request(s) left running by a previous run", released)
        for build, builder in kept:
            self._resume(build, builder)
        for req in await self.requests.unclaimed_requests():
            self.add_request(req)
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="dispatcher")

    def add_request(self, req: BuildRequest) -> None:
        heapq.heappush(
            self._pending.setdefault(req.builder, []), (-req.priority, req.submitted_at, req.id, req)
        )
        self.kick()

    def drop_request(self, builder: str, request_id: int) -> None:
        """Forget a pending request (it was cancelled)."""
        heap = self._pending.get(builder, [])
        entry = next((e for e in heap if e[2] == request_id), None)
        if entry is not None:
            _remove(heap, entry[3])

    def pending_count(self, builder: str) -> int:
        return len(self._pending.get(builder, ()))

    def next_pending(self, builder: str) -> BuildRequest | None:
        """The builder's pending request that dispatch takes next (the head of its heap)."""
        heap = self._pending.get(builder)
        return heap[0][-1] if heap else None

    def kick(self) -> None:
        self._kick.set()

    def find_running(self, builder: str, number: int) -> BuildRunner | None:
        return self.running.get((builder, number))

    def stop_request(self, request_id: int, reason: str) -> bool:
        """Stop the build of a request this coordinator claimed: now if it runs, else as soon
        as it starts (claimed, not started yet); False if it runs nowhere here."""
        for runner in self.running.values():
            if runner.build.build_request_id == request_id:
                runner.stop(reason)
                return True
        if request_id in self._starting:
            self._doomed.setdefault(request_id, reason)
            return True
        return False

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
                free = [s for s in self.qualified_workers(builder) if s.free_slots > 0 and s.name not in self.held]
                if not free:
                    break
                # nextBuild sees the whole queue in start order; without it, the head starts.
                if builder.nextBuild is None:
                    req: BuildRequest | None = heap[0][3]
                else:
                    req = await next_build(builder, [e[3] for e in sorted(heap)])
                if req is None:
                    self._refused[builder_name] = "nextBuild chose none of them"
                    break
                session = await choose_worker(builder, free, req)
                if session is None:
                    self._refused[builder_name] = "canStartBuild refused on all workers"
                    break
                self._refused.pop(builder_name, None)
                if not _remove(heap, req):
                    continue  # absorbed by a collapse while the hooks ran
                slot = f"request:{req.id}"
                session.builds.add(slot)
                self._reserved.add((session.name, slot))
                self._starting.add(req.id)  # before the claim commits: a stop may follow it at once
                try:
                    claimed = await self.requests.claim_request(req.id, self.coordinator_id, self.clock.now())
                except Exception:
                    self._forget_start(req.id)
                    await self._free(session, slot)
                    heapq.heappush(heap, (-req.priority, req.submitted_at, req.id, req))
                    raise
                if not claimed:
                    self._forget_start(req.id)
                    await self._free(session, slot)
                    continue
                others = [e[3] for e in heap] if builder.collapseRequests is not False else []
                task = asyncio.get_running_loop().create_task(
                    self._run_build(req, builder, session, slot, others)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not heap:
                self._pending.pop(builder_name, None)

    def _forget_start(self, request_id: int) -> None:
        self._starting.discard(request_id)
        self._doomed.pop(request_id, None)

    def qualified_workers(self, builder: Builder) -> list[WorkerSession]:
        """Connected workers of the builder's list that advertised all its worker_labels."""
        return qualified_workers(builder, self.workers.sessions)

    # ------------------------------------------------------------------ collapsing

    async def _collapse(self, req: BuildRequest, builder: Builder, others: list[BuildRequest]) -> None:
        """Absorb the builder's pending requests compatible with `req`, which is starting."""
        missing = {r.buildset_id for r in [req, *others] if r.buildset is None}
        if missing:
            loaded = await self.requests.get_buildsets(sorted(missing))
            for r in [req, *others]:
                if r.buildset is None:
                    r.buildset = loaded.get(r.buildset_id)
        chosen = []
        for other in others:
            if other.complete:
                continue
            try:
                if builder.collapseRequests is True:
                    ok = compatible(req.buildset, other.buildset)
                else:
                    ok = bool(await maybe_await(builder.collapseRequests(builder, req, other)))  # type: ignore[operator]
            except Exception:
                log.exception("collapseRequests of builder %s raised; not collapsing", builder.name)
                ok = False
            if ok:
                chosen.append(other.id)
        if not chosen:
            return
        absorbed = set(await bookkeeping.collapse(self.book, req, chosen, self.clock.now()))
        heap = self._pending.get(builder.name)
        if heap is not None and absorbed:
            heap[:] = [e for e in heap if e[3].id not in absorbed]
            heapq.heapify(heap)
        for other in others:
            if other.id in absorbed:
                other.complete, other.result, other.absorbed_by = True, Result.SKIPPED, req.id

    # ------------------------------------------------------------------ why pending

    def pending_requests(self, builder: str = "") -> list[PendingRequest]:
        """Every unstarted request (of one builder, or all), in start order, with the reason it
        has not started (the service adds expected start times)."""
        out: list[PendingRequest] = []
        for name in [builder] if builder else sorted(self._pending):
            entries = sorted(self._pending.get(name, ()))
            configured = self.builders.get(name)
            blocked = self._blocked_reason(configured) if configured is not None else "builder not configured"
            busy = self._busy_reason(configured, name) if configured is not None and not blocked else ""
            first_of_priority: dict[int, int] = {}
            for i, (_, _, _, req) in enumerate(entries):
                higher = first_of_priority.setdefault(req.priority, i)
                reason = blocked or (f"lower priority than {higher} requests" if higher else busy)
                pending = PendingRequest(req.id, name, req.buildset_id, req.priority, req.submitted_at, reason)
                out.append(pending)
        return out

    def _blocked_reason(self, builder: Builder) -> str:
        connected = [n for n in builder.workers if n in self.workers.sessions]
        if not connected:
            return "no worker connected"
        qualified = self.qualified_workers(builder)
        if not qualified:
            return f"no connected worker has labels [{', '.join(builder.worker_labels)}]"
        if all(s.name in self.held for s in qualified):
            return "; ".join(f"worker {s.name} {self.held[s.name]}" for s in qualified)
        return ""

    def _busy_reason(self, builder: Builder, name: str) -> str:
        qualified = self.qualified_workers(builder)
        if all(s.free_slots <= 0 for s in qualified):
            names = {s.name for s in qualified}
            for runner in self.running.values():
                if runner.worker in names and runner.waiting_for_lock:
                    return f"waiting for lock {runner.waiting_for_lock}"
            return f"all {len(qualified)} workers busy"
        return self._refused.get(name, "waiting to be dispatched")

    async def _properties(
        self, req: BuildRequest, builder: Builder, session: WorkerSession
    ) -> tuple[list[PropertyValue], list[SourceStamp]]:
        """The new build's properties, and its source stamps (for rendering)."""
        props: dict[str, PropertyValue] = {}
        buildset = req.buildset or await self.requests.get_buildset(req.buildset_id)
        stamps = list(buildset.sourcestamps) if buildset is not None else []
        if buildset is not None:
            for p in buildset.properties:
                props[p.name] = p
            if buildset.sourcestamps:
                ss = buildset.sourcestamps[0]
                for name in ("branch", "revision", "repository", "project", "codebase"):
                    props[name] = PropertyValue(name, getattr(ss, name), "Build")
        props["buildername"] = PropertyValue("buildername", builder.name, "Builder")
        for k, v in builder.properties.items():
            props[k] = PropertyValue(k, v, "Builder")
        props["workername"] = PropertyValue("workername", session.name, "Worker")
        for k, v in session.info.items():
            props[f"worker_{k}"] = PropertyValue(f"worker_{k}", v, "Worker")
        decl = self.workers.decls.get(session.name)
        if decl is not None:
            for k, v in decl.properties.items():
                props[k] = PropertyValue(k, v, "Worker")
        return list(props.values()), stamps

    def _build_services(self) -> BuildServices:
        """What every build uses; made as each starts, so that it has the current trigger_port."""
        return BuildServices(
            self.builds, self.logs, self.watchers, self.clock, self.artifacts, self.trigger_port, self.secrets,
            self.host, self.locks, self.log_reads, self.journal,
        )

    async def _resumable(self, build: Build) -> tuple[Build, Builder] | None:
        """The build as stored, with its builder, if it can continue after the restart."""
        full = await self.build_reads.get_build(build.builder, build.number) if self.build_reads else None
        builder = self.builders.get(build.builder)
        why = resume.refusal(full, builder, self.workers.decls) if self.log_reads and self.journal else (
            "not supported here"
        )
        if why or full is None or builder is None:
            log.info("build %s/%d of before the restart ends RETRY: %s", build.builder, build.number, why)
            return None
        return full, builder

    def _resume(self, build: Build, builder: Builder) -> None:
        """Continue a build of before the restart on its worker, which is waited for (within the
        grace period) as though its connection had just dropped."""
        decl = self.workers.decls[build.worker]
        grace = builder.missing_timeout if builder.missing_timeout is not None else decl.missing_timeout
        session = self.workers.adopt(decl, grace)
        key = (builder.name, build.number)
        session.builds.add(f"{builder.name}/{build.number}")
        runner = BuildRunner(
            build, builder.steps, builder.builddir, session, self._build_services(), build.sourcestamps,
            accesses(builder.locks), missing_timeout=builder.missing_timeout, resuming=True,
        )
        self.running[key] = runner
        log.info("build %s/%d continues: waiting up to %g s for worker %s", *key, grace, decl.name)
        task = asyncio.get_running_loop().create_task(self._drive(runner, builder, session, None))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_build(
        self, req: BuildRequest, builder: Builder, session: WorkerSession, slot: str, others: list[BuildRequest]
    ) -> None:
        key = None
        try:
            if others:
                try:
                    await self._collapse(req, builder, others)
                except Exception:
                    log.exception("collapsing requests into %d failed; building it alone", req.id)
            props, stamps = await self._properties(req, builder, session)
            build = await self.builds.start_build(
                req, session.name, props, self.clock.now(), [s.name for s in builder.steps],
                lambda build: [events.build_started(build)],
            )
            key = (builder.name, build.number)
            session.builds.add(f"{builder.name}/{build.number}")
            runner = BuildRunner(
                build, builder.steps, builder.builddir, session, self._build_services(), stamps,
                accesses(builder.locks), missing_timeout=builder.missing_timeout,
            )
            self.running[key] = runner
            self._starting.discard(req.id)
            doomed = self._doomed.pop(req.id, None)
            if doomed is not None:
                runner.stop(doomed)  # stopped while it was starting: it runs only alwaysRun steps
        except Exception:
            log.exception("could not run request %d", req.id)
            if key is not None:
                self.running.pop(key, None)
                session.builds.discard(f"{key[0]}/{key[1]}")
            if not self._closing:
                self.kick()
            return
        finally:
            self._forget_start(req.id)
            # The reservation settles: the build holds its own slot now (or the start failed).
            await asyncio.shield(self._free(session, slot))
        await self._drive(runner, builder, session, req)

    async def _drive(
        self, runner: BuildRunner, builder: Builder, session: WorkerSession, req: BuildRequest | None
    ) -> None:
        """Run the build to its end and record it (a RETRY puts its request back in the queue)."""
        build = runner.build
        key = (builder.name, build.number)
        try:
            properties: list[PropertyValue] | None = None
            try:
                result, state = await runner.run()
                properties = build.properties  # the final ones (the runner keeps them there)
            except Exception:
                log.exception("build %s/%d crashed", builder.name, build.number)
                result, state = Result.EXCEPTION, "exception"
            if await bookkeeping.finish_build(self.book, build, result, state, self.clock.now(), properties):
                if req is not None:
                    self.add_request(req)
                else:  # a build resumed after a restart: its request is read again
                    for pending in await self.requests.unclaimed_requests():
                        if pending.id == build.build_request_id:
                            self.add_request(pending)
        except asyncio.CancelledError:
            # Coordinator shutting down: the claim stays; the next start continues the build.
            raise
        except Exception:
            log.exception("could not run build %s/%d", builder.name, build.number)
        finally:
            self.running.pop(key, None)
            await asyncio.shield(self._free(session, f"{key[0]}/{key[1]}"))
            if not self._closing:
                self.kick()

    # ------------------------------------------------------------------ pause and drain

    async def hold(self, worker: str, state: str) -> None:
        """Start no new build on `worker` ("paused" or "draining"). Returns once every start
        already under way there is settled (its build stored, or its reservation dropped), so
        that no build starts on the worker after this returns."""
        self.held[worker] = state
        async with self._slots_freed:
            await self._slots_freed.wait_for(lambda: not any(w == worker for w, _ in self._reserved))

    def release(self, worker: str) -> None:
        """The worker takes builds again."""
        if self.held.pop(worker, None) is not None:
            self.kick()

    async def _free(self, session: WorkerSession, label: str) -> None:
        """Give back a build's or a reservation's slot, and wake whoever waits on slots."""
        session.builds.discard(label)
        self._reserved.discard((session.name, label))
        self.on_slot_freed()
        async with self._slots_freed:
            self._slots_freed.notify_all()


def compatible(a: Buildset | None, b: Buildset | None) -> bool:
    """Buildbot's default collapse rule: the same codebases, and for each the same repository,
    branch and project; and either both buildsets come from changes, or neither does and their
    revisions match."""
    if a is None or b is None:
        return False
    sa = {ss.codebase: ss for ss in a.sourcestamps}
    sb = {ss.codebase: ss for ss in b.sourcestamps}
    if sa.keys() != sb.keys():
        return False
    if bool(a.change_ids) != bool(b.change_ids):
        return False
    for codebase, x in sa.items():
        y = sb[codebase]
        if (x.repository, x.branch, x.project) != (y.repository, y.branch, y.project):
            return False
        if x.patch != y.patch:  # two try jobs on one revision are two different builds
            return False
        if not a.change_ids and x.revision != y.revision:
            return False
    return True


def _remove(heap: list[Entry], req: BuildRequest) -> bool:
    """Take `req` out of the heap (the head in O(log n)); False if it is no longer there."""
    if heap and heap[0][3] is req:
        heapq.heappop(heap)
        return True
    for i, entry in enumerate(heap):
        if entry[3] is req:
            heap[i] = heap[-1]
            heap.pop()
            heapq.heapify(heap)
            return True
    return False

