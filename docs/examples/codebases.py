"""A build of two repositories ("codebases")."""

from coordinator.config import (
    Builder,
    ForceScheduler,
    Interpolate,
    MasterConfig,
    ShellCommand,
    SingleBranchScheduler,
    Worker,
)

# --8<-- [start:codebases]
CODEBASES = {
    "app": {"repository": "https://git.example.org/app.git", "branch": "main"},
    "lib": {"repository": "https://git.example.org/lib.git", "branch": "stable",
            "revision": "v1.4"},
}
schedulers = [
    SingleBranchScheduler("main", builders=["app"], codebases=CODEBASES),
    ForceScheduler("force", ["app"], codebases=CODEBASES),
]
# --8<-- [end:codebases]

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("app", workers=["w1"], steps=[
        ShellCommand(["make", Interpolate("LIB_REVISION=%(src:lib:revision)s")]),
    ])],
    schedulers=schedulers,
)
