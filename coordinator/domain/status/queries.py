"""The coordinator's read side (queries): builders and their queues (with expected starts), builds,
build requests, artifacts, changes, notifications and workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from coordinator.domain.auth import visibility
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.eta import BuildEstimate, EtaEstimator, expected_starts
from coordinator.domain.builds.lookup import find_build, find_builder
from coordinator.domain.builds.worker_holds import WorkerHolds
from coordinator.domain.errors import InvalidArgument, NotFound
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Change,
    PendingRequest,
    WorkerRecord,
)
from coordinator.domain.ports import (
    ArtifactStore,
    BuildListing,
    ChangeReads,
    Clock,
    Notification,
    NotificationReads,
    RequestReads,
    WorkerReads,
)
from coordinator.domain.results import Result
from coordinator.domain.workers.capacity import capacity_reason
from coordinator.domain.workers.sessions import WorkerRegistry


@dataclass(frozen=True)
class QueryStores:
    """What the status reads read, by concept."""

    builds: BuildListing
    requests: RequestReads
    changes: ChangeReads
    workers: WorkerReads
    notifications: NotificationReads

class Queries:
    """What the API reads: configured builders and their queues (from the dispatcher), connected
    workers (from the registry), and everything stored."""

    def __init__(
        self,
        stores: QueryStores,
        clock: Clock,
        dispatcher: Dispatcher,
        workers: WorkerRegistry,
        estimator: EtaEstimator | None = None,
        artifacts: ArtifactStore | None = None,
        holds: WorkerHolds | None = None,
    ) -> None:
        self.stores = stores
        self.holds = holds  # paused / draining workers
        self.clock = clock
        self.dispatcher = dispatcher
        self.workers = workers
        self.estimator = estimator  # None: no estimates (it must be fed finished builds to stay fresh)
        self.artifacts = artifacts

    def builder(self, name: str) -> Builder:
        return find_builder(self.dispatcher.builders, name)

    def pending_count(self, builder: str) -> int:
        """Unstarted build requests of a builder."""
        return self.dispatcher.pending_count(builder)

    async def next_expected_start(self, builder: str) -> float | None:
        """When the builder's next queued request can expect to start (see `expected_starts`)."""
        head = self.dispatcher.next_pending(builder)
        if head is None:
            return None
        return (await self._expected_starts(builder, [head.id])).get(head.id)

    async def _expected_starts(self, builder: str, queue: list[int]) -> dict[int, float]:
        """Expected start of each queued request (in dispatch order): the slots of the builder's
        connected workers free at their builds' ETAs; a build whose ETA is unknown, and each
        queued request, take the builder's median successful build. Reads one build per slot in
        use, and only for a builder with a queue."""
        configured = self.dispatcher.builders.get(builder)
        if not queue or self.estimator is None or configured is None:
            return {}
        estimator = self.estimator
        sessions = [
            s for w in configured.workers
            if (s := self.workers.sessions.get(w)) is not None and not s.closed
        ]
        etas: list[float | None] = []
        for session in sessions:
            for label in sorted(session.builds):
                name, _, number = label.rpartition("/")
                build = await self.stores.builds.get_build(name, int(number)) if number.isdigit() else None
                etas.append(None if build is None else (await estimator.estimate(build)).eta)
        duration = (await estimator.history(builder)).build_duration
        slots = sum(s.max_builds for s in sessions)
        return expected_starts(queue, slots, etas, duration, self.clock.now())

    async def list_pending(self, builder: str) -> list[PendingRequest]:
        """Unstarted requests in start order, each with why it waits and, when the builder's
        history allows an estimate, when it is expected to start (one builder, or all)."""
        if builder:
            self.builder(builder)
        pending = [p for p in self.dispatcher.pending_requests(builder) if visibility.sees(p.builder)]
        by_builder: dict[str, list[PendingRequest]] = {}
        for p in pending:
            by_builder.setdefault(p.builder, []).append(p)
        for name, queue in by_builder.items():
            starts = await self._expected_starts(name, [p.id for p in queue])
            for p in queue:
                p.expected_start = starts.get(p.id, 0.0)
        return pending

    async def list_build_requests(self, builder: str, buildset_id: int, limit: int) -> list[BuildRequest]:
        if builder:
            self.builder(builder)
        if buildset_id < 0:
            raise InvalidArgument("buildset_id must not be negative")
        return await self.stores.requests.list_build_requests(
            builder, buildset_id, _limit(limit), among=self._visible_builders())

    def list_builders(self) -> list[Builder]:
        return [b for b in self.dispatcher.builders.values() if visibility.sees(b.name)]

    def _visible_builders(self) -> frozenset[str] | None:
        """The configured builders a scoped reader may see, for the stores to narrow a listing
        with (None: no narrowing). Builds of builders no longer configured are hidden from it."""
        v = visibility.current()
        return None if v is None else v.among(self.dispatcher.builders)

    async def get_build(self, builder: str, number: int) -> Build:
        return await find_build(self.stores.builds, builder, number)

    async def estimate(self, build: Build) -> BuildEstimate | None:
        """ETA and expected step durations of a running build (None once it finished)."""
        if build.complete or self.estimator is None:
            return None
        return await self.estimator.estimate(build)

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        return (await self.get_build(builder, number)).artifacts

    async def open_artifact(self, builder: str, number: int, name: str) -> tuple[Artifact, AsyncIterator[bytes]]:
        """An artifact's record and its bytes (in chunks)."""
        if not name:
            raise InvalidArgument("name is required")
        await self.get_build(builder, number)
        artifact = await self.stores.builds.get_artifact(builder, number, name)
        if artifact is None or self.artifacts is None:
            raise NotFound(
                f"build {builder}/{number} has no artifact {name!r} (`gantry artifacts {builder} {number}` lists them)"
            )
        if self.artifacts.file_size_of_artifact(builder, number, name) is None:
            raise NotFound(f"the file of artifact {name!r} of build {builder}/{number} is missing on the coordinator")
        return artifact, self.artifacts.read_artifact(builder, number, name)

    async def list_builds(
        self, builder: str, limit: int, *, before_id: int = 0, results: Sequence[Result] = (),
        with_steps: bool = False, branch: str = "",
    ) -> list[Build]:
        if builder:
            self.builder(builder)
        if before_id < 0:
            raise InvalidArgument("before_id must not be negative")
        return await self.stores.builds.list_builds(
            builder, _limit(limit), before_id=before_id, results=results, with_steps=with_steps, branch=branch,
            among=self._visible_builders(),
        )

    async def list_changes(self, limit: int) -> list[Change]:
        return await self.stores.changes.list_changes(_limit(limit))

    async def get_change(self, change_id: int) -> Change:
        change = await self.stores.changes.get_change(change_id)
        if change is None:
            raise NotFound(f"no change with id {change_id}")
        return change

    async def list_notifications(self, limit: int, state: str) -> list[Notification]:
        if state not in NOTIFICATION_STATES:
            raise InvalidArgument(f"state must be one of pending, sent, failed (or empty), not {state!r}")
        items = await self.stores.notifications.list_notifications(_limit(limit), state)
        if visibility.current() is None:
            return items
        # A scoped reader sees the notifications of its builders' builds only.
        return [n for n in items if (b := _builder_of(n.key)) and visibility.sees(b)]

    async def list_workers(self) -> list[WorkerRecord]:
        stored = {w.name: w for w in await self.stores.workers.list_workers()}
        out = []
        for name, decl in sorted(self.workers.decls.items()):
            rec = stored.get(name) or WorkerRecord(name=name, connected=False, since=None, max_builds=0)
            session = self.workers.sessions.get(name)
            rec.connected = session is not None
            rec.max_builds = decl.max_builds
            rec.capacity_reason = "config"
            if session is not None:
                rec.max_builds = session.max_builds
                rec.capacity_reason = capacity_reason(decl.max_builds, session.max_builds)
                rec.since = session.connected_at
                rec.info = dict(session.info)
                rec.running_builds = sorted(b for b in session.builds if not b.startswith("request:")
                                            and visibility.sees(b.rpartition("/")[0]))
            if self.holds is not None:
                rec.state, rec.state_reason = self.holds.state_of(name)
            out.append(rec)
        return out


NOTIFICATION_STATES = ("", "pending", "sent", "failed")


def _builder_of(key: str) -> str:
    """The builder of a notification key "{notifier}:{builder}:{number}:{event}" ("" for others)."""
    parts = key.partition(":")[2].rsplit(":", 2)
    return parts[0] if len(parts) == 3 else ""


def _limit(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    return min(limit or 20, 1000)
