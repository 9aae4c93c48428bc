"""MasterShellCommand runs on the coordinator host, so the configuration must opt in."""

from coordinator.config import (
    Builder,
    ForceScheduler,
    MasterConfig,
    MasterShellCommand,
    ShellCommand,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    schedulers=[ForceScheduler("force", builders=["release"])],
    # --8<-- [start:master]
    allow_master_commands=True,
    builders=[Builder("release", workers=["w1"], steps=[
        ShellCommand(command=["make", "dist"]),
        MasterShellCommand(command="./publish.sh", workdir="/srv/releases", timeout=300),
    ])],
    # --8<-- [end:master]
)
