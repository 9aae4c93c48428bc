"""Change-driven and timed schedulers."""

from coordinator.config import (
    AnyBranchScheduler,
    Builder,
    ChangeFilter,
    MasterConfig,
    Nightly,
    Periodic,
    ShellCommand,
    SingleBranchScheduler,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[
        Builder(name, workers=["w1"], steps=[ShellCommand(["make", "test"])])
        for name in ("runtests", "smoke", "full")
    ],
    schedulers=[
        # --8<-- [start:change]
        SingleBranchScheduler("main", branch="main", tree_stable_timer=30, builders=["runtests"],
                              fileIsImportant=["src/*", "tests/*"]),
        AnyBranchScheduler("features", builders=["runtests"], tree_stable_timer=60,
                           change_filter=ChangeFilter(branch_re=r"feature/.*", project="gantry")),
        # --8<-- [end:change]
        # --8<-- [start:timed]
        Periodic("hourly-smoke", ["smoke"], periodicBuildTimer=3600),
        Nightly("nightly", ["full"], hour=3, minute=0, dayOfWeek=[0, 1, 2, 3, 4],
                timezone="Europe/Berlin", branch="main", onlyIfChanged=True),
        # --8<-- [end:timed]
    ],
)
