"""Secrets, %(worker:...)s keys and MasterShellCommand in the domain: a real BuildRunner over the
in-memory storage, a fake worker session and fake ports (providers, host commands)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from coordinator.config import SecretInAFile
from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.errors import SecretNotFound
from coordinator.domain.events import Event
from coordinator.domain.model import Build, BuildRequest, PropertyValue, Step
from coordinator.domain.properties.renderables import Interpolate, Secret, render
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, ShellCommand, StepContext
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.steps.master import MasterShellCommand
from coordinator.domain.workers.commands import STDOUT, CommandSpec, Finished
from coordinator.domain.workers.sessions import WorkerDecl, WorkerRegistry, WorkerSession
from tests.coordinator.fakes import FakeClock, RecordingStorage, dispatcher_on


class Session:
    missing_timeout = 0.0

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self.info = info or {"os": "linux", "arch": "x86_64", "version": "0.1.0", "labels": "gpu,big"}
        self.specs: list[CommandSpec] = []

    async def run_command(
        self, spec: CommandSpec, on_output: Callable[[int, bytes], Awaitable[None]], on_wait: object = None
    ) -> Finished:
        self.specs.append(spec)
        await on_output(STDOUT, b"ran\n")
        return Finished(spec.command_id, 0)

    def release(self, command_ids: Sequence[str]) -> None:
        pass

    def interrupt(self, command_id: str, reason: str) -> None:
        pass


class Provider:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def runner(steps: list[BuildStep], *, providers: Sequence[Provider] = (), host: Any = None,
           props: dict[str, Any] | None = None) -> tuple[BuildRunner, RecordingStorage, Session]:
    build = Build(id=1, builder="b", number=1, worker="w1", build_request_id=1, buildset_id=1, started_at=0.0,
                  properties=[PropertyValue(k, v, "Worker") for k, v in (props or {}).items()])
    repo, session = RecordingStorage(), Session()
    repo.adopt(build)
    r = BuildRunner(build, steps, "b", session,  # type: ignore[arg-type]  # the part of a session it uses
                    BuildServices(repo.builds, repo.logs, LogWatchers(), FakeClock(), secrets=providers, host=host))
    return r, repo, session


class SetFromSecret(BuildStep):
    name = "leak"

    async def run(self, ctx: StepContext) -> Result:
        ctx.set_property("url", "https://user:" + ctx.render(Secret("token")) + "@host/", "test")
        ctx.set_property("nested", {"list": [ctx.render(Secret("token"))]}, "test")
        return Result.SUCCESS


async def test_secrets_are_rendered_sent_for_redaction_and_hidden_from_stored_state() -> None:
    steps: list[BuildStep] = [
        ShellCommand(name="use", command=["deploy", Interpolate("--token=%(secret:token)s")],
                     env={"PASS": Secret("pass")}),
        SetFromSecret(),
    ]
    r, repo, session = runner(steps, providers=[Provider({}), Provider({"token": "T0KEN", "pass": "pw"})])
    result, _ = await r.run()
    assert result == Result.SUCCESS
    [spec] = session.specs
    assert spec.argv == ["deploy", "--token=T0KEN"] and spec.env == {"PASS": "pw"}
    assert sorted(spec.redactions) == [("pass", "pw"), ("token", "T0KEN")]
    assert [name for (_, name, _) in repo.step_results] == ["use", "leak"]
    props = {p.name: p.value for p in r.build.properties}
    assert props["url"] == "https://user:<secret token>@host/"
    assert props["nested"] == {"list": ["<secret token>"]}
    assert r.get_property("url") == "https://user:T0KEN@host/"  # steps still see the value


async def test_state_string_hides_the_secret() -> None:
    r, repo, _ = runner([ShellCommand(name="use", command=["echo", Secret("token")])],
                        providers=[Provider({"token": "T0KEN"})])
    states: list[str] = []
    original = repo.builds.finish_step

    async def finish_step(
        build: Build, step: Step, result: Result, state_string: str, at: float, logs: Sequence[int],
        events: Sequence[Event], properties: Sequence[PropertyValue] | None = None,
    ) -> None:
        states.append(state_string)
        await original(build, step, result, state_string, at, logs, events, properties)

    repo.builds.finish_step = finish_step  # type: ignore[method-assign]
    await r.run()
    assert states == ["'echo <secret token>'"]


async def test_a_missing_secret_is_an_exception_with_a_plain_message() -> None:
    r, repo, session = runner([ShellCommand(name="use", command=["echo", Secret("nope")]),
                               ShellCommand(name="after", command=["true"])], providers=[Provider({})])
    result, _ = await r.run()
    assert result == Result.EXCEPTION
    assert [res for (_, _, res) in repo.step_results] == [Result.EXCEPTION, Result.SKIPPED]
    assert repo.log_text("use", "err") == b"secret nope not found in any provider\n"
    assert session.specs == []


def test_secret_without_a_secret_aware_context_says_which_secret() -> None:
    class Plain:
        sourcestamps: list[Any] = []

        def get_property(self, name: str, default: Any = None) -> Any:
            return default

        def has_property(self, name: str) -> bool:
            return False

    with pytest.raises(Exception, match="secret x not found in any provider"):
        render(Secret("x"), Plain())  # type: ignore[arg-type]


def test_secret_in_a_file_strips_by_default_and_refuses_paths(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc\n\n")
    (tmp_path / "key.txt").write_text("k\n")
    assert SecretInAFile(tmp_path).get("token") == "abc"
    assert SecretInAFile(tmp_path, strip=False).get("token") == "abc\n\n"
    assert SecretInAFile(tmp_path, suffixes=[".txt"]).get("key") == "k"
    assert SecretInAFile(tmp_path).get("missing") is None
    assert SecretInAFile(tmp_path).get("../etc/passwd") is None
    assert SecretInAFile(tmp_path).check() == []
    assert SecretInAFile(tmp_path / "nope").check() == [
        f"SecretInAFile: the directory {str(tmp_path / 'nope')!r} does not exist"
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%(worker:name)s", "w1"),
        ("%(worker:os)s/%(worker:arch)s", "linux/x86_64"),
        ("%(worker:labels)s", "gpu,big"),
        ("%(worker:version)s", "0.1.0"),
        ("%(worker:toolchain)s", "gcc12"),  # a property of the worker's configuration
        ("%(worker:missing)s|%(worker:missing:-none)s", "|none"),
        ("%(worker:os:+has-os)s", "has-os"),
    ],
)
def test_worker_keys_in_interpolate(fmt: str, expected: str) -> None:
    r, _, _ = runner([], props={"toolchain": "gcc12"})
    assert r.render(Interpolate(fmt)) == expected


async def test_worker_labels_and_info_are_build_properties_from_the_worker() -> None:
    repo = RecordingStorage()
    registry = WorkerRegistry(FakeClock().now, repo.workers)
    registry.configure([WorkerDecl("w1", "s", 1, {"toolchain": "gcc12"})])
    session = WorkerSession("w1", 1, {"os": "linux", "arch": "arm64", "version": "1", "labels": "gpu,big"},
                            lambda m: None, FakeClock().now)
    d = dispatcher_on(repo, registry, FakeClock())
    builder = Builder("b", workers=["w1"], steps=[ShellCommand(["true"])])
    req = BuildRequest(id=1, buildset_id=1, builder="b", priority=0, submitted_at=0.0)
    props, _ = await d._properties(req, builder, session)
    by_name = {p.name: p for p in props}
    assert (by_name["worker_labels"].value, by_name["worker_labels"].source) == ("gpu,big", "Worker")
    assert (by_name["worker_os"].value, by_name["workername"].value) == ("linux", "w1")
    assert by_name["toolchain"].source == "Worker"


class FakeHostProcess:
    def __init__(self, on_output: Callable[[int, bytes], Awaitable[None]], rc: int, output: bytes) -> None:
        self.on_output, self.rc, self.output = on_output, rc, output
        self.interrupted: str | None = None
        self.release = asyncio.Event()

    def interrupt(self, reason: str) -> None:
        self.interrupted = reason
        self.release.set()

    async def wait(self) -> tuple[int, str]:
        await self.on_output(STDOUT, self.output)
        if self.rc < 0:
            await self.release.wait()
            return -1, "interrupted"
        return self.rc, ""


class FakeHost:
    def __init__(self, rc: int = 0, output: bytes = b"hello from the host\n") -> None:
        self.rc, self.output = rc, output
        self.started: list[dict[str, Any]] = []
        self.procs: list[FakeHostProcess] = []
        self.running = asyncio.Event()

    def start(self, command: Sequence[str] | str, *, workdir: str, env: Mapping[str, str], timeout: float,
              max_time: float, on_output: Callable[[int, bytes], Awaitable[None]]) -> FakeHostProcess:
        self.started.append({"command": command, "workdir": workdir, "env": dict(env), "timeout": timeout})
        proc = FakeHostProcess(on_output, self.rc, self.output)
        self.procs.append(proc)
        self.running.set()
        return proc


@pytest.mark.parametrize(("rc", "expected"), [(0, Result.SUCCESS), (1, Result.FAILURE), (3, Result.WARNINGS)])
async def test_master_shell_command_result_from_exit_code(rc: int, expected: Result) -> None:
    host = FakeHost(rc)
    step = MasterShellCommand(["publish", Interpolate("%(prop:toolchain)s")], env={"A": "b"}, timeout=5,
                              decodeRC={0: Result.SUCCESS, 3: Result.WARNINGS})
    r, repo, session = runner([step], host=host, props={"toolchain": "gcc"})
    result, _ = await r.run()
    assert result == expected
    assert host.started == [{"command": ["publish", "gcc"], "workdir": "", "env": {"A": "b"}, "timeout": 5}]
    log = repo.log_text("MasterShellCommand", "stdio")
    assert b"hello from the host\n" in log and f"exit code {rc}".encode() in log
    assert session.specs == []  # nothing ran on the worker


async def test_master_shell_command_is_interrupted_by_stop() -> None:
    host = FakeHost(rc=-1)
    r, _, _ = runner([MasterShellCommand("sleep 600")], host=host)
    task = asyncio.ensure_future(r.run())
    await asyncio.wait_for(host.running.wait(), 5)
    r.stop("enough")
    result, _ = await asyncio.wait_for(task, 5)
    assert result == Result.CANCELLED and host.procs[0].interrupted == "enough"


async def test_master_shell_command_without_the_host_port_fails_plainly() -> None:
    r, repo, _ = runner([MasterShellCommand("echo")], host=None)
    result, _ = await r.run()
    assert result == Result.EXCEPTION
    assert b"disabled" in repo.log_text("MasterShellCommand", "err")


async def test_master_shell_command_hides_secrets_in_its_header_and_output() -> None:
    host = FakeHost(output=b"token is T0KEN\n")
    step = MasterShellCommand(["publish", Interpolate("--token=%(secret:token)s")], env={"T": Secret("token")})
    r, repo, _ = runner([step], host=host, providers=[Provider({"token": "T0KEN"})])
    result, _ = await r.run()
    assert result == Result.SUCCESS
    assert host.started[0]["command"] == ["publish", "--token=T0KEN"] and host.started[0]["env"] == {"T": "T0KEN"}
    log = repo.log_text("MasterShellCommand", "stdio")
    assert b"T0KEN" not in log
    assert b"publish --token=<secret token>" in log and b"token is <secret token>\n" in log


def test_build_secrets_hide_values_with_quotes_inside_any_structure() -> None:
    from coordinator.domain.properties.secrets import BuildSecrets

    secrets = BuildSecrets([Provider({"q": 'a"b\\c', "short": "ab", "none": ""})])
    assert secrets.get("q") == 'a"b\\c' and secrets.get("short") == "ab" and secrets.get("none") == ""
    value = {"k": ['x a"b\\c y', ("ab",)], 'a"b\\c': 3, "n": 5}
    assert secrets.redact_value(value) == {
        "k": ["x <secret q> y", ("<secret short>",)], "<secret q>": 3, "n": 5,
    }
    assert secrets.redact_bytes(b'-a"b\\c-ab-') == b"-<secret q>-<secret short>-"
    with pytest.raises(SecretNotFound, match="secret other not found in any provider"):
        secrets.get("other")
