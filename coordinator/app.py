"""Composition root: builds and wires the coordinator, starts it, stops it in reverse order."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coordinator.api.auth import ChangeTokenInterceptor
from coordinator.api.errors import ErrorInterceptor
from coordinator.api.servicers import ChangeServicer, ControlServicer, LogServicer, StatusServicer
from coordinator.api.workers import WorkerServicer
from coordinator.artifacts import FileArtifactStore
from coordinator.config.objects import MasterConfig
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.eta import EtaEstimator
from coordinator.domain.changes.sources import PollingLoop
from coordinator.domain.events import EventBus
from coordinator.domain.ports import TimerHandle
from coordinator.domain.service import CoordinatorService
from coordinator.domain.status.feed import LogReader, StatusFeed
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.workers.sessions import WorkerRegistry
from coordinator.host_commands import HostCommandRunner
from coordinator.storage.repository import SqlRepository, database_url, open_repository
from coordinator.vcs.git import GitCli
from coordinator.web.receiver import WebhookReceiver
from coordinator.web.server import WebServer
from coordinator.web.settings import override_address, web_settings
from notifiers.service import NotificationService
from protos.gantry.v1 import (
    changes_pb2,
    changes_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)

log = logging.getLogger(__name__)
DEFAULT_PORT = 9989


class AsyncioClock:
    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


class ListenError(Exception):
    pass


class Coordinator:
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
        self.repo: SqlRepository | None = None
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.dispatcher: Dispatcher | None = None
        self.service: CoordinatorService | None = None
        self._worker_servicer: WorkerServicer | None = None
        self.notifications: NotificationService | None = None
        # HTTP (webhooks): from config.www, its address overridden by `--http HOST:PORT`.
        self.web_settings = web_settings(config.www)
        if http:
            override_address(self.web_settings, http)
        self.web: WebServer | None = None
        self.pollers: list[PollingLoop] = []

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        repo = self.repo = await open_repository(self.db_url, self.bus.publish)
        self.bus.last_id = await repo.last_event_id()
        requeued = await repo.release_orphaned_claims(self.coordinator_id, self.clock.now())
        if requeued:
            log.info("re-queued %d build request(s) left running by a previous run", requeued)

        workers = WorkerRegistry(self.clock.now)
        workers.configure(list(self.config.workers))
        artifacts = FileArtifactStore(self.data_dir)
        dispatcher = self.dispatcher = Dispatcher(
            repo, workers, self.clock, self.watchers, self.coordinator_id, artifacts,
            secrets=list(self.config.secretsProviders),
            host=HostCommandRunner(self.data_dir) if self.config.allow_master_commands else None,
        )
        estimator = EtaEstimator(repo, self.clock.now)
        self.bus.add_listener(estimator.on_event)  # a finished build refreshes its builder's history
        service = self.service = CoordinatorService(
            repo, self.clock, dispatcher, workers, self.bus, estimator=estimator, artifacts=artifacts
        )
        service.configure(self.config.builders, self.config.schedulers)
        if self.config.notifiers:
            # Started before the dispatcher: no build can finish before it listens.
            self.notifications = NotificationService(
                repo, self.bus, list(self.config.notifiers), url=self.config.url,
                builder_tags={b.name: list(b.tags) for b in self.config.builders},
                clock=self.clock.now, cursor_name=f"notifications:{self.coordinator_id}",
            )
            await self.notifications.start()
        await dispatcher.start()
        # After the dispatcher has loaded the stored requests: a timer that expired while the
        # coordinator was down may submit a buildset right away.
        await service.start_schedulers()

        worker_servicer = WorkerServicer(workers, repo, self.clock.now, self.heartbeat_interval)
        interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor()]
        if self.change_token:
            interceptors.insert(0, ChangeTokenInterceptor(self.change_token))
        server = self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                ("grpc.so_reuseport", 0),
            ],
        )
        changes_pb2_grpc.add_ChangeServiceServicer_to_server(ChangeServicer(service), server)
        control_pb2_grpc.add_ControlServiceServicer_to_server(ControlServicer(service), server)
        status_pb2_grpc.add_StatusServiceServicer_to_server(StatusServicer(StatusFeed(repo, self.bus, self.subscriber_buffer, estimator)), server)
        logs_pb2_grpc.add_LogServiceServicer_to_server(LogServicer(LogReader(repo, self.watchers)), server)
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(worker_servicer, server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [
            changes_pb2.DESCRIPTOR.services_by_name["ChangeService"].full_name,
            control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
            status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name,
            logs_pb2.DESCRIPTOR.services_by_name["LogService"].full_name,
            worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
        _check_port_free(self.listen)
        try:
            self.port = server.add_insecure_port(self.listen)
        except RuntimeError as exc:
            raise ListenError(f"cannot listen on {self.listen}: {exc}") from None
        if not self.port:
            raise ListenError(f"cannot listen on {self.listen}: the address is in use or not valid")
        await server.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self._worker_servicer = worker_servicer
        self._tasks.append(asyncio.get_running_loop().create_task(worker_servicer.watchdog(), name="watchdog"))
        if self.web_settings.enabled:
            web = WebServer(WebhookReceiver(service, self.web_settings.dialects), self.web_settings)
            await web.start()
            self.web = web
        for source in self.config.change_source:
            loop = PollingLoop(source, GitCli.for_poller(source, self.data_dir), service)
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
            if self._worker_servicer is not None:
                self._worker_servicer.close_all("coordinator shutting down")
            await self.server.stop(grace=2.0)
            self.server = None
        if self.service is not None:
            await asyncio.wait_for(self.service.aclose(), 10)
            self.service = None
        if self.dispatcher is not None:
            await asyncio.wait_for(self.dispatcher.aclose(), 10)
            self.dispatcher = None
        if self.notifications is not None:
            await asyncio.wait_for(self.notifications.aclose(), 10)
            self.notifications = None
        if self.repo is not None:
            await asyncio.wait_for(self.repo.aclose(), 10)
            self.repo = None


def _check_port_free(listen: str) -> None:
    """gRPC may share a busy port (SO_REUSEPORT); refuse clearly instead."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {listen}: {exc.strerror}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError:
            raise ListenError(
                f"cannot listen on {listen}: the port is already in use (another coordinator?)"
            ) from None

