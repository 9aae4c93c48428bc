"""A ForceScheduler with typed parameters."""

from coordinator.config import (
    BooleanParameter,
    Builder,
    ChoiceStringParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    MasterConfig,
    ShellCommand,
    StringParameter,
    TextParameter,
    Worker,
)

config = MasterConfig(
    workers=[Worker("w1", "pw1")],
    builders=[Builder("build", workers=["w1"], steps=[ShellCommand(["make"])])],
    schedulers=[
        # --8<-- [start:force]
        ForceScheduler("force", ["build"], properties=[
            IntParameter("jobs", default=4),
            BooleanParameter("clean"),                           # default False
            # default multiple=False, strict=True: exactly one of the choices
            ChoiceStringParameter("flavour", choices=["debug", "release"]),
            StringParameter("ticket", regex=r"^[A-Z]+-[0-9]+$", required=True),
            TextParameter("notes"),
            FixedParameter("channel", default="ci"),             # cannot be changed
        ]),
        # --8<-- [end:force]
    ],
)
