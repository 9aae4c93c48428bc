"""The step types of "Steps": each section below is shown on that page."""

from coordinator.config import (
    Builder,
    Compile,
    DirectoryUpload,
    FileDownload,
    FileUpload,
    ForceScheduler,
    Git,
    Interpolate,
    MasterConfig,
    SetPropertyFromCommand,
    ShellArg,
    ShellCommand,
    ShellSequence,
    Test,
    Worker,
)

properties_steps = [
    # --8<-- [start:setproperty]
    SetPropertyFromCommand(name="revision", command="git rev-parse HEAD", property="got_revision"),
    SetPropertyFromCommand(name="wheels", command="ls dist",
                           extract_fn=lambda rc, stdout, stderr:
                           {"wheels": [f for f in stdout.split() if f.endswith(".whl")]}),
    ShellCommand(command=["upload", Interpolate("%(prop:got_revision)s")]),
    # --8<-- [end:setproperty]
]

sequence_steps = [
    # --8<-- [start:sequence]
    ShellSequence(name="checks", commands=[
        ShellArg(["make", "lint"], logname="lint", flunkOnFailure=False, warnOnFailure=True),
        ShellArg(["make", "test"], logname="test", haltOnFailure=True),
        ShellArg(["make", "coverage"], logname="coverage"),
    ]),
    # --8<-- [end:sequence]
    # --8<-- [start:compile]
    Compile(command=["make", "-j8"], warningPattern=r"^.*: warning: ", maxWarnCount=50),
    # --8<-- [end:compile]
    # --8<-- [start:test]
    Test(command="pytest --junitxml=reports/unit.xml", junit="reports/*.xml"),
    # --8<-- [end:test]
]

# --8<-- [start:transfers]
steps=[
    ShellCommand(name="build", command=["make", "dist"]),
    FileUpload(name="tarball", workersrc="dist/app.tar.gz", maxsize=512 * 1024 * 1024),
    DirectoryUpload(name="docs", workersrc="docs/html", masterdest="www/docs"),
    FileDownload(name="config", mastersrc="secrets/deploy.cfg", workerdest="deploy.cfg",
                 mode=0o600),
]
# --8<-- [end:transfers]

# --8<-- [start:git]
runtests = Builder("runtests", workers=["w1"], steps=[
    Git(repourl="https://git.example.org/project.git", mode="full", method="clean", shallow=True),
    ShellCommand(command=["make", "test"]),
])
# --8<-- [end:git]

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[
        runtests,
        Builder("properties", workers=["w1"], steps=properties_steps),
        Builder("checks", workers=["w1"], steps=sequence_steps),
        Builder("dist", workers=["w1"], steps=steps),
    ],
    schedulers=[ForceScheduler("force", builders=["runtests", "properties", "checks", "dist"])],
)
