"""The custom step of "Writing a custom step": run the tests, and once more if they fail."""

from coordinator.config import (
    CANCELLED,
    FAILURE,
    SUCCESS,
    WARNINGS,
    Builder,
    BuildStep,
    ForceScheduler,
    Interpolate,
    MasterConfig,
    Worker,
)


class TestsWithRetry(BuildStep):
    name = "tests"

    def __init__(self, command, retry_command, **kwargs):
        super().__init__(**kwargs)
        self.command = command
        self.retry_command = retry_command
        if not command or not retry_command:
            self.errors.append("TestsWithRetry needs a command and a retry_command")

    async def run(self, ctx):
        first = await ctx.run_command(ctx.render(self.command), timeout=600)
        if ctx.interrupted:
            return CANCELLED
        if first.rc == 0:
            ctx.set_property("flaky", False, "TestsWithRetry")
            return SUCCESS
        second = await ctx.run_command(ctx.render(self.retry_command), timeout=600,
                                       log_name="retry")
        ctx.set_property("flaky", second.rc == 0, "TestsWithRetry")
        return WARNINGS if second.rc == 0 else FAILURE


config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("tests", workers=["w1"], steps=[
        TestsWithRetry(command=["make", "test"],
                       retry_command=["make", "test", Interpolate("V=%(prop:verbosity:-1)s")]),
    ])],
    schedulers=[ForceScheduler("force", builders=["tests"])],
)
