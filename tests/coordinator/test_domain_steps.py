"""Step options (doStepIf, hideStepIf, decodeRC) and their validation, through a real
BuildRunner over the in-memory storage and a fake worker session."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.model import Build, PropertyValue
from coordinator.domain.properties.renderables import Interpolate
from coordinator.domain.properties.renderables import Property as Prop
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, ShellCommand, StepContext
from coordinator.domain.steps.logs import LineSplitter, LogWatchers
from coordinator.domain.steps.shell import (
    Compile,
    SetPropertyFromCommand,
    ShellArg,
    ShellSequence,
    WarningCountingShellCommand,
)
from coordinator.domain.workers.commands import HEADER, STDERR, STDOUT, CommandSpec, Finished
from tests.coordinator.fakes import FakeClock, RecordingStorage

OutputHandler = Callable[[int, bytes], Any]


class FakeSession:
    """Runs each command by looking its text up in `scripts`: (rc, stdout, stderr)."""

    missing_timeout = 0.0

    def __init__(self, scripts: dict[str, tuple[int, bytes, bytes]] | None = None, reason: str = "") -> None:
        self.scripts = scripts or {}
        self.reason = reason
        self.chunk = 3
        self.specs: list[CommandSpec] = []

    async def run_command(self, spec: CommandSpec, on_output: OutputHandler, on_wait: object = None) -> Finished:
        self.specs.append(spec)
        key = spec.shell_command or " ".join(spec.argv)
        rc, out, err = self.scripts.get(key, (0, b"", b""))
        await on_output(HEADER, b"header line warning: not output\n")
        for i in range(0, max(len(out), len(err)), self.chunk):  # interleaved, in small chunks
            if out[i:i + self.chunk]:
                await on_output(STDOUT, out[i:i + self.chunk])
            if err[i:i + self.chunk]:
                await on_output(STDERR, err[i:i + self.chunk])
        return Finished(spec.command_id, rc, self.reason)

    def interrupt(self, command_id: str, reason: str) -> None:
        pass

    def release(self, command_ids: Sequence[str]) -> None:
        pass


STORAGE: weakref.WeakKeyDictionary[BuildRunner, RecordingStorage] = weakref.WeakKeyDictionary()  # of each runner


def make_runner(steps: Sequence[BuildStep], session: FakeSession | None = None,
                props: dict[str, Any] | None = None) -> BuildRunner:
    build = Build(id=1, builder="b", number=1, worker="w", build_request_id=1, buildset_id=1,
                  started_at=0.0, properties=[PropertyValue(k, v, "test") for k, v in (props or {}).items()])
    storage = RecordingStorage()
    storage.adopt(build)
    runner = BuildRunner(build, steps, "b", session or FakeSession(),  # type: ignore[arg-type]
                         BuildServices(storage.builds, storage.logs, LogWatchers(), FakeClock()))
    STORAGE[runner] = storage
    return runner


class Fixed(BuildStep):
    def __init__(self, result: Result, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.ran = 0

    async def run(self, ctx: StepContext) -> Result:
        self.ran += 1
        return self.result


def results(runner: BuildRunner) -> list[tuple[str, Result]]:
    return [(name, result) for _, name, result in STORAGE[runner].step_results]


async def test_do_step_if_false_skips_the_step() -> None:
    skipped = Fixed(Result.FAILURE, name="never", doStepIf=False)
    runner = make_runner([Fixed(Result.SUCCESS, name="a"), skipped, Fixed(Result.SUCCESS, name="c")])
    result, state = await runner.run()
    assert (result, state) == (Result.SUCCESS, "build successful")
    assert results(runner) == [("a", Result.SUCCESS), ("never", Result.SKIPPED), ("c", Result.SUCCESS)]
    assert skipped.ran == 0
    assert runner.build.steps[1].started_at is not None  # as in Buildbot: started, then skipped


async def test_do_step_if_function_of_the_context_sync_and_async() -> None:
    async def is_release(ctx: StepContext) -> bool:
        return bool(ctx.get_property("release"))

    steps = [
        Fixed(Result.SUCCESS, name="on-main", doStepIf=lambda ctx: ctx.get_property("branch") == "main"),
        Fixed(Result.SUCCESS, name="on-release", doStepIf=is_release),
    ]
    runner = make_runner(steps, props={"branch": "main"})
    await runner.run()
    assert results(runner) == [("on-main", Result.SUCCESS), ("on-release", Result.SKIPPED)]


async def test_do_step_if_that_raises_is_an_exception() -> None:
    def broken(ctx: StepContext) -> bool:
        raise RuntimeError("boom")

    runner = make_runner([Fixed(Result.SUCCESS, name="x", doStepIf=broken)])
    result, _ = await runner.run()
    assert result == Result.EXCEPTION
    assert results(runner) == [("x", Result.EXCEPTION)]


async def test_hide_step_if_bool_and_function_of_result_and_context() -> None:
    seen: list[tuple[Result, Any]] = []

    def hide_skipped(result: Result, ctx: StepContext) -> bool:
        seen.append((result, ctx.get_property("n")))
        return result == Result.SKIPPED

    steps = [
        Fixed(Result.SUCCESS, name="shown", hideStepIf=hide_skipped),
        Fixed(Result.SUCCESS, name="hidden", hideStepIf=True),
        Fixed(Result.SUCCESS, name="skipped", doStepIf=False, hideStepIf=hide_skipped),
        Fixed(Result.FAILURE, name="halt", haltOnFailure=True),
        Fixed(Result.SUCCESS, name="halted", hideStepIf=hide_skipped),
    ]
    runner = make_runner(steps, props={"n": 5})
    await runner.run()
    assert [s.hidden for s in runner.build.steps] == [False, True, True, False, True]
    assert seen == [(Result.SUCCESS, 5), (Result.SKIPPED, 5), (Result.SKIPPED, 5)]


@pytest.mark.parametrize(
    ("decode", "rc", "expected"),
    [
        (None, 0, Result.SUCCESS),
        (None, 1, Result.FAILURE),
        ({0: Result.SUCCESS, 1: Result.WARNINGS}, 1, Result.WARNINGS),
        ({0: Result.SUCCESS, 1: Result.WARNINGS}, 2, Result.FAILURE),  # not listed
        ({0: Result.FAILURE, 3: Result.SUCCESS}, 3, Result.SUCCESS),
        ({0: 0, 1: 1}, 1, Result.WARNINGS),  # plain codes work too
    ],
)
async def test_decode_rc(decode: dict[int, Any] | None, rc: int, expected: Result) -> None:
    step = ShellCommand(command="run", decodeRC=decode)
    assert step.errors == []
    runner = make_runner([step], FakeSession({"run": (rc, b"", b"")}))
    await runner.run()
    assert results(runner) == [("shell", expected)]


async def test_decode_rc_does_not_turn_a_timeout_into_success() -> None:
    step = ShellCommand(command="run", decodeRC={-9: Result.SUCCESS})
    runner = make_runner([step], FakeSession({"run": (-9, b"", b"")}, reason="timeout"))
    await runner.run()
    assert results(runner) == [("shell", Result.FAILURE)]


async def test_decode_rc_warnings_make_the_build_warnings() -> None:
    step = ShellCommand(command="lint", decodeRC={0: Result.SUCCESS, 1: Result.WARNINGS})
    runner = make_runner([step], FakeSession({"lint": (1, b"", b"")}))
    result, state = await runner.run()
    assert (result, state) == (Result.WARNINGS, "warnings shell")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"doStepIf": "yes"}, "doStepIf must be True, False or a function"),
        ({"hideStepIf": 1}, "hideStepIf must be True, False or a function"),
        ({"decodeRC": {0: "ok"}}, "decodeRC must map exit codes"),
        ({"decodeRC": {"0": Result.SUCCESS}}, "decodeRC must map exit codes"),
        ({"decodeRC": {0: 9}}, "decodeRC must map exit codes"),
        ({"decodeRC": [0]}, "decodeRC must map exit codes"),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    step = ShellCommand(command="x", **kwargs)
    assert any(message in e for e in step.errors), step.errors


def test_valid_options_have_no_errors() -> None:
    step = ShellCommand(command="x", doStepIf=lambda ctx: True, hideStepIf=lambda r, ctx: False,
                        decodeRC={0: Result.SUCCESS, 1: Result.WARNINGS})
    assert step.errors == []


def props_of(runner: BuildRunner) -> dict[str, tuple[Any, str]]:
    return {p.name: (p.value, p.source) for p in runner.build.properties}


async def test_set_property_from_command_sets_stripped_stdout() -> None:
    steps = [
        SetPropertyFromCommand(command="git rev-parse HEAD", property="got_revision"),
        SetPropertyFromCommand(command="printf ' x \\n'", property=Interpolate("raw_%(prop:n)s"), strip=False),
        ShellCommand(command=["echo", Prop("got_revision")]),
    ]
    session = FakeSession({"git rev-parse HEAD": (0, b"abc123\n", b"warning: x\n"),
                           "printf ' x \\n'": (0, b" x \n", b"")})
    runner = make_runner(steps, session, props={"n": 1})
    result, _ = await runner.run()
    assert result == Result.SUCCESS
    props = props_of(runner)
    assert props["got_revision"] == ("abc123", "SetPropertyFromCommand Step")
    assert props["raw_1"] == (" x \n", "SetPropertyFromCommand Step")
    assert session.specs[2].argv == ["echo", "abc123"]  # later steps see the property


async def test_set_property_from_command_failing_sets_nothing() -> None:
    step = SetPropertyFromCommand(command="false", property="p")
    runner = make_runner([step], FakeSession({"false": (1, b"out\n", b"")}))
    result, _ = await runner.run()
    assert result == Result.FAILURE and "p" not in props_of(runner)


async def test_set_property_from_command_extract_fn_gets_rc_stdout_stderr() -> None:
    calls: list[tuple[int, str, str]] = []

    def extract(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
        calls.append((rc, stdout, stderr))
        return {"lines": len(stdout.splitlines()), "err": stderr.strip()}

    step = SetPropertyFromCommand(command="cmd", extract_fn=extract)
    runner = make_runner([step], FakeSession({"cmd": (3, b"a\nb\n", b"oops\n")}))
    result, _ = await runner.run()
    assert result == Result.FAILURE  # the exit code still decides the result
    assert calls == [(3, "a\nb\n", "oops\n")]
    assert props_of(runner)["lines"] == (2, "SetPropertyFromCommand Step")
    assert props_of(runner)["err"] == ("oops", "SetPropertyFromCommand Step")


async def test_set_property_from_command_bad_extract_result_is_an_exception() -> None:
    def not_a_dict(rc: int, out: str, err: str) -> Any:
        return ["not", "a", "dict"]

    def not_json(rc: int, out: str, err: str) -> dict[str, Any]:
        return {"x": object()}

    for bad in (not_a_dict, not_json):
        runner = make_runner([SetPropertyFromCommand(command="c", extract_fn=bad)])
        result, _ = await runner.run()
        assert result == Result.EXCEPTION


async def test_collected_output_is_bounded() -> None:
    step = SetPropertyFromCommand(command="big", property="p", collect_limit=10)
    runner = make_runner([step], FakeSession({"big": (0, b"0123456789abcdef", b"")}))
    await runner.run()
    assert props_of(runner)["p"][0] == "0123456789"


def test_set_property_from_command_validation() -> None:
    assert SetPropertyFromCommand(command="c", property="p").errors == []
    assert SetPropertyFromCommand(command="c").errors == ["give exactly one of property= or extract_fn="]
    both = SetPropertyFromCommand(command="c", property="p", extract_fn=lambda rc, o, e: {})
    assert both.errors == ["give exactly one of property= or extract_fn="]
    assert SetPropertyFromCommand(command="c", extract_fn="f").errors  # type: ignore[arg-type]


def sequence_runner(
    step: ShellSequence, scripts: dict[str, tuple[int, bytes, bytes]]
) -> tuple[BuildRunner, FakeSession]:
    session = FakeSession(scripts)
    return make_runner([step], session), session


async def test_shell_sequence_runs_each_command_into_its_own_log() -> None:
    step = ShellSequence(commands=[ShellArg("a"), ShellArg(["b", Prop("x")], logname="build"), ShellArg("c")],
                         workdir="src", env={"E": "1"})
    assert step.errors == []
    session = FakeSession()
    runner = make_runner([step], session, props={"x": "y"})
    result, _ = await runner.run()
    assert result == Result.SUCCESS
    assert [(s.shell_command or s.argv, s.workdir, s.env) for s in session.specs] == [
        ("a", "src", {"E": "1"}), (["b", "y"], "src", {"E": "1"}), ("c", "src", {"E": "1"}),
    ]
    assert [log.name for log in runner.build.steps[0].logs] == ["stdio", "build", "stdio2"]


@pytest.mark.parametrize(
    ("args", "rcs", "expected", "ran"),
    [
        # flunkOnFailure (default True): a failure fails the step, the sequence goes on.
        ([{}, {}], [1, 0], Result.FAILURE, 2),
        # haltOnFailure stops the sequence.
        ([{"haltOnFailure": True}, {}], [1, 0], Result.FAILURE, 1),
        # warnOnFailure without flunkOnFailure: WARNINGS.
        ([{"flunkOnFailure": False, "warnOnFailure": True}, {}], [1, 0], Result.WARNINGS, 2),
        # neither: the failure is ignored.
        ([{"flunkOnFailure": False}, {}], [1, 0], Result.SUCCESS, 2),
        # a later success never improves an earlier failure.
        ([{}, {}], [0, 1], Result.FAILURE, 2),
    ],
)
async def test_shell_sequence_combines_results_like_buildbot(
    args: list[dict[str, Any]], rcs: list[int], expected: Result, ran: int
) -> None:
    step = ShellSequence(commands=[ShellArg(f"c{i}", **flags) for i, flags in enumerate(args)])
    runner, session = sequence_runner(step, {f"c{i}": (rc, b"", b"") for i, rc in enumerate(rcs)})
    await runner.run()
    assert results(runner) == [("ShellSequence", expected)]
    assert len(session.specs) == ran


def test_shell_sequence_validation() -> None:
    assert ShellSequence(commands=[]).errors == ["commands must be a non-empty list of ShellArg(...)"]
    assert ShellSequence(commands=["ls"]).errors == [  # type: ignore[list-item]
        "commands must contain ShellArg(...) objects, not 'ls'"]
    dup = ShellSequence(commands=[ShellArg("a", logname="x"), ShellArg("b", logname="x")])
    assert dup.errors == ["two commands write to the log 'x'; give one a logname="]
    bad = ShellSequence(commands=[ShellArg(""), ShellArg("b", haltOnFailure=1)])  # type: ignore[arg-type]
    assert bad.errors == [
        "command 1: command must not be empty", "command 2: haltOnFailure must be True or False, not 1"
    ]
    named = ShellSequence(commands=[ShellArg("a", logname="stdio"), ShellArg("b")])
    assert named.lognames == ["stdio", "stdio2"]


def split(chunks: list[tuple[int, bytes]], max_line: int = 64 * 1024) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    splitter = LineSplitter([lambda ch, line: seen.append((ch, line))], max_line=max_line)
    for channel, data in chunks:
        splitter.feed(channel, data)
    splitter.flush()
    return seen


def test_line_splitter_joins_lines_across_chunks_per_channel() -> None:
    chunks = [(STDOUT, b"ab"), (STDERR, b"e1\ne"), (STDOUT, b"c\nd"), (HEADER, b"hdr\n"),
              (STDOUT, b"\r\n\n"), (STDERR, b"2"), (STDOUT, b"tail")]
    assert split(chunks) == [(STDERR, "e1"), (STDOUT, "abc"), (STDOUT, "d"), (STDOUT, ""),
                             (STDOUT, "tail"), (STDERR, "e2")]  # unfinished lines: at the end


def test_line_splitter_bounds_a_line_without_newline_and_decodes_leniently() -> None:
    # Only the unfinished line is bounded (a finished one is at most a chunk long).
    assert split([(STDOUT, b"x" * 10), (STDOUT, b"y" * 5 + b"\n")], max_line=4) == [
        (STDOUT, "xxxx"), (STDOUT, "xxxx"), (STDOUT, "xxyyyyy")]
    assert split([(STDOUT, b"caf\xc3"), (STDOUT, b"\xa9 \xff\n")]) == [(STDOUT, "caf\u00e9 \ufffd")]


class Observing(BuildStep):
    """A custom step that watches the lines of its two commands' logs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[tuple[str, int, str]] = []

    async def run(self, ctx: StepContext) -> Result:
        ctx.add_log_observer("stdio", lambda ch, line: self.lines.append(("stdio", ch, line)))
        ctx.add_log_observer("other", lambda ch, line: self.lines.append(("other", ch, line)))
        await ctx.run_command("one", workdir="build", env={}, timeout=0, max_time=0)
        await ctx.run_command("two", workdir="build", env={}, timeout=0, max_time=0, log_name="other")
        await ctx.run_command("three", workdir="build", env={}, timeout=0, max_time=0, log_name="unwatched")
        return Result.SUCCESS


