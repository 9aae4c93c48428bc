"""How long running builds wait for a worker whose connection was lost."""

from coordinator.config import Builder, ForceScheduler, MasterConfig, ShellCommand, Worker

config = MasterConfig(
    workers=[
        # A laptop on Wi-Fi: its builds wait up to 10 minutes for it to come back.
        Worker("laptop", "s3cret", missing_timeout=600),
        # A rack machine: 5 minutes (the default).
        Worker("rack-1", "s3cret"),
    ],
    builders=[
        Builder("nightly", workers=["laptop", "rack-1"], steps=[
            ShellCommand(name="soak", command=["make", "soak-test"]),
        ]),
        # A quick check is cheaper to run again elsewhere than to wait for: give up after 30 s.
        Builder("lint", workers=["laptop", "rack-1"], missing_timeout=30, steps=[
            ShellCommand(name="lint", command=["make", "lint"]),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["nightly", "lint"])],
)
