"""Reporters and chat notifiers in a configuration file: importable from coordinator.config
with Buildbot's names, and checked with the file and line of each problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.config.loader import ConfigError, load_config

HEAD = """from coordinator.config import *

workers = [Worker("w1", "s")]
builders = [Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])])]
"""


def test_every_reporter_loads(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders, url="https://ci.example.org",
    notifiers=[
        GitHubStatusPush(token=Secret("gh"), context=Interpolate("ci/%(prop:buildername)s")),
        GitHubChecksPush(token=Secret("gh_app")),
        GitLabStatusPush(token=Secret("gl"), baseURL="https://gitlab.example.org"),
        GiteaStatusPush("https://gitea.example.org", token=Secret("gt"), endDescription="$result"),
        BitbucketStatusPush(auth=("bot", Secret("bb"))),
        BitbucketServerStatusPush("https://bitbucket.example.org", token=Secret("bbs")),
        SlackNotifier(Secret("slack_url"), mode=("failing", "problem")),
        DiscordNotifier("https://discord.com/api/webhooks/1/x"),
        MattermostNotifier("https://chat.example.org/hooks/abc", channel="ci"),
        TeamsNotifier("https://example.logic.azure.com/workflows/1/triggers/manual/paths/invoke"),
    ],
)
""")
    cfg = load_config(path)
    assert [n.name for n in cfg.notifiers] == [
        "GitHubStatusPush", "GitHubChecksPush", "GitLabStatusPush", "GiteaStatusPush", "BitbucketStatusPush",
        "BitbucketServerStatusPush", "SlackNotifier", "DiscordNotifier", "MattermostNotifier", "TeamsNotifier"]


def test_problems_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(HEAD + """
config = MasterConfig(
    workers=workers, builders=builders,
    notifiers=[
        GitHubStatusPush(token=Secret("gh"), baseURL="api.github.com"),
        GitLabStatusPush(token=Secret("gl"), contxt="typo"),
        SlackNotifier("https://hooks.slack.com/services/x", mode="sometimes", builders=["nope"]),
        BitbucketServerStatusPush("https://bitbucket.example.org"),
    ],
)
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = sorted((p.line, p.message) for p in info.value.problems)
    assert all(p.file == str(path) for p in info.value.problems)
    assert got == [
        (9, "notifier 'GitHubStatusPush': baseURL must be an http:// or https:// URL, not 'api.github.com'"),
        (10, "notifier 'GitLabStatusPush': unknown option(s) 'contxt'"),
        (11, "notifier 'SlackNotifier' names unknown builder 'nope'"),
        (11, "notifier 'SlackNotifier': unknown mode 'sometimes'; use some of all, failing, passing, problem, "
             "change, warnings, exception, cancelled"),
        (12, "notifier 'BitbucketServerStatusPush': BitbucketServerStatusPush needs either token= or a user "
             "and a password"),
    ]
