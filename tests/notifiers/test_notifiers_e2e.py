"""End to end: a real coordinator and worker; a failing build mails its author through a real
SMTP server, also when that server is down while the build runs (the build is unaffected; the
mail arrives, once, when the server is back)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import FAILURE, Cluster, run_cli
from tests.net import port_of
from tests.notifiers.conftest import SmtpServer, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("failing", workers=["w1"], steps=[
            ShellCommand(name="compile", command=["echo", "compiled"]),
            ShellCommand(name="test", command="echo running tests; echo 'FAILED test_frob' >&2; exit 1"),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["failing"])],
    url="https://ci.example.org",
    notifiers=[
        MailNotifier("gantry@example.org", mode=("failing",), extraRecipients=["dev@example.org"],
                     relayhost="127.0.0.1", smtpPort=SMTP_PORT, timeout=5),
    ],
)
"""


async def test_failing_build_mails_through_a_server_that_was_down(
    cluster: Cluster, smtp_servers: Callable[..., SmtpServer], reserved: socket.socket
) -> None:
    # No SMTP server yet; the port stays ours for the one to come.
    coord = await cluster.start_coordinator(CONFIG.replace("SMTP_PORT", str(port_of(reserved))))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()

    forced = await coord.force("failing", reason="try it")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == FAILURE  # the build is not held by the mail server
    assert coord.process is not None
    await coord.process.wait_line(r"notification \d+ \(MailNotifier:failing:1:build.finished\) "
                                  r"attempt 1 failed")
    # The failed attempt is visible in the API, with its reason (recorded just after the log line).
    async def failed_once() -> Any:
        listed = await coord.control.ListNotifications(control_pb2.ListNotificationsRequest())
        return [n for n in listed.notifications if n.last_error]

    (pending,) = await eventually(failed_once, what="the failed attempt recorded")
    assert pending.state == "pending" and pending.attempts >= 1
    assert pending.summary == "Gantry: failure in failing #1 -> dev@example.org"

    server = smtp_servers(reserved)
    (got,) = await eventually(server.messages, what="the mail once the server is back")
    assert got.recipients == ["dev@example.org"]
    assert got.message["Subject"] == "Gantry: failure in failing #1"
    text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Failing step: test" in text and "FAILED test_frob" in text
    assert "https://ci.example.org/builders/failing/builds/1" in text

    forced = await coord.force("failing", reason="again")
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    await eventually(lambda: len(server.messages()) == 2, what="the second mail")
    assert sorted(m.message["Subject"] for m in server.messages()) == [
        "Gantry: failure in failing #1", "Gantry: failure in failing #2"]

    async def all_sent() -> bool:
        got = await coord.control.ListNotifications(control_pb2.ListNotificationsRequest(state="sent"))
        return len(got.notifications) == 2

    await eventually(all_sent, what="both notifications marked sent")

    # The CLI shows the same: a table, and --json for scripts.
    code, out, err = await run_cli("notifications", "--coordinator", coord.address)
    assert code == 0, err
    assert b"sent" in out and b"failure in failing #1" in out
    code, out, err = await run_cli("notifications", "--state", "sent", "--json",
                                   "--coordinator", coord.address)
    assert code == 0, err
    listed_json = json.loads(out)["notifications"]
    assert [n["state"] for n in listed_json] == ["sent", "sent"]
    assert listed_json[-1]["attempts"] >= 2 and listed_json[-1]["summary"].startswith("Gantry: failure")
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await coord.control.ListNotifications(control_pb2.ListNotificationsRequest(state="lost"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
