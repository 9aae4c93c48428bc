"""Composition root: builds and wires the coordinator, starts it, stops it in reverse order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from coordinator.api.admin import AdminServicer
from coordinator.api.gate import Gate
from coordinator.api.interceptors.limits import ClientLimits
from coordinator.api.server import GrpcServer, ListenError
from coordinator.api.servicers import ChangeServicer, ControlServicer, LogServicer, StatusServicer
from coordinator.api.tokens import AuditServicer, TokenServicer
from coordinator.api.try_servicer import TryServicer
from coordinator.api.workers import WorkerServicer
from coordinator.config.objects import MasterConfig
from coordinator.config.security import resolve_worker_secrets
from coordinator.domain.auth.authz import Authz
from coordinator.domain.auth.tokens import Tokens
from coordinator.domain.builds import bookkeeping
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.eta import EtaEstimator
from coordinator.domain.builds.retention import Janitor
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.builds.worker_holds import WorkerHolds
from coordinator.domain.changes.sources import PollingLoop
from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.events import EventBus
from coordinator.domain.ports import TimerHandle
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.cancellers import Canceller, Cancellers
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.intake import ChangeIntake
from coordinator.domain.scheduling.matrix import Matrices
from coordinator.domain.scheduling.try_ import TryJobs
from coordinator.domain.status.case_history import CaseHistory
from coordinator.domain.status.feed import LogReader, StatusFeed
from coordinator.domain.status.queries import Queries, QueryStores
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.workers.sessions import WorkerRegistry
from coordinator.exposure import check_exposure
from coordinator.host_commands import HostCommandRunner
from coordinator.reconfig import Plan, Reconfigurer
from coordinator.storage.files import FileArtifactStore
from coordinator.storage.sql import SqlStorage, database_url, open_storage
from coordinator.tls import CertificateSource, TlsFiles
from coordinator.vcs.pollers import repository_for
from coordinator.web.api.backend import Backend
from coordinator.web.api.http import mount_api
from coordinator.web.auth import Sessions, WebAuth
from coordinator.web.receiver import WebhookReceiver
from coordinator.web.server import WebServer
from coordinator.web.settings import override_address, web_settings
from coordinator.web.ui.pages import mount_ui
from notifiers.irc.bot import IrcBot, start_bots
from notifiers.irc.services import CoordinatorCommands
from notifiers.service import NotificationService

__all__ = ["DEFAULT_PORT", "AsyncioClock", "Coordinator", "ListenError"]

log = logging.getLogger(__name__)
DEFAULT_PORT = 9989
JANITOR_INTERVAL = 3600.0  # seconds between retention sweeps (the first at start-up)


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
        tls: TlsFiles | None = None,
        insecure: bool = False,
        limits: ClientLimits | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path  # what `gantry reconfig` / SIGHUP load again (None: no reconfig)
        self.reconfigurer: Reconfigurer | None = None
        self.data_dir = data_dir
        self.listen = listen
        self.db_url = database_url(db_url, data_dir)
        self.coordinator_id = coordinator_id
        self.heartbeat_interval = heartbeat_interval
        self.subscriber_buffer = subscriber_buffer
        self.change_token = change_token
        self.tls_files = tls
        self.insecure = insecure
        self.limits = limits or ClientLimits()
        self.tls: CertificateSource | None = None
        self.gate: Gate | None = None
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
        self.irc_bots: list[IrcBot] = []
        self._irc_commands: CoordinatorCommands | None = None
        self.cancellers: Cancellers | None = None
        self.matrices: Matrices | None = None
        self._builder_tags: dict[str, list[str]] = {}  # for authorization rules scoped by tag
        # HTTP (webhooks): from config.www, its address overridden by `--http HOST:PORT`.
        self.web_settings = web_settings(config.www)
        if http:
            override_address(self.web_settings, http)
        self.web: WebServer | None = None
        self.pollers: list[PollingLoop] = []

    async def start(self) -> None:
        # Refuse an exposed, unprotected coordinator before touching anything.
        listening = {"gRPC": self.listen}
        if self.web_settings.enabled:
            listening["HTTP"] = f"{self.web_settings.host}:{self.web_settings.port}"
        self.tls = CertificateSource(self.tls_files) if self.tls_files is not None else None
        check_exposure(listening, tls=self.tls is not None, auth=self.config.auth is not None, insecure=self.insecure)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db = self.storage = await open_storage(self.db_url, self.bus.publish)
        self.bus.last_id = await db.events.last_event_id()
        await db.workers.reset_connections()
        # The builds a previous run left running continue (dispatcher.start) or end RETRY.
        orphans = await bookkeeping.orphans(db.book, self.coordinator_id)

        # The domain: who runs builds, how buildsets reach them, and the coordinator's use cases.
        workers = self.workers = WorkerRegistry(self.clock.now, db.workers)
        workers.configure(resolve_worker_secrets(self.config.workers, self.config.secretsProviders))
        artifacts = FileArtifactStore(self.data_dir)
        dispatcher = self.dispatcher = Dispatcher(
            db.buildsets, db.builds, db.logs, db.book, workers, self.clock, self.watchers, self.coordinator_id,
            artifacts,
            secrets=list(self.config.secretsProviders),
            host=HostCommandRunner(self.data_dir) if self.config.allow_master_commands else None,
            build_reads=db.builds, log_reads=db.logs, journal=db.journal,
        )
        holds = WorkerHolds(db.workers, dispatcher, workers, self.clock)
        await holds.start()  # before the dispatcher: a paused worker gets no build

        def workers_changed() -> None:
            dispatcher.kick()  # a worker came or went: its free slots may start builds
            holds.workers_changed()  # an agent's drain ends with its connection

        workers.on_change = workers_changed
        if self.config_path is not None:
            self.reconfigurer = Reconfigurer(self.config_path, self.config, self._apply_config)
        dispatcher.on_slot_freed = holds.tell_idle_to_exit  # a draining worker that went idle exits
        estimator = EtaEstimator(db.builds, self.clock.now)
        self.bus.add_listener(estimator.on_event)  # a finished build refreshes its builder's history
        submitter = BuildsetSubmitter(db.buildsets, db.book, self.clock, dispatcher)
        schedulers = self.schedulers = SchedulerControl(db.schedulers, self.clock, submitter)
        downstream = self.downstream = Downstream(db.buildsets, submitter, schedulers, dispatcher, db.builds)
        dispatcher.trigger_port = downstream  # Trigger steps submit their buildsets through it
        self.bus.add_listener(downstream.on_event)  # Trigger steps' waits, Dependent schedulers
        intake = self._intake = ChangeIntake(db.changes, self.clock, schedulers)
        builds = BuildControl(db.builds, db.buildsets, submitter, schedulers, dispatcher)
        cancellers = self.cancellers = Cancellers(builds)
        self.submitter = submitter
        matrices = self._configure_matrices(self.config)
        self.bus.add_listener(cancellers.on_event)  # superseded and failing buildsets' work stops
        stores = QueryStores(db.builds, db.buildsets, db.changes, db.workers, db.outbox)
        queries = Queries(
            stores, self.clock, dispatcher, workers, estimator=estimator, artifacts=artifacts, holds=holds
        )
        dispatcher.configure(matrices.builders)
        schedulers.configure(self.config.schedulers)
        janitor = Janitor(
            db.retention, self.clock,
            rules=lambda: self.config.retention,  # the current configuration's, after a reconfig too
            builders=lambda: list(dispatcher.builders),
            delete_files=artifacts.delete_artifact,
        )

        # IRC bots answer commands through the same domain services as the API, and deliver
        # the IRC announcements of the notification service (so they start before it).
        self._irc_commands = CoordinatorCommands(queries, builds)
        self._start_irc_bots(self.config)
        # Started before the dispatcher: no build can finish before it listens.
        await self._start_notifications(self.config, matrices)
        await cancellers.seed(db.buildsets)  # before dispatch: every unfinished request is unclaimed
        await dispatcher.start(orphans)
        # After the dispatcher has loaded the stored requests: a timer that expired while the
        # coordinator was down may submit a buildset right away.
        await schedulers.start()
        await downstream.catch_up()  # after the schedulers: a Dependent's stored state is loaded

        worker_servicer = WorkerServicer(workers, self.clock.now, self.heartbeat_interval)
        worker_servicer.on_draining = holds.agent_draining
        holds.exit = worker_servicer
        tokens = Tokens(db.tokens, self.clock.now)
        gate = self.gate = self._gate(tokens)
        # The HTTP API calls the same servicers as gRPC: same validation, same errors.
        api = Backend(
            control=ControlServicer(builds, schedulers, queries, CaseHistory(db.builds, queries.builder)),
            status=StatusServicer(StatusFeed(db.events, db.builds, self.bus, self.subscriber_buffer, estimator)),
            logs=LogServicer(LogReader(db.logs, self.watchers, db.builds)),
            changes=ChangeServicer(intake),
        )
        server = self.server = GrpcServer(
            self.listen,
            changes=api.changes,
            control=api.control,
            status=api.status,
            logs=api.logs,
            workers=worker_servicer,
            admin=AdminServicer(holds, queries, self.reconfig, janitor),
            change_token=self.change_token,
            tries=TryServicer(TryJobs(schedulers, submitter)),
            tokens=TokenServicer(tokens),
            audit=AuditServicer(db.audit),
            tls=self.tls,
            gate=gate,
            limits=self.limits,
        )
        await server.start()
        self.port = server.port
        self._tasks.append(asyncio.get_running_loop().create_task(worker_servicer.watchdog(), name="watchdog"))
        self._tasks.append(asyncio.get_running_loop().create_task(janitor.run(JANITOR_INTERVAL), name="janitor"))
        if self.web_settings.enabled:
            web = WebServer(
                WebhookReceiver(intake, self.web_settings.dialects), self.web_settings,
                ssl_context=self.tls.ssl_context() if self.tls is not None else None,
                auth=WebAuth(gate, Sessions(self.data_dir / "session.key") if gate is not None else None,
                             secure_cookie=self.tls is not None, audit=db.audit, now=self.clock.now,
                             change_token=self.change_token),
                mounts=[mount_api(api), mount_ui(api)],
            )
            await web.start()
            self.web = web
        self._start_pollers(self.config)

    def _gate(self, tokens: Tokens) -> Gate | None:
        """The authorization check, when the config has auth=Auth(...) (else everyone may do
        everything, which check_exposure allows only on loopback)."""
        if self.config.auth is None:
            return None
        authz = self.config.authz or Authz.everyone_authenticated()
        # The current configuration's tags (after a reconfig too).
        return Gate(self.config.auth, authz, tokens, tags_of=lambda b: self._builder_tags.get(b, ()),
                    change_token=self.change_token)

    def _configure_matrices(self, config: MasterConfig) -> Matrices:
        """Expand the configuration's matrix builders; what reads builder names (submitter,
        cancellers, authorization tags) follows."""
        matrices = Matrices(config.builders)
        self._use_matrices(matrices, matrices.rules(config.cancellers))
        return matrices

    def _use_matrices(self, matrices: Matrices, canceller_rules: Sequence[Canceller]) -> None:
        assert self.cancellers is not None
        self.matrices = matrices
        self.submitter.matrices = matrices.groups
        self.cancellers.configure(canceller_rules)
        self._builder_tags = {b.name: list(b.tags) for b in matrices.builders}

    def _start_irc_bots(self, config: MasterConfig) -> None:
        assert self._irc_commands is not None
        self.irc_bots = start_bots(config.notifiers, self._irc_commands, config.url)
        for bot in self.irc_bots:
            self.bus.add_listener(bot.on_event)  # `watch BUILDER`

    async def _stop_irc_bots(self) -> None:
        for bot in self.irc_bots:
            self.bus.remove_listener(bot.on_event)
            await asyncio.wait_for(bot.aclose(), 10)
        self.irc_bots.clear()

    async def _start_notifications(self, config: MasterConfig, matrices: Matrices) -> None:
        db = self.storage
        assert db is not None
        if config.notifiers:
            # The cursor is stored by name: a restarted service neither misses nor repeats.
            self.notifications = NotificationService(
                builds=db.builds, logs=db.logs, events=db.events, outbox=db.outbox, bus=self.bus,
                notifiers=matrices.filtering(config.notifiers), url=config.url,
                builder_tags={b.name: list(b.tags) for b in matrices.builders},
                clock=self.clock.now, cursor_name=f"notifications:{self.coordinator_id}",
                buildsets=db.buildsets, secrets=list(config.secretsProviders),
            )
            await self.notifications.start()

    def _start_pollers(self, config: MasterConfig) -> None:
        for source in config.change_source:
            loop = PollingLoop(source, repository_for(source, self.data_dir), self._intake)
            loop.start()
            self.pollers.append(loop)

    async def _apply_config(self, config: MasterConfig, plan: Plan) -> None:
        """Swap in a new configuration (see coordinator/reconfig.py): what each part reads is
        replaced; nothing that runs is stopped but what the plan changes. All or nothing: every
        new object is built first (a failure there changes nothing), then the parts are swapped
        one by one, each with its way back; if one fails, those already swapped get the previous
        configuration again, and the reconfig fails saying so."""
        assert self.dispatcher is not None and self.schedulers is not None and self.downstream is not None
        dispatcher, schedulers, downstream = self.dispatcher, self.schedulers, self.downstream
        old, old_matrices = self.config, self.matrices
        assert old_matrices is not None
        try:
            decls = resolve_worker_secrets(config.workers, config.secretsProviders)
            matrices = Matrices(config.builders)
            canceller_rules = matrices.rules(config.cancellers)
        except Exception as exc:
            raise FailedPrecondition(f"nothing changed: the configuration cannot be applied: {exc}") from None
        undo: list[Callable[[], Awaitable[None]]] = []
        try:
            # connected workers stay connected
            old_decls, old_secrets = list(self.workers.decls.values()), dispatcher.secrets
            old_rules = old_matrices.rules(old.cancellers)

            async def old_workers_and_builders() -> None:
                self.workers.configure(old_decls)
                dispatcher.secrets = old_secrets
                self._use_matrices(old_matrices, old_rules)
                dispatcher.configure(old_matrices.builders)

            undo.append(old_workers_and_builders)
            self.workers.configure(decls)
            dispatcher.secrets = list(config.secretsProviders)
            self._use_matrices(matrices, canceller_rules)
            dispatcher.configure(matrices.builders)  # running builds keep their own definition
            if plan.changed("schedulers"):
                await schedulers.swap(config.schedulers)  # their state is stored by name
                undo.append(lambda: schedulers.swap(old.schedulers))
                await downstream.catch_up()
            if plan.changed("notifiers") or plan.changed("builders"):
                await self._stop_reporters()
                undo.append(lambda: self._restart_reporters(old, old_matrices))
                self._start_irc_bots(config)
                await self._start_notifications(config, matrices)
            if plan.changed("change sources"):
                await self._stop_pollers()
                undo.append(lambda: self._restart_pollers(old))
                self._start_pollers(config)  # what each has seen is stored by name
        except Exception as exc:
            log.exception("reconfig failed while applying %s; restoring the previous configuration", plan.config_file)
            for back in reversed(undo):
                try:
                    await back()
                except Exception:  # keep restoring the other parts
                    log.exception("reconfig: could not restore part of the previous configuration")
            raise FailedPrecondition(
                f"nothing changed: applying the configuration failed ({type(exc).__name__}: {exc}); "
                "the previous configuration is back in effect"
            ) from None
        self.config = config

    async def _stop_reporters(self) -> None:
        if self.notifications is not None:
            await asyncio.wait_for(self.notifications.aclose(), 10)
            self.notifications = None
        await self._stop_irc_bots()

    async def _restart_reporters(self, config: MasterConfig, matrices: Matrices) -> None:
        await self._stop_reporters()
        self._start_irc_bots(config)
        await self._start_notifications(config, matrices)

    async def _stop_pollers(self) -> None:
        for poller in reversed(self.pollers):
            await poller.aclose()
        self.pollers.clear()

    async def _restart_pollers(self, config: MasterConfig) -> None:
        await self._stop_pollers()
        self._start_pollers(config)

    async def reconfig(self, dry_run: bool = False) -> Plan:
        """What SIGHUP does (and `gantry reconfig`, through AdminService)."""
        if self.reconfigurer is None:
            raise FailedPrecondition("this coordinator was started without a configuration file to reload")
        return await self.reconfigurer.reconfig(dry_run)

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
        if self.cancellers is not None:
            await asyncio.wait_for(self.cancellers.aclose(), 10)
            self.cancellers = None
        if self.dispatcher is not None:
            await asyncio.wait_for(self.dispatcher.aclose(), 10)
            self.dispatcher = None
        if self.notifications is not None:
            await asyncio.wait_for(self.notifications.aclose(), 10)
            self.notifications = None
        await self._stop_irc_bots()
        if self.storage is not None:
            await asyncio.wait_for(self.storage.aclose(), 10)
            self.storage = None
