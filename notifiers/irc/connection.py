"""One IRC client connection, kept up: connect, register, join, answer PING, reconnect with
backoff, and send through a bounded, rate-limited queue.

Why hand-written on asyncio streams: the Python IRC libraries are either unmaintained (pydle's
last release is from 2022), built around a synchronous reactor (jaraco's ``irc``), or leave out
what a bot in a build system needs most - a *bounded* send queue with flood control and a way
to know that a line was written (so an announcement that did not go out is retried by the
notification outbox). The protocol subset a bot uses is small (see :mod:`notifiers.irc.protocol`).

Flood control is a token bucket: up to ``line_burst`` lines at once, then one line every
``line_rate`` seconds (servers such as ngircd and Libera's disconnect clients that send
faster, "Excess Flood"). The queue holds at most ``queue_size`` lines; a full queue refuses
more instead of growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from notifiers.irc import protocol
from notifiers.irc.protocol import Message

log = logging.getLogger(__name__)

RPL_WELCOME = "001"
ERR_NICKNAMEINUSE = "433"
ERR_ERRONEUSNICKNAME = "432"
# channel is full, invite only, banned, bad key
JOIN_REFUSED = frozenset({"471", "473", "474", "475"})


class NotConnected(ConnectionError):
    """The bot is not on the server (or not in the channel) right now."""


class QueueFull(ConnectionError):
    """More lines are waiting to be sent than the queue holds."""


@dataclass
class _Out:
    line: str
    done: asyncio.Future[None] | None = None


class IrcConnection:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        nick: str,
        channels: Sequence[tuple[str, str]] = (),  # (name, key or "")
        password: str | Callable[[], str | None] | None = None,  # NickServ IDENTIFY, as Buildbot does
        use_ssl: bool = False,
        realname: str = "Gantry build bot",
        lost_delay: float = 1.0,
        failed_delay: float = 60.0,
        line_rate: float = 1.0,
        line_burst: int = 4,
        queue_size: int = 100,
        ping_interval: float = 120.0,
        connect_timeout: float = 30.0,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.wanted_nick = nick
        self.nick = nick  # what the server accepted (a '_' is added while the nick is taken)
        self.channels = list(channels)
        self.password = password
        self.use_ssl = use_ssl
        self.realname = realname
        self.lost_delay = lost_delay
        self.failed_delay = failed_delay
        self.line_rate = line_rate
        self.line_burst = line_burst
        self.queue_size = queue_size
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.on_message = on_message
        self.registered = asyncio.Event()
        self.joined: set[str] = set()  # lower-cased channel names we are in
        self.sessions = 0  # successful registrations so far
        self._queue: asyncio.Queue[_Out] = asyncio.Queue(queue_size)
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"irc-{self.host}:{self.port}")

    async def aclose(self, message: str = "coordinator shutting down") -> None:
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        writer = self._writer
        if writer is not None and self.registered.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(_encode(protocol.line("QUIT", message)))
                await asyncio.wait_for(writer.drain(), 2)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # ---------------------------------------------------------------- sending

    def in_channel(self, channel: str) -> bool:
        return protocol.lower(channel) in self.joined

    def send(self, line: str) -> bool:
        """Queue a line without waiting (command replies); False when off line or the queue is full."""
        if not self.registered.is_set():
            return False
        try:
            self._queue.put_nowait(_Out(line))
        except asyncio.QueueFull:
            log.warning("IRC: send queue full (%d lines); dropping %r", self.queue_size, line[:60])
            return False
        return True

    async def send_and_wait(self, lines: Sequence[str], timeout: float) -> None:
        """Queue `lines` and wait until each was written to the server; raises NotConnected,
        QueueFull or TimeoutError (nothing is queued when the lines do not all fit)."""
        if not self.registered.is_set():
            raise NotConnected(f"not connected to {self.host}:{self.port}")
        if self.queue_size - self._queue.qsize() < len(lines):
            raise QueueFull(f"the send queue is full ({self.queue_size} lines)")
        loop = asyncio.get_running_loop()
        items = [_Out(line, loop.create_future()) for line in lines]
        for item in items:
            self._queue.put_nowait(item)
        waits = [item.done for item in items if item.done is not None]
        try:
            async with asyncio.timeout(timeout):
                for w in waits:
                    await w
        finally:
            for w in waits:
                if not w.done():
                    w.cancel()  # the writer skips it
                elif not w.cancelled():
                    w.exception()  # retrieved: one failure is reported, by the await above

    # ---------------------------------------------------------------- the connection

    async def _run(self) -> None:
        delay = self.lost_delay
        while not self._closing:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        self.host, self.port, ssl=ssl.create_default_context() if self.use_ssl else None
                    ),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                log.warning("IRC: cannot connect to %s:%d (%s); retrying in %.1fs",
                            self.host, self.port, exc or type(exc).__name__, delay)
                await self._pause(delay)
                delay = min(delay * 2, self.failed_delay)
                continue
            sessions = self.sessions
            try:
                await self._session(reader, writer)
                reason = "the server closed the connection"
            except (OSError, ConnectionError, ssl.SSLError) as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                self._drop(writer)
            if self._closing:
                return
            if self.sessions > sessions:
                delay = self.lost_delay  # it worked for a while: start the backoff again
            log.warning("IRC: disconnected from %s:%d (%s); reconnecting in %.1fs",
                        self.host, self.port, reason, delay)
            await self._pause(delay)
            delay = min(delay * 2, self.failed_delay)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.nick = self.wanted_nick
        writer_task: asyncio.Task[None] | None = None
        await self._write_now(writer, protocol.line("NICK", self.nick))
        await self._write_now(writer, protocol.line("USER", self.wanted_nick[:9], "0", "*", self.realname))
        pinged = False
        try:
            while not self._closing:
                try:
                    raw = await asyncio.wait_for(reader.readline(), self.ping_interval)
                except TimeoutError:
                    if pinged:
                        raise ConnectionError(f"no answer from the server for {2 * self.ping_interval:g}s") from None
                    pinged = True
                    await self._write_now(writer, protocol.line("PING", "gantry"))
                    continue
                if not raw:
                    return
                pinged = False
                msg = protocol.parse(raw.decode("utf-8", "replace"))
                if msg is None:
                    continue
                if msg.command == RPL_WELCOME and writer_task is None:
                    await self._welcomed(writer, msg)
                    writer_task = asyncio.get_running_loop().create_task(self._write_loop(writer))
                else:
                    await self._handle(writer, msg)
        finally:
            if writer_task is not None:
                writer_task.cancel()
                await asyncio.gather(writer_task, return_exceptions=True)

    async def _welcomed(self, writer: asyncio.StreamWriter, msg: Message) -> None:
        self.nick = msg.param(0) or self.nick
        self.sessions += 1
        log.info("IRC: registered on %s:%d as %s", self.host, self.port, self.nick)
        try:
            password = self.password() if callable(self.password) else self.password
        except Exception as exc:  # a missing secret file: say so, stay connected without it
            log.error("IRC: cannot read the NickServ password: %s", exc)
            password = None
        if password:
            await self._write_now(writer, protocol.line("PRIVMSG", "NickServ", f"IDENTIFY {password}"))
        for name, key in self.channels:
            await self._write_now(writer, protocol.line("JOIN", name, *([key] if key else [])))
        self.registered.set()

    async def _handle(self, writer: asyncio.StreamWriter, msg: Message) -> None:
        cmd = msg.command
        if cmd == "PING":
            await self._write_now(writer, protocol.line("PONG", *msg.params))
        elif cmd == ERR_NICKNAMEINUSE and not self.registered.is_set():
            self.nick = self.nick + "_"
            await self._write_now(writer, protocol.line("NICK", self.nick))
        elif cmd == ERR_ERRONEUSNICKNAME:
            log.error("IRC: the server refuses the nick %r: %s", self.nick, msg.params[-1] if msg.params else "")
        elif cmd == "NICK" and protocol.lower(msg.nick) == protocol.lower(self.nick):
            self.nick = msg.param(0)
        elif cmd == "JOIN" and protocol.lower(msg.nick) == protocol.lower(self.nick):
            self.joined.add(protocol.lower(msg.param(0)))
            log.info("IRC: joined %s", msg.param(0))
        elif cmd in ("PART", "KICK") and protocol.lower(
            msg.param(1) if cmd == "KICK" else msg.nick
        ) == protocol.lower(self.nick):
            channel = msg.param(0)
            self.joined.discard(protocol.lower(channel))
            log.warning("IRC: %s %s (%s)", "kicked from" if cmd == "KICK" else "left", channel, msg.params[-1])
            key = self._key_of(channel)
            if key is not None:  # a configured channel: go back (through the rate limit)
                self.send(protocol.line("JOIN", channel, *([key] if key else [])))
        elif cmd in JOIN_REFUSED:
            log.warning("IRC: cannot join %s: %s", msg.param(1), msg.params[-1] if msg.params else "")
        elif cmd == "INVITE" and self._key_of(msg.param(1)) is not None:
            # Invited into a configured channel we could not join (+i): go in now.
            key = self._key_of(msg.param(1)) or ""
            self.send(protocol.line("JOIN", msg.param(1), *([key] if key else [])))
        elif cmd == "ERROR":
            log.warning("IRC: the server says: %s", msg.param(0))
        elif cmd == "PRIVMSG" and self.on_message is not None and self.registered.is_set():
            try:
                self.on_message(msg)
            except Exception:  # a bug in one command must not drop the connection
                log.exception("IRC: handling %r failed", msg)

    def _key_of(self, channel: str) -> str | None:
        """The key of a configured channel ("" without one); None for a channel not configured."""
        return next((k for n, k in self.channels if protocol.lower(n) == protocol.lower(channel)), None)

    async def _write_now(self, writer: asyncio.StreamWriter, line: str) -> None:
        """Protocol lines (registration, PONG) skip the queue: they must not wait behind chatter."""
        writer.write(_encode(line))
        await writer.drain()

    async def _write_loop(self, writer: asyncio.StreamWriter) -> None:
        tokens = float(self.line_burst)
        last = time.monotonic()
        while True:
            item = await self._queue.get()
            if item.done is not None and item.done.done():
                continue  # its sender gave up waiting
            now = time.monotonic()
            tokens = min(float(self.line_burst), tokens + (now - last) / self.line_rate)
            last = now
            if tokens < 1:
                # Flood control: this wait is the rate limit itself.
                await asyncio.sleep((1 - tokens) * self.line_rate)
                tokens, last = 1.0, time.monotonic()
            tokens -= 1
            try:
                writer.write(_encode(item.line))
                await writer.drain()
            except (OSError, RuntimeError) as exc:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(NotConnected(f"connection lost while sending: {exc}"))
                raise
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        """The connection is gone: nothing queued for it will be sent."""
        self._writer = None
        self.registered.clear()
        self.joined.clear()
        writer.close()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item.done is not None and not item.done.done():
                item.done.set_exception(NotConnected("the connection to the IRC server was lost"))


def _encode(line: str) -> bytes:
    return line.encode("utf-8", "replace")[: protocol.MAX_LINE - 2] + b"\r\n"
