"""The step command journal: a build whose coordinator died in the middle of a step that runs
several commands (ShellSequence, a custom step with file primitives, Trigger, MasterShellCommand)
continues in a new BuildRunner over the same in-memory storage — journaled commands are replayed
(not run again, not logged again), the command in flight is adopted from the worker, the rest
runs; a replay that asks for something else ends RETRY with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.model import Build, BuildRequest, CaseResult
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, ShellCommand, StepContext
from coordinator.domain.steps.junit import MemorySink
from coordinator.domain.steps.logs import LogWatchers, OutputCollector
from coordinator.domain.steps.master import MasterShellCommand
from coordinator.domain.steps.shell import SetPropertyFromCommand, ShellArg, ShellSequence
from coordinator.domain.steps.trigger import Trigger
from coordinator.domain.workers.commands import (
    HEADER,
    STDOUT,
    CommandSpec,
    FileCommand,
    FileResult,
    Finished,
    KeptCommand,
)
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage
from tests.coordinator.test_domain_triggers import FakePort

OutputHandler = Callable[[int, bytes], Awaitable[None]]


class Files:
    """File primitives: stat answers, every request recorded."""

    def __init__(self) -> None:
        self.requests: list[FileCommand] = []

    async def request(self, cmd: FileCommand) -> FileResult:
        self.requests.append(cmd)
        return FileResult(cmd.request_id, exists=True, size=42, paths=("a", "b"))

    async def receive(
        self, cmd: FileCommand, write: Callable[[bytes], Awaitable[None]], progress: object = None
    ) -> FileResult:
        """An upload of `cmd.path`: its name as its contents."""
        self.requests.append(cmd)
        await write(cmd.path.encode())
        return FileResult(cmd.request_id, size=len(cmd.path), sha256=f"sha-{cmd.path}")

    async def send(self, cmd: FileCommand, chunks: AsyncIterator[bytes]) -> FileResult:
        self.requests.append(cmd)
        size = sum([len(c) async for c in chunks])
        return FileResult(cmd.request_id, size=size)

    def abandon(self, request_id: str, reason: str) -> None:
        pass


class Worker:
    """A fake worker session: each command prints "<cmd> 1..3" (one chunk a line) and exits 0,
    unless it is in `hang` (it prints its first line, then never ends: the coordinator dies
    meanwhile). After a "restart", `kept` is what it reports it kept."""

    missing_timeout = 0.0
    name = "w"

    def __init__(self, hang: Sequence[str] = (), kept: Sequence[KeptCommand] = ()) -> None:
        self.hang = set(hang)
        self.kept = list(kept)
        self.ran: list[str] = []
        self.adopted: list[tuple[str, int]] = []
        self.forgotten: list[str] = []
        self.specs: dict[str, CommandSpec] = {}
        self.changes = Changes()
        self.files = Files()

    async def run_command(self, spec: CommandSpec, on_output: OutputHandler, on_wait: object = None) -> Finished:
        text = spec.shell_command or " ".join(spec.argv)
        self.ran.append(text)
        self.specs[text] = spec
        await on_output(HEADER, f"$ {text}\n".encode())
        await on_output(STDOUT, f"{text} 1\n".encode())
        self.changes.bump()
        if text in self.hang:
            await asyncio.Event().wait()  # the coordinator dies meanwhile
        for i in (2, 3):
            await on_output(STDOUT, f"{text} {i}\n".encode())
        return Finished(spec.command_id, 0)

    def expect(self, prefix: str) -> asyncio.Future[list[KeptCommand]]:
        fut: asyncio.Future[list[KeptCommand]] = asyncio.get_running_loop().create_future()
        fut.set_result([k for k in self.kept if k.command_id.startswith(prefix)])
        return fut

    async def wait_attached(self, on_wait: object) -> None:
        pass

    async def adopt_command(
        self, kept: KeptCommand, stored_seq: int, on_output: OutputHandler, on_wait: object,
        missing_timeout: float, interrupted: str = "",
    ) -> Finished:
        """The command kept running while the coordinator was away: the output after what was
        stored, as a real worker resends it."""
        self.adopted.append((kept.command_id, stored_seq))
        text = self.adopt_text
        chunks = [(HEADER, f"$ {text}\n")] + [(STDOUT, f"{text} {i}\n") for i in (1, 2, 3)]
        for channel, data in chunks[stored_seq:]:
            await on_output(channel, data.encode())
        return Finished(kept.command_id, 0)

    adopt_text = ""

    def forget(self, command_id: str, reason: str) -> None:
        self.forgotten.append(command_id)

    def release(self, command_ids: Sequence[str]) -> None:
        pass

    def interrupt(self, command_id: str, reason: str) -> None:
        pass


async def start(storage: RecordingStorage, step_names: Sequence[str]) -> Build:
    req = BuildRequest(id=1, buildset_id=1, builder="b", priority=0, submitted_at=0.0)
    build = await storage.builds.start_build(req, "w", [], 0.0, step_names, lambda b: [])
    storage.adopt(build)
    return build


def runner_on(storage: RecordingStorage, build: Build, steps: Sequence[BuildStep], worker: Worker,
              *, resuming: bool = False, port: FakePort | None = None, host: Any = None) -> BuildRunner:
    services = BuildServices(
        storage.builds, storage.logs, LogWatchers(), FakeClock(), trigger_port=port, host=host,
        log_reads=storage.logs, journal=storage.journal,
    )
    return BuildRunner(build, steps, "b", worker, services, resuming=resuming)  # type: ignore[arg-type]


async def kill(
    storage: RecordingStorage, build: Build, steps: Sequence[BuildStep], until: Callable[[], bool],
    changes: Changes, worker: Worker | None = None, **kw: Any,
) -> Build:
    """Run the build until `until()`, then kill its runner (the coordinator died); the build as
    a restarted coordinator reads it back."""
    task = asyncio.ensure_future(runner_on(storage, build, steps, worker or Worker(), **kw).run())
    await changes.until(until)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stored = await storage.builds.get_build("b", build.number)
    assert stored is not None
    return stored


async def resume(storage: RecordingStorage, build: Build, steps: Sequence[BuildStep], worker: Worker,
                 **kw: Any) -> Result:
    """Continue the stored build in a new runner with fresh step objects, as a restarted
    coordinator does."""
    result, _ = await asyncio.wait_for(runner_on(storage, build, steps, worker, resuming=True, **kw).run(), 5)
    return result


def sequence() -> list[BuildStep]:
    return [ShellSequence(name="seq", commands=[ShellArg("one"), ShellArg("two"), ShellArg("three")])]


async def test_a_shell_sequence_killed_in_its_second_command_continues_without_running_any_twice() -> None:
    first = Worker(hang=["two"])
    storage = RecordingStorage()
    build = await start(storage, ["seq"])
    stored = await kill(storage, build, sequence(), lambda: "two" in first.ran, first.changes, first)
    # The worker kept "two" running, and "one" (done, journaled) until told to forget it.
    one, two = first.specs["one"].command_id, first.specs["two"].command_id
    second = Worker(kept=[KeptCommand(one, 3, True), KeptCommand(two, 2, False)])
    second.adopt_text = "two"
    result = await resume(storage, stored, sequence(), second)

    assert result == Result.SUCCESS
    assert second.ran == ["three"]  # one: replayed from the journal; two: adopted
    assert second.adopted == [(two, 2)]  # its header and first line were stored before
    assert second.forgotten == [one]
    assert storage.log_text("seq", "stdio") == b"$ one\none 1\none 2\none 3\n"  # not written twice
    assert storage.log_text("seq", "stdio2") == b"$ two\ntwo 1\ntwo 2\ntwo 3\n"
    assert storage.log_text("seq", "stdio3") == b"$ three\nthree 1\nthree 2\nthree 3\n"
    # Each command's entry is stored as the next one starts (with its new log); the last one's
    # is the step's end commit.
    assert [(e.index, e.command_id, e.rc, e.log_name, e.first_chunk, e.end_chunk)
            for e in await storage.journal.step_journal(build.id, 0)] == [
        (0, one, 0, "stdio", 0, 4), (1, two, 0, "stdio2", 0, 4),
    ]
    # The new command's id follows the adopted one's (ids never repeat within a build).
    assert int(second.specs["three"].command_id.rsplit("-", 1)[1]) > int(two.rsplit("-", 1)[1])


class Probe(BuildStep):
    """A custom step with its own run(): a stat, a command whose output it reads, a command."""

    name = "probe"

    def __init__(self, seen: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen = seen

    async def run(self, ctx: StepContext) -> Result:
        st = await ctx.stat("x")
        collector = OutputCollector()
        await ctx.run_command(["version"], collect=collector)
        self.seen.append(f"size={st.size if st else None} out={collector.stdout!r}")
        ctx.set_property("version", collector.stdout.split()[-1], "probe")
        finished = await ctx.run_command(["build", ctx.get_property("version")])
        return Result.SUCCESS if finished.rc == 0 else Result.FAILURE


async def test_a_custom_step_replays_its_file_primitive_and_the_output_it_read() -> None:
    seen: list[str] = []
    first = Worker(hang=["build 3"])
    storage = RecordingStorage()
    build = await start(storage, ["probe"])
    stored = await kill(storage, build, [Probe(seen)], lambda: "build 3" in first.ran, first.changes, first)
    second = Worker(kept=[KeptCommand(first.specs["build 3"].command_id, 2, False)])
    second.adopt_text = "build 3"
    result = await resume(storage, stored, [Probe(seen)], second)

    assert result == Result.SUCCESS
    assert second.ran == [] and second.files.requests == []  # nothing done again on the worker
    # The replayed stat and command gave the step what they gave it before the restart.
    assert seen == ["size=42 out='version 1\\nversion 2\\nversion 3\\n'"] * 2
    assert storage.log_text("probe", "stdio") == (
        b"$ version\nversion 1\nversion 2\nversion 3\n$ build 3\nbuild 3 1\nbuild 3 2\nbuild 3 3\n"
    )
    assert [(e.kind, e.index) for e in await storage.journal.step_journal(build.id, 0)] == [
        ("file", 0), ("command", 1),
    ]


async def test_a_step_asking_for_another_command_after_the_restart_ends_retry_saying_why() -> None:
    first = Worker(hang=["two"])
    storage = RecordingStorage()
    build = await start(storage, ["seq"])
    stored = await kill(storage, build, sequence(), lambda: "two" in first.ran, first.changes, first)
    changed = [ShellSequence(name="seq", commands=[ShellArg("uno"), ShellArg("two")])]
    second = Worker()
    result = await resume(storage, stored, changed, second)

    assert result == Result.RETRY
    assert second.ran == []
    assert b"asked for something else than before the restart" in storage.log_text("seq", "err")


class Transfers(BuildStep):
    """A custom step: an upload, a download, then a command (the coordinator dies during it)."""

    name = "transfers"

    def __init__(self, sinks: list[MemorySink], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sinks = sinks

    async def run(self, ctx: StepContext) -> Result:
        sink = MemorySink()
        self.sinks.append(sink)
        up = await ctx.upload("dist/app.tar", sink)

        async def body() -> AsyncIterator[bytes]:
            yield b"config"

        down = await ctx.download(body(), "etc/app.conf")
        finished = await ctx.run_command(["install", up.sha256, str(down.size)])
        return Result.SUCCESS if finished.rc == 0 else Result.FAILURE


async def test_journaled_transfers_are_not_done_again_and_give_the_step_their_results() -> None:
    sinks: list[MemorySink] = []
    first = Worker(hang=["install sha-dist/app.tar 6"])
    storage = RecordingStorage()
    build = await start(storage, ["transfers"])
    stored = await kill(storage, build, [Transfers(sinks)], lambda: bool(first.ran), first.changes, first)
    assert [c.op for c in first.files.requests] == ["upload", "download"]
    second = Worker(kept=[KeptCommand(first.specs["install sha-dist/app.tar 6"].command_id, 2, False)])
    second.adopt_text = "install sha-dist/app.tar 6"
    result = await resume(storage, stored, [Transfers(sinks)], second)

    assert result == Result.SUCCESS
    assert second.files.requests == [] and second.ran == []  # replayed: the same command asked
    assert [bytes(s.data) for s in sinks] == [b"dist/app.tar", b""]  # the replay's sink untouched


def trigger() -> list[BuildStep]:
    return [Trigger(name="trigger", schedulerNames=["tests"], waitForFinish=True)]


async def test_a_resumed_trigger_follows_the_buildset_it_triggered_and_never_triggers_twice() -> None:
    port = FakePort()
    storage = RecordingStorage()
    build = await start(storage, ["trigger"])
    stored = await kill(storage, build, trigger(), lambda: len(port.calls) == 1, port.triggered, port=port)
    assert port.journal is not None  # the real port stores it with the buildset (storage tests)
    await storage.journal.record_journal([port.journal])
    resumed = asyncio.ensure_future(resume(storage, stored, trigger(), Worker(), port=port))
    await port.triggered.until(lambda: bool(port.followed))
    port.finish(port.followed[0], Result.WARNINGS, 4)

    assert await resumed == Result.WARNINGS  # the triggered buildset's, followed after the restart
    assert len(port.calls) == 1  # not triggered again
    assert port.followed == [10]  # the buildset it triggered before


class HostProcess:
    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def wait(self) -> tuple[int, str]:
        if self.hang:
            await asyncio.Event().wait()
        return 0, ""

    def interrupt(self, reason: str) -> None:
        pass


class Host:
    """Commands on the coordinator host: `hang` ones never end (the coordinator dies)."""

    def __init__(self, hang: Sequence[str] = ()) -> None:
        self.hang = set(hang)
        self.ran: list[str] = []
        self.changes = Changes()

    def start(self, command: Any, *, workdir: str, env: dict[str, str], timeout: float, max_time: float,
              on_output: Callable[[int, bytes], Awaitable[None]]) -> HostProcess:
        self.ran.append(str(command))
        self.changes.bump()
        return HostProcess(str(command) in self.hang)


async def test_a_master_shell_command_in_flight_at_the_restart_ends_retry_its_journaled_ones_not_rerun() -> None:
    def steps() -> list[BuildStep]:
        return [MasterShellCommand("tag", name="tag"), MasterShellCommand("deploy", name="deploy")]

    host = Host(hang=["deploy"])
    storage = RecordingStorage()
    build = await start(storage, ["tag", "deploy"])
    stored = await kill(storage, build, steps(), lambda: "deploy" in host.ran, host.changes, host=host)
    again = Host()
    result = await resume(storage, stored, steps(), Worker(), host=again)

    assert result == Result.RETRY
    assert again.ran == []  # neither the finished step's command nor the one in flight
    assert b"MasterShellCommand was running on the coordinator host" in storage.log_text("deploy", "err")


class Gated(ShellSequence):
    """"one", then (once `gate` opens) "two": the coordinator dies in between."""

    gate: asyncio.Event
    between = Changes()
    done_one = False

    async def run(self, ctx: StepContext) -> Result:
        await self.run_shell(ctx, "one", log_name="stdio")
        Gated.done_one = True
        self.between.bump()
        await self.gate.wait()
        await self.run_shell(ctx, "two", log_name="stdio2")
        return Result.SUCCESS


async def test_a_step_killed_between_two_commands_adopts_the_finished_one_and_runs_the_next_once() -> None:
    # "one" ended but is not journaled yet (that happens as the next action starts): the
    # worker still has it, finished, so it is adopted; "two" runs once.
    def steps() -> list[BuildStep]:
        return [Gated(name="seq", commands=[ShellArg("one"), ShellArg("two")])]

    Gated.gate = asyncio.Event()
    first = Worker()
    storage = RecordingStorage()
    build = await start(storage, ["seq"])
    stored = await kill(storage, build, steps(), lambda: Gated.done_one, Gated.between, first)
    assert await storage.journal.step_journal(build.id, 0) == []
    one = first.specs["one"].command_id
    second = Worker(kept=[KeptCommand(one, 4, True)])
    second.adopt_text = "one"
    Gated.gate.set()
    result = await resume(storage, stored, steps(), second)

    assert result == Result.SUCCESS
    assert second.adopted == [(one, 4)] and second.ran == ["two"]
    assert storage.log_text("seq", "stdio") == b"$ one\none 1\none 2\none 3\n"


async def test_set_property_from_command_continues_as_before() -> None:
    def steps() -> list[BuildStep]:
        return [SetPropertyFromCommand(["echo", "abc"], name="prop", property="got"),
                ShellCommand(["use"], name="use")]

    first = Worker(hang=["echo abc"])
    storage = RecordingStorage()
    build = await start(storage, ["prop", "use"])
    stored = await kill(storage, build, steps(), lambda: "echo abc" in first.ran, first.changes, first)
    second = Worker(kept=[KeptCommand(first.specs["echo abc"].command_id, 2, False)])
    second.adopt_text = "echo abc"
    resumed = runner_on(storage, stored, steps(), second, resuming=True)
    result, _ = await asyncio.wait_for(resumed.run(), 5)

    assert result == Result.SUCCESS and second.ran == ["use"]
    assert resumed.get_property("got") == "echo abc 1\necho abc 2\necho abc 3"


async def test_a_command_in_flight_the_worker_no_longer_has_ends_retry_without_running_it_again() -> None:
    # Its output is stored, so it started; the agent restarted too and lost it: running it again
    # could repeat it, so the build ends RETRY (as before the journal).
    first = Worker(hang=["two"])
    storage = RecordingStorage()
    build = await start(storage, ["seq"])
    stored = await kill(storage, build, sequence(), lambda: "two" in first.ran, first.changes, first)
    second = Worker(kept=[])
    result = await resume(storage, stored, sequence(), second)

    assert result == Result.RETRY
    assert second.ran == [] and second.adopted == []
    assert storage.log_text("seq", "stdio") == b"$ one\none 1\none 2\none 3\n"


class RecordsTests(BuildStep):
    """A custom step: records test cases, then runs a command (the coordinator dies during it)."""

    name = "tested"

    async def run(self, ctx: StepContext) -> Result:
        await ctx.record_tests([CaseResult("test_a", "pkg", "failed", 1.0, "boom"), CaseResult("test_b")])
        finished = await ctx.run_command(["after"])
        return Result.SUCCESS if finished.rc == 0 else Result.FAILURE


async def test_test_cases_recorded_before_the_restart_are_not_recorded_again() -> None:
    first = Worker(hang=["after"])
    storage = RecordingStorage()
    build = await start(storage, ["tested"])
    stored = await kill(storage, build, [RecordsTests()], lambda: "after" in first.ran, first.changes, first)
    second = Worker(kept=[KeptCommand(first.specs["after"].command_id, 2, False)])
    second.adopt_text = "after"
    result = await resume(storage, stored, [RecordsTests()], second)

    assert result == Result.SUCCESS
    failing = await storage.builds.failing_cases("b", build.number, 10)
    assert failing == [CaseResult("test_a", "pkg", "failed", 1.0, "boom")]  # stored once
    assert [(e.kind, e.index) for e in await storage.journal.step_journal(build.id, 0)] == [("tests", 0)]
