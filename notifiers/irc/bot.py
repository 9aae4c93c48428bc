"""The running IRC bot: one connection, the commands, the watched builds, and the delivery of
announcements from the notification outbox.

Never in a build's path: the event listener only looks a build up in a small dict, and every
reply or announcement goes through the connection's bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from coordinator.domain.events import Event
from notifiers.base import DeliveryError
from notifiers.irc import protocol
from notifiers.irc.commands import BuildCommands, Commands
from notifiers.irc.connection import IrcConnection
from notifiers.irc.messages import Formatter
from notifiers.irc.notifier import IRC
from notifiers.irc.protocol import Message

log = logging.getLogger(__name__)

MAX_WATCHES = 200  # (build, who asked) pairs
MAX_COMMANDS = 8  # commands being answered at once; more are told to wait
ANNOUNCE_TIMEOUT = 120.0  # an announcement not written by then is retried by the outbox


class IrcBot:
    def __init__(self, config: IRC, builds: BuildCommands, url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.builds = builds
        self.fmt = Formatter(url=url, use_revisions=config.formatter.use_revisions,
                             show_blame_list=config.formatter.show_blame_list,
                             use_colors=config.formatter.use_colors)
        self.connection = IrcConnection(
            host=config.host, port=config.port, nick=config.nick, channels=config.channels,
            password=config.password_value, use_ssl=config.useSSL, lost_delay=config.lostDelay,
            failed_delay=config.failedDelay, line_rate=config.lineRate, line_burst=config.lineBurst,
            queue_size=config.sendQueueSize, on_message=self._on_message,
        )
        self.commands = Commands(builds, config.authz, self.fmt, clock, self._watch)
        self.watches: dict[tuple[str, int], set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(self) -> None:
        self.config.attach(self)
        self.connection.start()

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.config.attach(None)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.connection.aclose()

    # ---------------------------------------------------------------- announcements (outbox)

    async def announce(self, text: str) -> None:
        """Say `text` in every channel and to every pm_to_nicks nick; raises DeliveryError when
        the bot is not there (the outbox retries)."""
        conn = self.connection
        missing = [name for name, _ in self.config.channels if not conn.in_channel(name)]
        if not conn.registered.is_set():
            raise DeliveryError(f"not connected to the IRC server {self.config.host}:{self.config.port}")
        if missing:
            raise DeliveryError(f"not (yet) in {', '.join(missing)}")
        lines: list[str] = []
        for name, _ in self.config.channels:
            lines += protocol.messages("NOTICE" if self.config.noticeOnChannel else "PRIVMSG", name, text)
        for nick in self.config.pm_to_nicks:
            lines += protocol.messages("PRIVMSG", nick, text)
        try:
            await conn.send_and_wait(lines, ANNOUNCE_TIMEOUT)
        except TimeoutError:
            raise DeliveryError(f"not sent within {ANNOUNCE_TIMEOUT:g}s (flood control)") from None
        except ConnectionError as exc:
            raise DeliveryError(str(exc)) from exc

    # ---------------------------------------------------------------- commands

    def _on_message(self, msg: Message) -> None:
        target, text = msg.param(0), msg.param(1)
        me = self.connection.nick
        if protocol.is_channel(target):
            # In a channel only "botnick: command" (or "botnick, command") is for the bot.
            for prefix in (me + ":", me + ","):
                if protocol.lower(text[: len(prefix)]) == protocol.lower(prefix):
                    rest = text[len(prefix):]
                    break
            else:
                return
            reply_to = target
        elif protocol.lower(target) == protocol.lower(me):
            rest, reply_to = text, msg.nick
        else:
            return
        if len(self._tasks) >= MAX_COMMANDS:
            self._say(reply_to, "I am busy; ask again in a moment.")
            return
        task = asyncio.get_running_loop().create_task(self._answer(msg.nick, rest, reply_to))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, nick: str, text: str, reply_to: str) -> None:
        log.info("IRC: %s asks %r", nick, text[:100])
        try:
            replies = await self.commands.handle(nick, text, reply_to)
        except Exception:
            log.exception("IRC: the command %r of %s failed", text[:100], nick)
            replies = ["Sorry, that failed on my side (the coordinator's log says why)."]
        for reply in replies:
            self._say(reply_to, reply)

    def _say(self, target: str, text: str) -> None:
        for line in protocol.messages("PRIVMSG", target, text):
            self.connection.send(line)

    # ---------------------------------------------------------------- watch

    def _watch(self, builder: str, number: int, reply_to: str) -> bool:
        key = (builder, number)
        if sum(len(v) for v in self.watches.values()) >= MAX_WATCHES and reply_to not in self.watches.get(key, ()):
            return False
        self.watches.setdefault(key, set()).add(reply_to)
        # It may have finished between the command's look-up and now: check once more.
        self._spawn(self._recheck(builder, number))
        return True

    def on_event(self, event: Event) -> None:
        """An EventBus listener: only a dict look-up here, the rest in a task."""
        if self._closing or event.kind != "build.finished":
            return
        targets = self.watches.pop((event.builder, event.build_number), None)
        if targets:
            self._spawn(self._announce_watched(event.builder, event.build_number, targets))

    async def _recheck(self, builder: str, number: int) -> None:
        build = await self.builds.get_build(builder, number)
        if build.complete:
            targets = self.watches.pop((builder, number), None)
            if targets:
                await self._announce_watched(builder, number, targets)

    async def _announce_watched(self, builder: str, number: int, targets: Iterable[str]) -> None:
        build = await self.builds.get_build(builder, number)
        text = self.fmt.finished(build)
        for target in sorted(targets):
            self._say(target, text)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("IRC: announcing a watched build failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def start_bots(notifiers: Sequence[object], builds: BuildCommands, url: str = "") -> list[IrcBot]:
    """A running bot for each IRC(...) in the configuration's notifiers."""
    bots = [IrcBot(n, builds, url) for n in notifiers if isinstance(n, IRC)]
    for bot in bots:
        bot.start()
    return bots
