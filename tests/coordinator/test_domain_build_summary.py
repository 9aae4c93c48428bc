"""A build's state string: it follows the running step, and its summary names the step that
produced the final result (Buildbot's "failed compile")."""

from __future__ import annotations

from coordinator.domain.results import Result
from coordinator.domain.steps.base import ShellCommand
from tests.coordinator.test_domain_steps import STORAGE, FakeSession, Fixed, make_runner


async def test_the_summary_names_the_step_that_made_the_final_result() -> None:
    runner = make_runner(
        [
            Fixed(Result.WARNINGS, name="compile"),
            Fixed(Result.FAILURE, name="boom"),
            Fixed(Result.FAILURE, name="later", alwaysRun=True),
        ]
    )
    assert await runner.run() == (Result.FAILURE, "failed boom")


async def test_a_warning_alone_is_named() -> None:
    runner = make_runner([Fixed(Result.SUCCESS, name="a"), Fixed(Result.WARNINGS, name="lint")])
    assert await runner.run() == (Result.WARNINGS, "warnings lint")


async def test_a_running_build_reads_as_its_running_step() -> None:
    session = FakeSession({"make": (0, b"", b"")})
    runner = make_runner(
        [ShellCommand(name="build", command=["make"]), Fixed(Result.SUCCESS, name="test", description="testing")],
        session,
    )
    await runner.run()
    build_states = [text for _, _, step, text in STORAGE[runner].states if step == -1]
    assert build_states == ["running 'make'", "testing"]
