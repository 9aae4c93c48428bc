"""Retention rules: how long builds, logs and artifacts are kept."""

from datetime import timedelta

from coordinator.config import Builder, ForceScheduler, MasterConfig, Retention, ShellCommand, Worker

config = MasterConfig(
    workers=[Worker("w1", "pw1", max_builds=4)],
    builders=[
        Builder("runtests", workers=["w1"], steps=[ShellCommand(["make", "test"])]),
        Builder("nightly-full", workers=["w1"], steps=[ShellCommand(["make", "all"])]),
    ],
    schedulers=[ForceScheduler("force", builders=["runtests", "nightly-full"])],
    # --8<-- [start:retention]
    retention=[
        # The first rule naming a builder applies to it; a rule naming none is the default.
        Retention(logHorizon=timedelta(days=7), buildHorizon=timedelta(days=90), builders=["nightly-full"]),
        Retention(
            logHorizon=timedelta(weeks=4),
            buildHorizon=timedelta(days=365),
            artifactHorizon=timedelta(days=14),
            failedLogHorizon=timedelta(days=90),  # failing builds kept longer
            failedArtifactHorizon=timedelta(days=90),
            eventHorizon=timedelta(days=30),  # status events, all builders' (default 7 days)
        ),
    ],
    # --8<-- [end:retention]
)
