"""IRC(...) in a configuration file (Buildbot's option names, checked with FILE:LINE), and the
pure parts of the bot: which builds are announced, who may force, the IRC line format."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.config.loader import ConfigError, load_config
from coordinator.domain.results import Result
from notifiers.irc import IRC, protocol
from notifiers.irc.commands import Commands, allowed, expand_authz
from notifiers.irc.messages import Formatter

HEAD = """from coordinator.config import *

workers = [Worker("w1", "s")]
builders = [Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])])]
"""


def test_a_buildbot_irc_configuration_loads(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders,
    notifiers=[IRC(host="irc.example.org", nick="bbtest", channels=[{"channel": "#buildbot-test"}, "#ci"],
                   pm_to_nicks=["alice"], notify_events={"exception": 1, "problem": 1, "recovery": 1},
                   authz={("force", "stop"): ["alice", "bob"]}, useRevisions=True, noticeOnChannel=True)],
)
""")
    (irc,) = load_config(path).notifiers
    assert isinstance(irc, IRC)
    assert irc.channels == [("#buildbot-test", ""), ("#ci", "")]
    assert irc.authz == {"FORCE": ["alice", "bob"], "STOP": ["alice", "bob"]}
    assert irc.events == ("build.finished",)


def test_bad_options_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders,
    notifiers=[
        IRC("irc.example.org", "9lives", channels="#ci", notify_events=["sometimes"]),
        IRC("irc.example.org", "bot", channels=["#ci"], allowForce=True, authz={"force": True}, port=0),
    ],
)
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = [str(p) for p in info.value.problems]
    shown = str(path)
    assert f"{shown}:9: notifier 'IRC:9lives@irc.example.org': nick '9lives' is not a valid IRC nick" in lines[0]
    assert any(line.startswith(f"{shown}:9: ") and "channels must be a list such as ['#builds']" in line
               for line in lines)
    assert any(line.startswith(f"{shown}:9: ") and "unknown notify_events entry 'sometimes'" in line
               for line in lines)
    assert any(line.startswith(f"{shown}:10: ") and "you must not use allowForce anymore" in line for line in lines)
    assert any(line.startswith(f"{shown}:10: ") and "port must be a TCP port number" in line for line in lines)


def test_an_unknown_option_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders,
    notifiers=[IRC("irc.example.org", "bot", channels=["#ci"],
                   allow_force=True)],
)
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    # Python names the statement that raised (the MasterConfig call, line 8) or the call itself.
    assert problem.line in (8, 9, 10) and "unexpected keyword argument 'allow_force'" in problem.message


@pytest.mark.parametrize(
    ("events", "result", "previous", "wanted"),
    [
        ([], Result.FAILURE, None, False),  # Buildbot: nothing announced unless asked for
        (["failure"], Result.FAILURE, Result.FAILURE, True),
        (["failing"], Result.SUCCESS, None, False),
        (["finished"], Result.SUCCESS, None, True),
        (["problem"], Result.FAILURE, Result.SUCCESS, True),
        (["problem"], Result.FAILURE, Result.FAILURE, False),
        (["recovery"], Result.SUCCESS, Result.FAILURE, True),
        (["recovery"], Result.SUCCESS, Result.SUCCESS, False),
        (["worse"], Result.WARNINGS, Result.SUCCESS, True),
        (["worse"], Result.SUCCESS, Result.WARNINGS, False),
        (["better"], Result.SUCCESS, Result.EXCEPTION, True),
        (["change"], Result.SUCCESS, Result.FAILURE, True),
    ],
)
def test_notify_events_decide_like_buildbot(
    events: list[str], result: Result, previous: Result | None, wanted: bool
) -> None:
    irc = IRC("h", "bot", channels=["#c"], notify_events=events)
    assert irc.errors == []
    assert irc.wants_result(result, previous) is wanted


def test_started_adds_the_build_started_event() -> None:
    assert IRC("h", "bot", channels=["#c"], notify_events=["started", "failure"]).events == (
        "build.started", "build.finished")


def test_authz_follows_buildbot() -> None:
    authz = expand_authz({("force", "stop"): ["Alice"]})
    assert allowed(authz, "force", "alice") and allowed(authz, "STOP", "ALICE")
    assert not allowed(authz, "force", "mallory")
    assert allowed(authz, "status", "mallory")  # reading is allowed by default
    assert not allowed(expand_authz(None), "force", "alice")  # dangerous commands are not
    assert allowed(expand_authz(None, allow_force=True), "stop", "anyone")  # deprecated allowForce
    assert not allowed(expand_authz({"": False}), "status", "x")
    assert allowed(expand_authz({"!": ["ops"]}), "force", "ops")


def test_protocol_lines_are_safe_and_short() -> None:
    msg = protocol.parse(":alice!a@host PRIVMSG #ci :bot: force full because")
    assert msg is not None and (msg.nick, msg.command, msg.params) == (
        "alice", "PRIVMSG", ("#ci", "bot: force full because"))
    assert protocol.parse("PING :irc.example.org") == protocol.Message("PING", ("irc.example.org",))
    # A build's text cannot inject a second IRC command.
    lines = protocol.messages("PRIVMSG", "#ci", "failed\r\nQUIT :bye\0")
    assert lines == ["PRIVMSG #ci :failed", "PRIVMSG #ci :QUIT :bye"]
    lines = protocol.messages("PRIVMSG", "#ci", "é" * 2000)
    assert len(lines) > 1 and all(len(x.encode()) <= 512 - 2 - protocol.RELAY_RESERVE for x in lines)
    assert "".join(x.split(" :", 1)[1] for x in lines) == "é" * 2000


async def test_unknown_commands_are_answered_once_a_minute_per_nick() -> None:
    """Two bots telling each other "I don't get this" must not loop."""
    now = [1000.0]
    cmds = Commands(builds=None, authz={}, formatter=Formatter(), clock=lambda: now[0],  # type: ignore[arg-type]
                    watch=lambda b, n, r: True)
    assert await cmds.handle("otherbot", "I don't get this 'x'", "otherbot") == [
        "I don't get this 'i'... Try 'help' or 'commands'."]
    assert await cmds.handle("OtherBot", "frob", "otherbot") == []
    assert await cmds.handle("alice", "frob", "alice") != []
    now[0] += 61
    assert await cmds.handle("otherbot", "frob", "otherbot") != []
    assert await cmds.handle("otherbot", "hello", "otherbot") == ["yes?"]  # real commands always
