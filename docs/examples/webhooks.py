"""Webhooks from GitHub, GitLab, Gitea and Bitbucket, and a scheduler for pull requests."""

from coordinator.config import (
    AnyBranchScheduler,
    Builder,
    ChangeFilter,
    MasterConfig,
    ShellCommand,
    SingleBranchScheduler,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("runtests", workers=["w1"], steps=[ShellCommand(["make", "test"])])],
    # --8<-- [start:www]
    www=dict(port=8010, change_hook_dialects={
        "github": {"secret": "gh-secret", "strict": True},
        "gitlab": {"secret": "gl-secret"},
        "gitea": {"secret": "gt-secret"},
        # --8<-- [start:bitbucket]
        "bitbucketcloud": {"secret": "bbc-secret"},
        "bitbucketserver": {"secret": "bbs-secret"},
        # --8<-- [end:bitbucket]
    }),
    # --8<-- [end:www]
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=None,
                              builders=["runtests"], change_filter=ChangeFilter(category="push")),
        # --8<-- [start:pulls]
        AnyBranchScheduler("pulls", builders=["runtests"], tree_stable_timer=None,
                           change_filter=ChangeFilter(category="pull")),
        # --8<-- [end:pulls]
    ],
)
