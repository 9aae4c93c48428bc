"""Trigger steps starting a Triggerable's builds, and a Dependent scheduler."""

from coordinator.config import (
    Builder,
    Dependent,
    Interpolate,
    MasterConfig,
    ShellCommand,
    SingleBranchScheduler,
    Trigger,
    Triggerable,
    Worker,
)

TEST_STEPS = [ShellCommand(["make", "test"])]

# --8<-- [start:trigger]
tests = Triggerable("tests", ["test-linux", "test-mac"])
build = Builder("build", workers=["w1"], steps=[
    ShellCommand(name="compile", command=["make"]),
    Trigger(schedulerNames=["tests"], waitForFinish=True,
            copy_properties=["version"],
            set_properties={"artifact": Interpolate("build-%(prop:buildnumber)s.tar.gz")}),
])
# --8<-- [end:trigger]

# --8<-- [start:dependent]
main = SingleBranchScheduler("main", branch="main", builders=["build"])
package = Dependent("package", upstream=main, builderNames=["package"])
# --8<-- [end:dependent]

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[
        build,
        Builder("test-linux", workers=["w1"], steps=TEST_STEPS),
        Builder("test-mac", workers=["w1"], steps=TEST_STEPS),
        Builder("package", workers=["w1"], steps=[ShellCommand(["make", "package"])]),
    ],
    schedulers=[tests, main, package],
)
