"""Two GitPollers: the coordinator polls the repositories itself."""

from coordinator.config import (
    AnyBranchScheduler,
    Builder,
    GitPoller,
    MasterConfig,
    ShellCommand,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("runtests", workers=["w1"], steps=[ShellCommand(["make", "test"])])],
    schedulers=[AnyBranchScheduler("all", builders=["runtests"], tree_stable_timer=None)],
    # --8<-- [start:pollers]
    change_source=[
        GitPoller("https://git.example.org/app.git", branches=["main", "release"],
                  pollInterval=60, project="app", category="polled"),
        GitPoller("/srv/git/tools.git", branches=True, pollAtLaunch=True),
    ],
    # --8<-- [end:pollers]
)
