"""The IRC bot: announcements in a channel and to a nick, commands, who may force and stop."""

from pathlib import Path

from coordinator.config import (
    IRC,
    Builder,
    ForceScheduler,
    MasterConfig,
    ShellCommand,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("runtests", workers=["w1"], steps=[ShellCommand(["make", "test"])])],
    schedulers=[ForceScheduler("force", builders=["runtests"])],
    # --8<-- [start:irc]
    url="https://ci.example.org",
    notifiers=[
        IRC(host="irc.libera.chat", port=6697, useSSL=True, nick="example-ci",
            password=Path("/etc/gantry/irc-nickserv.secret"),
            channels=["#example-dev", {"channel": "#example-ci", "password": "key"}],
            pm_to_nicks=["release-manager"],
            notify_events=["started", "problem", "recovery", "exception"],
            authz={("force", "stop"): ["alice", "bob"]},
            useRevisions=False, showBlameList=True, useColors=True, noticeOnChannel=False,
            lostDelay=1, failedDelay=60),
    ],
    # --8<-- [end:irc]
)
