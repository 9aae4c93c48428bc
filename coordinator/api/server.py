"""The coordinator's gRPC server: interceptors, channel options, the servicers, health and
reflection, and binding the listen address (with clear errors when it cannot)."""

from __future__ import annotations

import socket
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coordinator.api.admin import AdminServicer
from coordinator.api.auth import ChangeTokenInterceptor
from coordinator.api.errors import ErrorInterceptor
from coordinator.api.gate import Gate
from coordinator.api.interceptors.audit import AuditInterceptor
from coordinator.api.interceptors.auth import WORKER_MAX_MESSAGE, AuthInterceptor
from coordinator.api.interceptors.input import InputInterceptor
from coordinator.api.interceptors.limits import ClientLimits, LimitsInterceptor
from coordinator.api.servicers import ChangeServicer, ControlServicer, LogServicer, StatusServicer
from coordinator.api.tokens import AuditServicer, TokenServicer
from coordinator.api.try_servicer import TryServicer
from coordinator.api.workers import WorkerServicer
from coordinator.tls import CertificateSource
from protos.gantry.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    changes_pb2,
    changes_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
    try_pb2,
    try_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)

# The largest message a worker stream may carry; also what any caller may send when no auth is
# configured. With auth, each caller's own limit (Auth.max_message*) is checked by AuthInterceptor
# and the server accepts the largest of them.
MAX_MESSAGE = WORKER_MAX_MESSAGE
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.so_reuseport", 0),
    # Calls that arrived but that the asyncio server has not taken yet are "pending"; past
    # grpc's defaults (1 000 soft, 3 000 hard) grpc cancels a growing share of new calls before
    # any handler runs — with 2 000 Subscribe streams opened at once ~10% ended CANCELLED,
    # unlogged. Per-client open streams are capped by LimitsInterceptor instead.
    ("grpc.server.max_pending_requests", 50_000),
    ("grpc.server.max_pending_requests_hard_limit", 100_000),
]


class ListenError(Exception):
    pass


class GrpcServer:
    """Serves the given servicers on `listen` (HOST:PORT; port 0 picks one, see `port`).
    `change_token`: SubmitChanges requires it as a bearer token ("" : no token)."""

    def __init__(
        self,
        listen: str,
        *,
        changes: ChangeServicer,
        control: ControlServicer,
        status: StatusServicer,
        logs: LogServicer,
        workers: WorkerServicer,
        admin: AdminServicer | None = None,
        change_token: str = "",
        tries: TryServicer | None = None,
        tokens: TokenServicer,
        audit: AuditServicer,
        tls: CertificateSource | None = None,
        gate: Gate | None = None,
        limits: ClientLimits | None = None,
    ) -> None:
        self.listen = listen
        self.port = 0
        self._tls = tls
        self._workers = workers
        # Outermost first: malformed bytes, per-client limits, the audit log (which sees the
        # refusals), who is asking, the method's errors.
        # With auth configured the gate also accepts the change token (for submissions only).
        chain: list[grpc.aio.ServerInterceptor] = [
            InputInterceptor(), LimitsInterceptor(limits or ClientLimits()), AuditInterceptor(audit.store, time.time),
        ]
        if gate is not None:
            chain.append(AuthInterceptor(gate))
        elif change_token:
            chain.append(ChangeTokenInterceptor(change_token))
        chain.append(ErrorInterceptor())
        options = list(OPTIONS)
        if gate is not None and gate.auth.largest_message() > MAX_MESSAGE:
            options[0] = ("grpc.max_receive_message_length", gate.auth.largest_message())
        server = self._server = grpc.aio.server(interceptors=chain, options=options)
        changes_pb2_grpc.add_ChangeServiceServicer_to_server(changes, server)
        control_pb2_grpc.add_ControlServiceServicer_to_server(control, server)
        status_pb2_grpc.add_StatusServiceServicer_to_server(status, server)
        logs_pb2_grpc.add_LogServiceServicer_to_server(logs, server)
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(workers, server)
        if tries is not None:
            try_pb2_grpc.add_TryServiceServicer_to_server(tries, server)
        auth_pb2_grpc.add_TokenServiceServicer_to_server(tokens, server)
        auth_pb2_grpc.add_AuditServiceServicer_to_server(audit, server)
        if admin is not None:
            admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [
            changes_pb2.DESCRIPTOR.services_by_name["ChangeService"].full_name,
            control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
            status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name,
            logs_pb2.DESCRIPTOR.services_by_name["LogService"].full_name,
            worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
            *([try_pb2.DESCRIPTOR.services_by_name["TryService"].full_name] if tries is not None else []),
            auth_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name,
            auth_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            *([admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name] if admin is not None else []),
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)

    async def start(self) -> None:
        """Bind and serve; raises ListenError when the address cannot be had."""
        _check_port_free(self.listen)
        try:
            if self._tls is not None:
                self.port = self._server.add_secure_port(self.listen, self._tls.grpc_credentials())
            else:
                self.port = self._server.add_insecure_port(self.listen)
        except RuntimeError as exc:
            raise ListenError(f"cannot listen on {self.listen}: {exc}") from None
        if not self.port:
            raise ListenError(f"cannot listen on {self.listen}: the address is in use or not valid")
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        # End the worker streams first, so the server need not wait out its grace for them.
        self._workers.close_all("coordinator shutting down")
        await self._server.stop(grace=grace)


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