async def test_log_observers_see_each_line_of_their_logs_only() -> None:
    step = Observing(name="obs")
    later = Observing(name="later")  # observers do not leak into later steps
    session = FakeSession({"one": (0, b"line 1\nline 2\npartial", b"err\n"), "two": (0, b"two\n", b""),
                           "three": (0, b"not seen\n", b"")})
    runner = make_runner([step, later], session)
    await runner.run()
    assert sorted(step.lines) == sorted([("stdio", STDOUT, "line 1"), ("stdio", STDOUT, "line 2"),
                                         ("stdio", STDOUT, "partial"), ("stdio", STDERR, "err"),
                                         ("other", STDOUT, "two")])
    assert ("stdio", STDOUT, "line 1") in later.lines and len(later.lines) == len(step.lines)


WARNINGS_OUT = b"cc a.c\na.c:1: warning: unused x\nok\nb.c:2: warning: shadow\n"


@pytest.mark.parametrize(
    ("kwargs", "rc", "out", "err", "expected", "count"),
    [
        ({}, 0, b"all good\n", b"", Result.SUCCESS, 0),
        ({}, 0, WARNINGS_OUT, b"c.c:3: warning: implicit\n", Result.WARNINGS, 3),
        ({"maxWarnCount": 3}, 0, WARNINGS_OUT, b"c.c:3: warning: implicit\n", Result.WARNINGS, 3),
        ({"maxWarnCount": 2}, 0, WARNINGS_OUT, b"c.c:3: warning: implicit\n", Result.FAILURE, 3),
        ({}, 2, WARNINGS_OUT, b"", Result.FAILURE, 2),
        ({"warningPattern": r"^W\d+"}, 0, b"W1 x\nxW2\nW3\n", b"", Result.WARNINGS, 2),
        ({}, 0, b"no warnings here\nwarnings: 0\n", b"", Result.SUCCESS, 0),
    ],
)
async def test_warning_counting(kwargs: dict[str, Any], rc: int, out: bytes, err: bytes,
                                expected: Result, count: int) -> None:
    step = WarningCountingShellCommand(command="cc", **kwargs)
    assert step.errors == []
    runner = make_runner([step], FakeSession({"cc": (rc, out, err)}))
    await runner.run()
    assert results(runner) == [("shell", expected)]
    assert props_of(runner)["warnings-count"] == (count, "WarningCountingShellCommand")


