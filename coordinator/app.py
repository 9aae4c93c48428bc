"""Composition root: builds and wires the coordinator, starts it, stops it in reverse order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from coordinator.api.server import GrpcServer, ListenError
from coordinator.api.servicers import ChangeServicer, ControlServicer, LogServicer, StatusServicer
from coordinator.api.workers import WorkerServicer
from coordinator.config.objects import MasterConfig
from coordinator.domain.builds import bookkeeping
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.eta import EtaEstimator
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.changes.sources import PollingLoop
from coordinator.domain.events import EventBus
from coordinator.domain.ports import TimerHandle
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.intake import ChangeIntake
from coordinator.domain.status.feed import LogReader, StatusFeed
from coordinator.domain.status.queries import Queries, QueryStores
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.workers.sessions import WorkerRegistry
from coordinator.host_commands import HostCommandRunner
from coordinator.storage.files import FileArtifactStore
from coordinator.storage.sql import SqlStorage, database_url, open_storage
from coordinator.vcs.git import GitCli
from coordinator.web.api.backend import Backend
from coordinator.web.api.http import mount_api
from coordinator.web.receiver import WebhookReceiver
from coordinator.web.server import WebServer
from coordinator.web.settings import override_address, web_settings
from coordinator.web.ui.pages import mount_ui
from notifiers.service import NotificationService

__all__ = ["DEFAULT_PORT", "AsyncioClock", "Coordinator", "ListenError"]

log = logging.getLogger(__name__)
DEFAULT_PORT = 9989


class AsyncioClock:
    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


class Coordinator:
    """Builds every part, wires them (this is the only place that does), starts them in order
    and stops them in reverse."""

    def __init__(
        self,
        config: MasterConfig,
        data_dir: Path,
        listen: str = f"127.0.0.1:{DEFAULT_PORT}",
        db_url: str | None = None,
        coordinator_id: str = "default",
        heartbeat_interval: float = 10.0,
        subscriber_buffer: int = 10_000,
        http: str | None = None,
        change_token: str = "",
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.listen = listen
        self.db_url = database_url(db_url, data_dir)
        self.coordinator_id = coordinator_id
        self.heartbeat_interval = heartbeat_interval
        self.subscriber_buffer = subscriber_buffer
        self.change_token = change_token
        self.clock = AsyncioClock()
        self.bus = EventBus()
        self.watchers = LogWatchers()
        self.storage: SqlStorage | None = None
        self.server: GrpcServer | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.dispatcher: Dispatcher | None = None
        self.schedulers: SchedulerControl | None = None
        self.downstream: Downstream | None = None
        self.notifications: NotificationService | None = None
        # HTTP (webhooks): from config.www, its address overridden by `--http HOST:PORT`.
        self.web_settings = web_settings(config.www)
        if http:
            override_address(self.web_settings, http)
        self.web: WebServer | None = None
        self.pollers: list[PollingLoop] = []

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db = self.storage = await open_storage(self.db_url, self.bus.publish)
        self.bus.last_id = await db.events.last_event_id()
        await db.workers.reset_connections()
        requeued = await bookkeeping.release_orphans(db.book, self.coordinator_id, self.clock.now())
        if requeued:
            log.info("re-queued %d build request(s) left running by a previous run", requeued)

        # The domain: who runs builds, how buildsets reach them, and the coordinator's use cases.
        workers = WorkerRegistry(self.clock.now, db.workers)
        workers.configure(list(self.config.workers))
        artifacts = FileArtifactStore(self.data_dir)
        dispatcher = self.dispatcher = Dispatcher(
            db.buildsets, db.builds, db.logs, db.book, workers, self.clock, self.watchers, self.coordinator_id,
            artifacts,
            secrets=list(self.config.secretsProviders),
            host=HostCommandRunner(self.data_dir) if self.config.allow_master_commands else None,
        )
        workers.on_change = dispatcher.kick  # a worker came or went: its free slots may start builds
        estimator = EtaEstimator(db.builds, self.clock.now)
        self.bus.add_listener(estimator.on_event)  # a finished build refreshes its builder's history
        submitter = BuildsetSubmitter(db.buildsets, db.book, self.clock, dispatcher)
        schedulers = self.schedulers = SchedulerControl(db.schedulers, self.clock, submitter)
        downstream = self.downstream = Downstream(db.buildsets, submitter, schedulers, dispatcher)
        dispatcher.trigger_port = downstream  # Trigger steps submit their buildsets through it
        self.bus.add_listener(downstream.on_event)  # Trigger steps' waits, Dependent schedulers
        intake = ChangeIntake(db.changes, self.clock, schedulers)
        builds = BuildControl(db.builds, db.buildsets, submitter, schedulers, dispatcher)
        stores = QueryStores(db.builds, db.buildsets, db.changes, db.workers, db.outbox)
        queries = Queries(stores, self.clock, dispatcher, workers, estimator=estimator, artifacts=artifacts)
        dispatcher.configure(self.config.builders)
        schedulers.configure(self.config.schedulers)

        if self.config.notifiers:
            # Started before the dispatcher: no build can finish before it listens.
            self.notifications = NotificationService(
                builds=db.builds, logs=db.logs, events=db.events, outbox=db.outbox, bus=self.bus,
                notifiers=list(self.config.notifiers), url=self.config.url,
                builder_tags={b.name: list(b.tags) for b in self.config.builders},
                clock=self.clock.now, cursor_name=f"notifications:{self.coordinator_id}",
            )
            await self.notifications.start()
        await dispatcher.start()
        # After the dispatcher has loaded the stored requests: a timer that expired while the
        # coordinator was down may submit a buildset right away.
        await schedulers.start()
        await downstream.catch_up()  # after the schedulers: a Dependent's stored state is loaded

        worker_servicer = WorkerServicer(workers, self.clock.now, self.heartbeat_interval)
        # The HTTP API calls the same servicers as gRPC: same validation, same errors.
        api = Backend(
            control=ControlServicer(builds, schedulers, queries),
            status=StatusServicer(StatusFeed(db.events, db.builds, self.bus, self.subscriber_buffer, estimator)),
            logs=LogServicer(LogReader(db.logs, self.watchers)),
        )
        server = self.server = GrpcServer(
            self.listen,
            changes=ChangeServicer(intake),
            control=api.control,
            status=api.status,
            logs=api.logs,
            workers=worker_servicer,
            change_token=self.change_token,
        )
        await server.start()
        self.port = server.port
        self._tasks.append(asyncio.get_running_loop().create_task(worker_servicer.watchdog(), name="watchdog"))
        if self.web_settings.enabled:
            web = WebServer(
                WebhookReceiver(intake, self.web_settings.dialects), self.web_settings,
                mounts=[mount_api(api), mount_ui(api)],
            )
            await web.start()
            self.web = web
        for source in self.config.change_source:
            loop = PollingLoop(source, GitCli.for_poller(source, self.data_dir), intake)
            loop.start()
            self.pollers.append(loop)

    @property
    def http_address(self) -> str:
        """HOST:PORT of the HTTP server ('' when there is none)."""
        return self.web.address if self.web is not None else ""

    @property
    def address(self) -> str:
        host = self.listen.rsplit(":", 1)[0] or "0.0.0.0"
        return f"{host}:{self.port}"

    async def aclose(self) -> None:
        """Stop in reverse order; idempotent, every wait bounded."""
        if self.web is not None:
            await self.web.aclose()
            self.web = None
        for poller in reversed(self.pollers):
            await poller.aclose()
        self.pollers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.server is not None:
            await self.server.stop(grace=2.0)
            self.server = None
        if self.schedulers is not None:
            await asyncio.wait_for(self.schedulers.aclose(), 10)
            self.schedulers = None
        if self.downstream is not None:
            await asyncio.wait_for(self.downstream.aclose(), 10)
            self.downstream = None
        if self.dispatcher is not None:
            await asyncio.wait_for(self.dispatcher.aclose(), 10)
            self.dispatcher = None
        if self.notifications is not None:
            await asyncio.wait_for(self.notifications.aclose(), 10)
            self.notifications = None
        if self.storage is not None:
            await asyncio.wait_for(self.storage.aclose(), 10)
            self.storage = None
