"""Fixtures of the notifier tests: a real SMTP server (aiosmtpd) on loopback, a test TLS
certificate made at test time, storage (memory, SQLite, PostgreSQL) with its event bus, and a
helper that runs a build through storage as the coordinator does (so the same events as in
production are stored)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from coordinator.domain import events
from coordinator.domain.builds import bookkeeping
from coordinator.domain.events import EventBus
from coordinator.domain.model import CaseResult, Change, LogChunk, NewBuildset, SourceStamp
from coordinator.domain.results import Result
from coordinator.storage.memory import MemoryStorage
from coordinator.storage.sql import SqlStorage, database_url, open_storage
from notifiers.base import Notifier
from notifiers.service import NotificationService
from tests import pg
from tests.e2e.conftest import cluster  # noqa: F401 - the e2e `cluster` fixture, reused here
from tests.net import port_of, reserve_port
from tests.notifiers.fakes import services_fake  # noqa: F401 - the forges' and chats' stand-ins

TIMEOUT = 30.0


async def eventually(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll a (sync or async) check until truthy, bounded by a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s")
        await asyncio.sleep(0.02)


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpServer:
    port: int
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        auth = session.auth_data
        login = auth.login.decode() if auth is not None and hasattr(auth, "login") else None
        with self.server.lock:
            self.server.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), msg, login)  # type: ignore[arg-type]
            )
        return "250 OK"


class _HeldSocketController(Controller):
    """aiosmtpd serving on a socket the test already holds (see tests.net): the port it was
    given is the port it serves, whoever else runs on the machine."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port_of(sock), **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def start_smtp(server: SmtpServer, sock: socket.socket, **kwargs: Any) -> SmtpServer:
    """Start aiosmtpd on `sock`, a port reserved with tests.net.reserve_port (kwargs:
    tls_context, require_starttls, auth...)."""
    controller = _HeldSocketController(_Handler(server), sock, **kwargs)
    controller.start()
    server.controller = controller
    return server


def authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


@pytest.fixture
def smtp_servers() -> Iterator[Callable[..., SmtpServer]]:
    """A factory of SMTP servers; all stopped at the end."""
    started: list[SmtpServer] = []

    def make(sock: socket.socket | None = None, **kwargs: Any) -> SmtpServer:
        """A server on `sock` (a port reserved earlier, e.g. one a notifier already tried), or
        on a newly reserved port."""
        # The server gets its own descriptor of the reserved socket: the caller's reservation
        # may be closed first (fixture teardown order) without pulling the socket from under it.
        sock = sock.dup() if sock is not None else reserve_port()
        server = start_smtp(SmtpServer(port_of(sock)), sock, **kwargs)
        started.append(server)
        return server

    yield make
    for s in started:
        if s.controller is not None:
            s.controller.stop()


@pytest.fixture
def reserved() -> Iterator[socket.socket]:
    """A reserved loopback port (tests.net) where nothing listens yet and nobody else can
    listen; `smtp_servers(reserved)` starts a server on it later."""
    with reserve_port() as sock:
        yield sock


