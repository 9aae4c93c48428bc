"""Connected workers: one session per open worker stream, and the registry of them.

The session is the protocol state of the worker stream without the wire: which commands run
there, which output was stored (sequence numbers, for exactly-once storage), which builds hold
its slots, and when it was last heard from. The API adapter feeds it decoded messages and sends
whatever it puts in its outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from coordinator.domain import events
from coordinator.domain.errors import Unauthenticated
from coordinator.domain.ports import WorkerStatusStore
from coordinator.domain.workers.commands import (
    Ack,
    CommandSpec,
    FileAck,
    FileCancel,
    FileChunk,
    FileCommand,
    Finished,
    Interrupt,
    Output,
    WorkerLost,
)
from coordinator.domain.workers.transfers import Transfers

log = logging.getLogger(__name__)

Outbound = CommandSpec | Interrupt | Ack | FileCommand | FileChunk | FileAck | FileCancel
OutputHandler = Callable[[int, bytes], Awaitable[None]]


@dataclass
class WorkerDecl:
    """A worker as configured: name, secret, how many builds at once, static properties."""

    name: str
    secret: str
    max_builds: int = 1
    properties: dict[str, object] = field(default_factory=dict)


@dataclass
class _Running:
    spec: CommandSpec
    on_output: OutputHandler
    done: asyncio.Future[Finished]
    stored_seq: int = 0  # highest seq accepted for storage
    durable_seq: int = 0  # highest seq whose storage completed: what an ack may promise
    pending: set[asyncio.Future[None]] = field(default_factory=set)


class WorkerSession:
    def __init__(
        self,
        name: str,
        max_builds: int,
        info: dict[str, str],
        send: Callable[[Outbound], None],
        now: Callable[[], float],
        window: int = 32,
    ) -> None:
        self.name = name
        self.max_builds = max_builds
        self.info = info
        self._send = send
        self._now = now
        self.connected_at = now()
        self.last_heard = self.connected_at
        self.builds: set[str] = set()  # "builder/number" of builds holding a slot
        self._running: dict[str, _Running] = {}
        self.closed = False
        self.closed_reason = ""
        # File primitives and transfers (mkdir, stat, upload, download, ...).
        self.files = Transfers(send, window)

    # -- slots
    @property
    def free_slots(self) -> int:
        return 0 if self.closed else self.max_builds - len(self.builds)

    # -- commands
    async def run_command(self, spec: CommandSpec, on_output: OutputHandler) -> Finished:
        """Run a command on the worker; output goes to `on_output` (which resolves once stored).
        Raises WorkerLost if the worker goes away first."""
        if self.closed:
            raise WorkerLost(self.closed_reason)
        fut: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self._running[spec.command_id] = _Running(spec, on_output, fut)
        self._send(spec)
        try:
            return await fut
        finally:
            self._running.pop(spec.command_id, None)

    def interrupt(self, command_id: str, reason: str) -> None:
        if command_id in self._running and not self.closed:
            self._send(Interrupt(command_id, reason))

    # -- what the worker said
    def heard(self) -> None:
        self.last_heard = self._now()

    def on_output(self, msg: Output) -> None:
        run = self._running.get(msg.command_id)
        if run is None:
            return  # output of a command we no longer track (e.g. already failed)
        if msg.seq <= run.stored_seq:
            # A resend: store nothing; acknowledge again only what is already stored (the first
            # copy's own ack follows once its store completes).
            if run.durable_seq:
                self._send(Ack(msg.command_id, run.durable_seq))
            return
        run.stored_seq = msg.seq
        stored = asyncio.ensure_future(run.on_output(msg.channel, msg.data))
        run.pending.add(stored)

        def acked(f: asyncio.Future[None], cid: str = msg.command_id, seq: int = msg.seq) -> None:
            run.pending.discard(f)
            if f.cancelled() or f.exception() is not None:
                if not f.cancelled():
                    log.error("storing output of %s failed: %s", cid, f.exception())
                return
            run.durable_seq = max(run.durable_seq, seq)
            if not self.closed:
                self._send(Ack(cid, seq))

        stored.add_done_callback(acked)

    def on_finished(self, msg: Finished) -> None:
        run = self._running.get(msg.command_id)
        if run is None:
            return

        def settle(_: object = None) -> None:
            if not run.done.done():
                run.done.set_result(msg)

        # The command is done only once all its output is stored.
        if run.pending:
            asyncio.gather(*run.pending, return_exceptions=True).add_done_callback(settle)
        else:
            settle()

    def close(self, reason: str) -> None:
        """The stream ended: every running command fails with WorkerLost."""
        if self.closed:
            return
        self.closed = True
        self.closed_reason = reason
        self.files.close(f"worker {self.name} lost: {reason}")
        for run in list(self._running.values()):
            if not run.done.done():
                run.done.set_exception(WorkerLost(f"worker {self.name} lost: {reason}"))


class WorkerRegistry:
    """Configured workers, and the sessions of those connected now (each connect and disconnect
    recorded, with its event)."""

    def __init__(self, now: Callable[[], float], store: WorkerStatusStore) -> None:
        self._now = now
        self.store = store
        self.decls: dict[str, WorkerDecl] = {}
        self.sessions: dict[str, WorkerSession] = {}
        self.on_change: Callable[[], None] = lambda: None

    def configure(self, decls: list[WorkerDecl]) -> None:
        self.decls = {d.name: d for d in decls}

    def authenticate(self, name: str, secret: str) -> WorkerDecl:
        """The worker's declaration if `secret` is its secret. A configured secret may be given
        as ``sha256:HEX`` (its SHA-256), so master.py need not hold it in clear."""
        import hashlib
        import hmac

        decl = self.decls.get(name)
        # Compare against a dummy when the name is unknown, and always hash, so timing and
        # message never reveal whether the worker exists or how its secret is stored.
        expected = decl.secret if decl is not None else "sha256:" + "0" * 64
        digest = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
        presented = digest if expected.startswith("sha256:") else secret
        if not hmac.compare_digest(expected.encode(), presented.encode()) or decl is None:
            raise Unauthenticated("wrong worker name or secret")
        return decl

    async def connect(self, session: WorkerSession) -> WorkerSession | None:
        """Record the session and attach it; returns the one it replaces (to be closed)."""
        at = self._now()
        await self.store.worker_connected(
            session.name, session.info, at, [events.worker_connected(session.name, session.info, at)]
        )
        return self.attach(session)

    async def disconnect(self, session: WorkerSession, reason: str) -> bool:
        """Detach the session and record that, unless a newer one replaced it; whether it did."""
        if not self.detach(session):
            return False
        at = self._now()
        await self.store.worker_disconnected(session.name, at, [events.worker_disconnected(session.name, reason, at)])
        return True

    def attach(self, session: WorkerSession) -> WorkerSession | None:
        """Register a new session; returns the previous one for that name (to be closed)."""
        old = self.sessions.get(session.name)
        self.sessions[session.name] = session
        self.on_change()
        return old

    def detach(self, session: WorkerSession) -> bool:
        if self.sessions.get(session.name) is session:
            del self.sessions[session.name]
            self.on_change()
            return True
        return False

    def silent_since(self, deadline: float) -> list[WorkerSession]:
        """The sessions not heard from since `deadline`: the ones to drop as lost."""
        return [s for s in self.sessions.values() if s.last_heard < deadline]
