"""Step arguments computed per build: Interpolate, Property, Transform and @renderer."""

from coordinator.config import (
    Builder,
    ForceScheduler,
    Interpolate,
    MasterConfig,
    Property,
    ShellCommand,
    Transform,
    Worker,
    renderer,
)

# --8<-- [start:render]
package = ShellCommand(
    command=["make", Interpolate("VERSION=%(prop:version:-dev)s"),
             Property("target", default="all")],
    workdir=Interpolate("build/%(src::branch)s"),
    env={"REV": Interpolate("%(src::revision)s"), "JOBS": Transform(str, Property("jobs", 4))},
    descriptionDone=Interpolate("built %(prop:target:~all)s"),
)

@renderer
def make_flags(props):            # a function of the build's properties object
    return ["-j", str(props.getProperty("jobs", 4))]
# --8<-- [end:render]

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("package", workers=["w1"], steps=[
        package,
        ShellCommand(name="test", command=["make", make_flags, "test"]),
    ])],
    schedulers=[ForceScheduler("force", builders=["package"])],
)