async def test_compile_is_a_warning_counting_step_named_compile() -> None:
    step = Compile()
    assert (step.name, step.command, step.errors) == ("compile", ["make", "all"], [])
    runner = make_runner([step], FakeSession({"make all": (0, WARNINGS_OUT, b"")}))
    result, state = await runner.run()
    assert (result, state) == (Result.WARNINGS, "warnings compile")
    assert runner.build.steps[0].name == "compile"


def test_warning_counting_validation() -> None:
    assert WarningCountingShellCommand(command="x", warningPattern="(").errors
    assert WarningCountingShellCommand(command="x", maxWarnCount=-1).errors
    assert WarningCountingShellCommand(command="x", maxWarnCount="3").errors  # type: ignore[arg-type]


def test_a_custom_describe_without_ctx_still_works() -> None:
    class OldStyle(Fixed):
        def describe(self, done: bool, result: Result | None = None) -> str:  # type: ignore[override]
            return f"old {done} {result}"

    step = OldStyle(Result.SUCCESS, name="old")
    runner = make_runner([step])
    assert runner._describe(step, Result.WARNINGS) == "old True 1"
    assert runner._describe(Fixed(Result.SUCCESS, descriptionDone=Prop("x")), Result.SUCCESS) == "step"


async def test_an_observer_that_raises_makes_the_step_an_exception_after_its_command() -> None:
    class Raising(BuildStep):
        async def run(self, ctx: StepContext) -> Result:
            def observer(channel: int, line: str) -> None:
                1 / 0  # noqa: B018 - raises, which is the point

            ctx.add_log_observer("stdio", observer)
            await ctx.run_command("cmd")
            return Result.SUCCESS

    session = FakeSession({"cmd": (0, b"a\nb\n", b"")})
    runner = make_runner([Raising(name="r")], session)
    result, _ = await runner.run()
    assert result == Result.EXCEPTION and len(session.specs) == 1
