"""Commit statuses on GitHub, GitLab, Gitea and Bitbucket, and chat messages, with the tokens
read from the secrets providers (here the folder `secrets/` beside this file)."""

from pathlib import Path

from coordinator.config import (
    BitbucketServerStatusPush,
    BitbucketStatusPush,
    Builder,
    DiscordNotifier,
    ForceScheduler,
    GiteaStatusPush,
    GitHubChecksPush,
    GitHubStatusPush,
    GitLabStatusPush,
    Interpolate,
    MasterConfig,
    MattermostNotifier,
    Secret,
    SecretInAFile,
    ShellCommand,
    SlackNotifier,
    TeamsNotifier,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("runtests", workers=["w1"], steps=[ShellCommand(["make", "test"])])],
    schedulers=[ForceScheduler("force", builders=["runtests"])],
    secretsProviders=[SecretInAFile(Path(__file__).parent / "secrets")],
    # --8<-- [start:reporters]
    url="https://ci.example.org",  # the build pages the statuses link to
    notifiers=[
        GitHubStatusPush(token=Secret("api_token"),
                         context=Interpolate("ci/%(prop:buildername)s")),
        GitHubChecksPush(token=Secret("api_token"), builders=["runtests"]),
        GitLabStatusPush(token=Secret("api_token"), baseURL="https://gitlab.example.org"),
        GiteaStatusPush("https://gitea.example.org", token=Secret("api_token")),
        BitbucketStatusPush(auth=("ci-bot", Secret("api_token"))),
        BitbucketServerStatusPush("https://bitbucket.example.org", token=Secret("api_token")),
    ],
    # --8<-- [end:reporters]
)

chat = [
    # --8<-- [start:chat]
    SlackNotifier(Secret("api_token"), mode=("failing", "problem"), channel="#ci",
                  message=":red_circle: $builder #$number $result_lower - $url"),
    DiscordNotifier("https://discord.com/api/webhooks/123/abc", mode="change"),
    MattermostNotifier("https://chat.example.org/hooks/abc", mode="failing", username="gantry"),
    TeamsNotifier("https://example.logic.azure.com/workflows/1/triggers/manual/paths/invoke",
                  mode=("failing", "exception"), builders=["runtests"]),
    # --8<-- [end:chat]
]
config.notifiers += chat
