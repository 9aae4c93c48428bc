"""The IRC bot against a real IRC server (ngircd): it joins, answers commands in the channel
and in private, refuses force/stop to nicks that are not allowed, announces, stays within its
send queue, and comes back after the server restarts. The coordinator side is an in-memory
implementation of the bot's port (BuildCommands); test_irc_e2e.py runs the real one."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from coordinator.domain import events
from coordinator.domain.errors import NotFound
from coordinator.domain.events import EventBus
from coordinator.domain.model import Build, Change
from coordinator.domain.ports import Notification
from coordinator.domain.results import Result
from coordinator.storage.memory import MemoryStorage
from notifiers.base import DeliveryError
from notifiers.irc import IRC
from notifiers.irc.bot import IrcBot
from notifiers.irc.connection import QueueFull
from notifiers.service import NotificationService
from tests.net import reserve_port
from tests.notifiers.conftest import eventually, run_build
from tests.notifiers.ircd import IrcClient, IrcServer

pytestmark = pytest.mark.timeout(120)
BOT = "gantrybot"
CHANNEL = "#builds"


class MemoryBuilds:
    """BuildCommands in memory: builder `full` with finished build #2 and running build #3."""

    def __init__(self) -> None:
        self.builds: dict[str, dict[int, Build]] = {"full": {}, "docs": {}}
        self.add(Build(id=2, builder="full", number=2, worker="w1", build_request_id=2, buildset_id=2,
                       started_at=1000.0, finished_at=1060.0, result=Result.FAILURE, state_string="failed test",
                       changes=[Change(author="jane", revision="abc123", comments="c", branch="main", repository="r")]))
        self.add(Build(id=3, builder="full", number=3, worker="w1", build_request_id=3, buildset_id=3,
                       started_at=1100.0, state_string="compiling"))
        self.forced: list[tuple[str, str, str]] = []
        self.stopped: list[tuple[str, int, str]] = []

    def add(self, b: Build) -> None:
        self.builds[b.builder][b.number] = b

    def _of(self, builder: str) -> dict[int, Build]:
        if builder not in self.builds:
            raise NotFound(f"no builder named {builder!r} (configured builders: {', '.join(sorted(self.builds))})")
        return self.builds[builder]

    def builder_names(self) -> list[str]:
        return list(self.builds)

    async def recent_builds(self, builder: str, limit: int) -> list[Build]:
        return sorted(self._of(builder).values(), key=lambda b: -b.number)[:limit]

    async def get_build(self, builder: str, number: int) -> Build:
        found = self._of(builder).get(number)
        if found is None:
            raise NotFound(f"builder {builder!r} has no build #{number}")
        return found

    def pending_count(self, builder: str) -> int:
        return 0

    async def force(self, builder: str, reason: str, owner: str) -> tuple[int, int]:
        self._of(builder)
        self.forced.append((builder, reason, owner))
        return 7, 9

    async def stop(self, builder: str, number: int, reason: str) -> bool:
        build = await self.get_build(builder, number)
        if build.complete:
            return False
        self.stopped.append((builder, number, reason))
        return True


@pytest.fixture
async def held() -> AsyncIterator[socket.socket]:
    sock = reserve_port()
    yield sock
    sock.close()