@dataclass
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for localhost / 127.0.0.1, made now with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    files = TlsFiles(d / "cert.pem", d / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class Store:
    db: SqlStorage | MemoryStorage
    bus: EventBus
    url: str  # "" for memory


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Fresh storage in memory, on SQLite and on PostgreSQL (see `tests.pg` for when that skips)."""
    bus = EventBus()
    pg_name, url = "", ""
    db: SqlStorage | MemoryStorage
    if request.param == "memory":
        db = MemoryStorage(bus.publish)
    else:
        if request.param == "sqlite":
            url = database_url(None, tmp_path)
        else:
            await pg.require()
            pg_name = await pg.create_database("gantry_notify")
            url = database_url(pg.url_of(pg_name), tmp_path)
        db = await open_storage(url, bus.publish)
    bus.last_id = await db.events.last_event_id()
    try:
        yield Store(db, bus, url)
    finally:
        await db.aclose()
        if pg_name:
            await pg.drop_database(pg_name)


@pytest.fixture
async def mem() -> AsyncIterator[Store]:
    """In-memory storage (for tests of what notifiers send, not of how the outbox stores)."""
    bus = EventBus()
    db = MemoryStorage(bus.publish)
    yield Store(db, bus, "")
    await db.aclose()


@pytest.fixture
async def mem_services(mem: Store) -> AsyncIterator[Callable[..., NotificationService]]:
    """Notification services on `mem`, fast retries, url https://ci.example.org; closed at the end."""
    made: list[NotificationService] = []

    def make(notifiers: list[Notifier], **kw: Any) -> NotificationService:
        svc = NotificationService(
            builds=mem.db.builds, logs=mem.db.logs, events=mem.db.events, outbox=mem.db.outbox,
            bus=mem.bus, notifiers=notifiers, buildsets=mem.db.buildsets, url="https://ci.example.org",
            **{"retry_base": 0.05, "retry_cap": 0.2, "poll_interval": 0.05, **kw})
        made.append(svc)
        return svc

    yield make
    for svc in made:
        await svc.aclose()


async def settled(store: Store, count: int) -> list[Any]:
    """The `count` notifications of `store`, once none is pending any more (oldest first)."""
    async def done() -> list[Any]:
        got = await store.db.outbox.list_notifications(100)
        return got if len(got) == count and all(n.state != "pending" for n in got) else []

    return sorted(await eventually(done, what=f"{count} notifications settled"), key=lambda n: n.id)


_clock = [1_700_000_000.0]


def tick() -> float:
    _clock[0] += 1.0
    return _clock[0]


async def run_build(
    db: SqlStorage | MemoryStorage,
    builder: str,
    result: Result,
    author: str = "Jane Doe <jane@example.org>",
    log_text: str = "",
    step_name: str = "test",
    buildset_id: int | None = None,
    sourcestamps: list[SourceStamp] | None = None,
    cases: Sequence[CaseResult] = (),
) -> tuple[int, int]:
    """A whole build through storage, as the coordinator does it: change, buildset, request,
    claim, start, one step with a stdio log, finish. Returns (buildset id, number)."""
    if buildset_id is None:
        at = tick()
        ids, _ = await db.changes.add_changes(
            [Change(author=author, revision=f"{builder}{tick():.0f}", branch="main",
                    repository="https://example.org/r.git", comments="fix the frobnicator")], "", at, [],
            events=lambda stored: [events.change_added(c, at) for c in stored])
        at = tick()
        bs = NewBuildset(reason="test", scheduler="s", builders=[builder],
                         sourcestamps=sourcestamps or [SourceStamp(branch="main")], change_ids=ids)
        buildset_id, _ = await db.buildsets.add_buildset(
            bs, at, None,
            events=lambda bs_id, requests: [
                events.buildset_added(bs_id, bs, at), *(events.buildrequest_added(r, at) for r in requests)])
    request = next(r for r in await db.buildsets.unclaimed_requests()
                   if r.buildset_id == buildset_id and r.builder == builder)
    assert await db.buildsets.claim_request(request.id, "test", tick())
    build = await db.builds.start_build(request, "w1", [], tick(), [], events=lambda b: [events.build_started(b)])
    (step,) = await db.builds.add_steps(build, [step_name])
    at = tick()
    await db.builds.start_step(build, step, at, [events.step_started(build, step, at)])
    step.started_at = at
    info = await db.logs.add_log(step, "stdio", "s")
    if log_text:
        await db.logs.append_log(info.id, 0, LogChunk(1, log_text.encode(), 0, 0))
    await db.logs.finish_log(info.id)
    if cases:
        await db.builds.add_test_results(build, step, "", cases)
    state, at = result.name.lower(), tick()
    await db.builds.finish_step(build, step, result, state, at, [],
                                [events.step_finished(build, step, result, state, at)])
    await bookkeeping.finish_build(db.book, build, result, state, tick())
    return buildset_id, build.number
