"""The manual's Configuration page: two workers, one builder, two schedulers."""

from coordinator.config import (
    Builder,
    ForceScheduler,
    MasterConfig,
    ShellCommand,
    SingleBranchScheduler,
    Worker,
)

config = MasterConfig(
    workers=[
        Worker("linux-1", "s3cret", max_builds=2),
        Worker("linux-2", "an0ther"),
    ],
    builders=[
        Builder(
            "runtests",
            workers=["linux-1", "linux-2"],
            steps=[
                ShellCommand(name="compile", command=["make", "all"], haltOnFailure=True),
                ShellCommand(name="test", command="make test 2>&1 | tee test.log",
                             timeout=600, max_time=3600, env={"CI": "1"}),
                ShellCommand(name="cleanup", command=["make", "clean"], alwaysRun=True),
            ],
        ),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=60, builders=["runtests"]),
        ForceScheduler("force", builders=["runtests"]),
    ],
)