@pytest.fixture
async def ircd(held: socket.socket, tmp_path: Path) -> AsyncIterator[IrcServer]:
    server = IrcServer(held, tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def people(ircd: IrcServer) -> AsyncIterator[Callable[..., Any]]:
    made: list[IrcClient] = []

    async def person(nick: str, channel: str | None = CHANNEL) -> IrcClient:
        client = await IrcClient(nick, ircd.port).connect()
        made.append(client)
        if channel:
            await client.join(channel)
        return client

    yield person
    for c in made:
        await c.aclose()


@pytest.fixture
async def bots() -> AsyncIterator[Callable[..., IrcBot]]:
    made: list[IrcBot] = []

    def make(port: int, builds: Any = None, **kw: Any) -> IrcBot:
        options: dict[str, Any] = dict(channels=[CHANNEL], authz={("force", "stop"): ["alice"]},
                                       useColors=False, lostDelay=0.1, failedDelay=0.5, lineRate=0.05)
        config = IRC("127.0.0.1", BOT, port=port, **{**options, **kw})
        assert config.errors == []
        bot = IrcBot(config, builds or MemoryBuilds(), url="https://ci.example.org", clock=lambda: 1660.0)
        bot.start()
        made.append(bot)
        return bot

    yield make
    for b in made:
        await b.aclose()


async def bot_joined(person: IrcClient, since: int = 0) -> None:
    await person.wait(lambda m: m.command == "JOIN" and m.nick == BOT, "the bot joining", since=since)


async def test_commands_in_the_channel_and_in_private(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    alice = await people("alice")
    builds = MemoryBuilds()
    bots(ircd.port, builds)
    await bot_joined(alice)

    alice.say(CHANNEL, "just chatting, not for the bot")
    mark = alice.mark()
    alice.say(CHANNEL, f"{BOT}: hello")
    first = await alice.wait(lambda m: m.nick == BOT and m.command == "PRIVMSG", "a reply", since=mark)
    assert (first.params[0], first.text) == (CHANNEL, "yes?")  # the chatter got no answer

    alice.say(CHANNEL, f"{BOT}: status full")
    await alice.said(BOT, CHANNEL, "`full`: running #3 (compiling)")
    alice.say(CHANNEL, f"{BOT}: status")
    await alice.said(BOT, CHANNEL, "`docs`: idle")
    alice.say(CHANNEL, f"{BOT}, last full")
    await alice.said(BOT, CHANNEL, "`full`: last build #2 failed (10 minutes ago): failed test")
    alice.say(CHANNEL, f"{BOT}: last nosuch")
    await alice.said(BOT, CHANNEL, "Sorry: no builder named 'nosuch'")
    alice.say(CHANNEL, f"{BOT}: help force")
    await alice.said(BOT, CHANNEL, "Usage: force [build] BUILDER [REASON]")
    alice.say(CHANNEL, f"{BOT}: frobnicate")
    await alice.said(BOT, CHANNEL, "I don't get this 'frobnicate'")

    # Private messages are answered in private.
    alice.say(BOT, "last full")
    await alice.said(BOT, "alice", "`full`: last build #2 failed")

    alice.say(CHANNEL, f"{BOT}: force full the tests need a rerun")
    await alice.said(BOT, CHANNEL, "Force build successfully requested (buildset 7, request 9).")
    assert builds.forced == [("full", "forced: by IRC user alice: the tests need a rerun", "alice")]

    alice.say(CHANNEL, f"{BOT}: stop full 3 wrong branch")
    await alice.said(BOT, CHANNEL, "Build #3 of `full` (https://ci.example.org/builders/full/builds/3) interrupted.")
    assert builds.stopped == [("full", 3, "stopped: by IRC user alice: wrong branch")]
    alice.say(CHANNEL, f"{BOT}: stop full 2")
    await alice.said(BOT, CHANNEL, "Sorry, Build #2 of `full`")


async def test_watch_announces_the_end_of_the_running_build(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    alice = await people("alice")
    builds = MemoryBuilds()
    bot = bots(ircd.port, builds)
    await bot_joined(alice)
    alice.say(CHANNEL, f"{BOT}: watch docs")
    await alice.said(BOT, CHANNEL, "There are no currently running builds.")
    alice.say(CHANNEL, f"{BOT}: watch full")
    await alice.said(BOT, CHANNEL, "Watching Build #3 of `full`")
    assert bot.watches == {("full", 3): {CHANNEL}}

    running = builds.builds["full"][3]
    running.finished_at, running.result, running.state_string = 1200.0, Result.FAILURE, "failed compile"
    bot.on_event(events.build_finished(running, Result.FAILURE, "failed compile", 1200.0))
    said = await alice.said(BOT, CHANNEL, "failed: failed compile")
    assert said.text == ("Build #3 of `full` (https://ci.example.org/builders/full/builds/3) "
                         "failed: failed compile")
    assert bot.watches == {}


async def test_force_and_stop_are_refused_to_nicks_not_allowed(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    mallory = await people("mallory")
    builds = MemoryBuilds()
    bots(ircd.port, builds)
    await bot_joined(mallory)
    mallory.say(CHANNEL, f"{BOT}: force full")
    await mallory.said(BOT, CHANNEL, "Sorry mallory, you are not allowed to force.")
    mallory.say(BOT, "stop full 3")  # not in private either
    await mallory.said(BOT, "mallory", "Sorry mallory, you are not allowed to stop.")
    mallory.say(CHANNEL, f"{BOT}: status full")  # reading is for everyone
    await mallory.said(BOT, CHANNEL, "`full`: running #3")
    assert builds.forced == [] and builds.stopped == []


async def test_announcements_reach_channels_and_nicks_and_survive_a_server_restart(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    alice = await people("alice")
    bob = await people("bob", channel=None)
    bot = bots(ircd.port, pm_to_nicks=["bob"], noticeOnChannel=True)
    await bot_joined(alice)
    await bot.announce("Build #4 of `full` failed: failed test")
    notice = await alice.said(BOT, CHANNEL, "Build #4 of `full` failed")
    assert notice.command == "NOTICE"
    await bob.said(BOT, "bob", "Build #4 of `full` failed")

    await ircd.stop()
    await eventually(lambda: not bot.connection.registered.is_set(), what="the bot noticing the server went")
    with pytest.raises(DeliveryError, match="not connected"):
        await bot.announce("lost?")

    await ircd.start()  # same port: the bot reconnects by itself, with its backoff
    carol = await IrcClient("carol", ircd.port).connect()
    try:
        await carol.join(CHANNEL)
        await eventually(lambda: bot.connection.in_channel(CHANNEL), what="the bot back in the channel")
        assert bot.connection.sessions == 2
        await bot.announce("Build #5 of `full` completed successfully.")
        await carol.said(BOT, CHANNEL, "Build #5 of `full` completed successfully.")
    finally:
        await carol.aclose()


async def test_long_announcements_are_split_and_the_send_queue_is_bounded(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    alice = await people("alice")
    bot = bots(ircd.port, sendQueueSize=8, lineBurst=2)
    await bot_joined(alice)
    paragraphs = [f"line {i} " + "x" * 500 for i in range(3)]  # each over the line limit
    mark = alice.mark()
    await bot.announce("\n".join(paragraphs))

    def from_bot() -> list[str]:
        return [m.text for m in alice.lines[mark:] if m.nick == BOT and m.command == "PRIVMSG"]

    await eventually(lambda: len(from_bot()) >= 6, what="the announcement's 6 lines")
    got = from_bot()
    assert len(got) == 6 and all(len(t.encode()) < 512 for t in got)
    assert [got[i] + got[i + 1] for i in (0, 2, 4)] == paragraphs  # in order, nothing lost

    too_many = [f"PRIVMSG {CHANNEL} :{i}" for i in range(9)]
    with pytest.raises(QueueFull):
        await bot.connection.send_and_wait(too_many, 10)
    # Nothing of a refused batch was queued; a batch that fits goes out in order.
    mark = alice.mark()
    await bot.connection.send_and_wait([f"PRIVMSG {CHANNEL} :burst {i}" for i in range(8)], 30)
    for i in range(8):
        await alice.said(BOT, CHANNEL, f"burst {i}", since=mark)
    bursts = [m.text for m in alice.lines[mark:] if m.nick == BOT]
    assert bursts == [f"burst {i}" for i in range(8)]



async def test_an_announcement_waits_in_the_outbox_until_the_bot_is_in_the_channel(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot]
) -> None:
    """Through the notification service on real storage: the bot cannot join an invite-only
    channel, so the failing build's announcement stays pending with the reason; invited, the
    bot joins and the announcement arrives, once."""
    alice = await people("alice")
    alice.send(f"MODE {CHANNEL} +i")
    await alice.wait(lambda m: m.command == "MODE" and "+i" in m.params, "the channel invite-only")
    bus = EventBus()
    db = MemoryStorage(bus.publish)
    bot = bots(ircd.port, notify_events=["failure"])
    svc = NotificationService(builds=db.builds, logs=db.logs, events=db.events, outbox=db.outbox, bus=bus,
                              notifiers=[bot.config], url="https://ci.example.org",
                              retry_base=0.05, retry_cap=0.2, poll_interval=0.05)
    await svc.start()
    try:
        await run_build(db, "full", Result.FAILURE)
        await run_build(db, "docs", Result.SUCCESS)  # not a failure: not announced

        # The first attempts may come before the bot has even connected ("not connected to the
        # IRC server"); once it is connected but refused the channel, the reason says so.
        async def waiting() -> list[Notification]:
            pending = await db.outbox.list_notifications(10, "pending")
            return [n for n in pending if "not (yet) in #builds" in (n.last_error or "")]

        (pending,) = await eventually(waiting, what="the announcement pending with its reason")
        assert pending.kind == "irc"
        assert pending.payload["summary"].startswith("IRC #builds: Build #1 of `full`")

        mark = alice.mark()
        alice.send(f"INVITE {BOT} {CHANNEL}")
        await bot_joined(alice, since=mark)
        said = await alice.said(BOT, CHANNEL, "Build #1 of `full`", since=mark)
        assert said.text == ("Build #1 of `full` (https://ci.example.org/builders/full/builds/1) failed: failure"
                             "  blamelist: Jane Doe <jane@example.org>")

        async def sent() -> list[Notification]:
            return await db.outbox.list_notifications(10, "sent")

        (done,) = await eventually(sent, what="the announcement marked sent")
        assert done.id == pending.id
        assert [m.text for m in alice.lines[mark:] if m.nick == BOT and m.command == "PRIVMSG"] == [said.text]
    finally:
        await svc.aclose()


async def test_the_password_from_a_secret_file_goes_to_nickserv(
    ircd: IrcServer, people: Callable[..., Any], bots: Callable[..., IrcBot], tmp_path: Path
) -> None:
    nickserv = await people("NickServ", channel=None)  # ngircd has no services: a person plays it
    secret = tmp_path / "irc.secret"
    secret.write_text("s3cret\n")
    bots(ircd.port, password=secret)
    said = await nickserv.said(BOT, "NickServ", "IDENTIFY")
    assert said.text == "IDENTIFY s3cret"
