"""End to end: a real coordinator and worker, a real IRC server (ngircd) and a person in the
channel. A build forced from IRC fails and is announced; `watch` follows a running build; a
build is stopped from IRC; a nick that is not allowed is refused; the announcement is visible
through `gantry notifications`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import CANCELLED, FAILURE, Cluster
from tests.net import reserve_port
from tests.notifiers.conftest import eventually
from tests.notifiers.ircd import IrcClient, IrcServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("failing", workers=["w1"], steps=[
            ShellCommand(name="test", command="echo 'FAILED test_frob' >&2; exit 1"),
        ]),
        Builder("slow", workers=["w1"], steps=[ShellCommand(name="sleep", command=["sleep", "120"])]),
    ],
    schedulers=[ForceScheduler("force", builders=["failing", "slow"])],
    url="https://ci.example.org",
    notifiers=[
        IRC("127.0.0.1", "gantrybot", port=IRC_PORT, channels=["#builds"],
            notify_events=["failure"], authz={("force", "stop"): ["alice"]},
            useColors=False, lostDelay=0.2, failedDelay=1, lineRate=0.1),
    ],
)
"""


@pytest.fixture
async def ircd(tmp_path: Path) -> AsyncIterator[IrcServer]:
    with reserve_port() as held:
        server = IrcServer(held, tmp_path)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


async def test_irc_bot_with_a_real_coordinator_and_worker(cluster: Cluster, ircd: IrcServer) -> None:
    alice = await IrcClient("alice", ircd.port).connect()
    mallory = await IrcClient("mallory", ircd.port).connect()
    try:
        await alice.join("#builds")
        await mallory.join("#builds")
        coord = await cluster.start_coordinator(CONFIG.replace("IRC_PORT", str(ircd.port)))
        await cluster.start_worker(coord, "w1", "secret1")
        rec = await coord.record()
        await alice.wait(lambda m: m.command == "JOIN" and m.nick == "gantrybot", "the bot joining")

        mallory.say("#builds", "gantrybot: force failing")
        await mallory.said("gantrybot", "#builds", "Sorry mallory, you are not allowed to force.")

        alice.say("#builds", "gantrybot: force failing the frobnicator again")
        await alice.said("gantrybot", "#builds", "Force build successfully requested")
        said = await alice.said("gantrybot", "#builds", "Build #1 of `failing`")
        assert said.text == ("Build #1 of `failing` (https://ci.example.org/builders/failing/builds/1) "
                             "failed: failed test")
        finished = await rec.wait_kind("build.finished", builder="failing", build_number=1)
        assert finished.result == FAILURE
        build = await coord.get_build("failing", 1)
        assert "forced: by IRC user alice: the frobnicator again" in build.reason

        async def sent() -> Any:
            got = await coord.control.ListNotifications(control_pb2.ListNotificationsRequest(state="sent"))
            return [n for n in got.notifications if n.kind == "irc"]

        (note,) = await eventually(sent, what="the announcement marked sent")
        assert note.summary.startswith("IRC #builds: Build #1 of `failing`")

        alice.say("#builds", "gantrybot: last failing")
        await alice.said("gantrybot", "#builds", "`failing`: last build #1 failed")

        alice.say("#builds", "gantrybot: force slow")
        await rec.wait_kind("build.started", builder="slow", build_number=1)
        alice.say("#builds", "gantrybot: status slow")
        await alice.said("gantrybot", "#builds", "`slow`: running #1")
        alice.say("#builds", "gantrybot: watch slow")
        await alice.said("gantrybot", "#builds", "Watching Build #1 of `slow`")
        mallory.say("#builds", "gantrybot: stop slow 1")
        await mallory.said("gantrybot", "#builds", "Sorry mallory, you are not allowed to stop.")
        alice.say("#builds", "gantrybot: stop slow 1 not needed")
        await alice.said("gantrybot", "#builds", "Build #1 of `slow` (https://ci.example.org/builders/slow/builds/1) "
                                                 "interrupted.")
        stopped = await rec.wait_kind("build.finished", builder="slow", build_number=1)
        assert stopped.result == CANCELLED
        # The watch announces the end (not a notify_events announcement: those are failures only).
        await alice.said("gantrybot", "#builds", "Build #1 of `slow` (https://ci.example.org/builders/slow/builds/1) "
                                                 "was cancelled")
    finally:
        await alice.aclose()
        await mallory.aclose()

