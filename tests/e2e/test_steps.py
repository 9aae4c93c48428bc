"""Steps end to end: properties rendered into commands, step options, and custom steps, on a
real coordinator and worker."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from protos.gantry.v1 import logs_pb2
from tests.e2e.harness import FAILURE, SKIPPED, SUCCESS, WARNINGS, Cluster, describe_events

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# The custom step of the manual (docs/custom_step.md), run as the manual shows it.
_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "custom_step.py"
CUSTOM_STEP = "\n" + next(
    ast.get_source_segment(_EXAMPLE.read_text(), node) or ""
    for node in ast.parse(_EXAMPLE.read_text()).body
    if isinstance(node, ast.ClassDef) and node.name == "TestsWithRetry"
) + "\n"

CONFIG = CUSTOM_STEP + """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("interp", workers=["w1"], steps=[
            ShellCommand(name="greet",
                         command=["echo", Interpolate("hello %(prop:who)s on %(prop:branch:-default)s")],
                         descriptionDone=Interpolate("greeted %(prop:who)s")),
            ShellCommand(name="env", command="echo \\"$WHO@$REV\\"",
                         env={"WHO": Property("who"), "REV": Interpolate("%(src::revision:-none)s")}),
        ]),
        Builder("options", workers=["w1"], steps=[
            ShellCommand(name="lint", command="echo 'style nit'; exit 1",
                         decodeRC={0: SUCCESS, 1: WARNINGS}),
            ShellCommand(name="deploy", command=["echo", "deploying"], doStepIf=False),
            ShellCommand(name="only-on-release", command=["echo", "release"],
                         doStepIf=lambda ctx: ctx.get_property("branch") == "release",
                         hideStepIf=lambda result, ctx: result == SKIPPED),
            ShellCommand(name="after", command=["echo", "after"]),
        ]),
        Builder("setprop", workers=["w1"], steps=[
            SetPropertyFromCommand(name="version", command="echo '  1.2.3  '", property="version"),
            SetPropertyFromCommand(name="facts", command="echo a; echo b; echo err >&2; exit 0",
                                   extract_fn=lambda rc, out, err: {"n_lines": len(out.splitlines()),
                                                                     "err": err.strip(), "rc": rc}),
            ShellCommand(name="use", command=["echo", Interpolate("v%(prop:version)s/%(prop:n_lines)s")]),
        ]),
        Builder("sequence", workers=["w1"], steps=[
            ShellSequence(name="seq", commands=[
                ShellArg(["echo", "one"]),
                ShellArg("echo two; exit 1", logname="second", flunkOnFailure=False, warnOnFailure=True),
                ShellArg("echo three; exit 2", haltOnFailure=True),
                ShellArg(["echo", "never"]),
            ]),
        ]),
        Builder("compile", workers=["w1"], steps=[
            Compile(command="printf 'a.c:1: warning: unused\\nok\\n'; echo 'b.c:2: warning: x' >&2"),
            Compile(name="strict", command="echo 'c.c:1: warning: y'", maxWarnCount=0),
        ]),
        Builder("custom", workers=["w1"], steps=[
            # Fails the first time (creating the marker), passes the second: flaky.
            TestsWithRetry(command="test -f marker || { touch marker; exit 1; }",
                           retry_command=["echo", Interpolate("retry V=%(prop:verbosity:-1)s")]),
            TestsWithRetry(name="always-fails", command="exit 2", retry_command="exit 3"),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["interp", "options", "setprop", "sequence", "compile",
                                                  "custom"])],
)
"""


async def _forced_build(coord, builder: str, **kw):  # type: ignore[no-untyped-def]
    rec = await coord.record()
    forced = await coord.force(builder, **kw)
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    await rec.aclose()
    return done, await coord.get_build(builder, finished.build_number), rec


async def test_forced_properties_are_interpolated_into_commands(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(
        coord, "interp", properties={"who": "world"}, branch="release", revision="abc123"
    )
    assert done.result == SUCCESS, describe_events(rec.events)
    stdout = await coord.read_log("interp", build.number, "greet", logs_pb2.STDOUT)
    assert stdout == b"hello world on release\n"
    assert await coord.read_log("interp", build.number, "env", logs_pb2.STDOUT) == b"world@abc123\n"
    assert build.steps[0].state_string == "greeted world"

    # No branch given: the source stamp's branch is "", and the property is *set* to "" — so,
    # as in Buildbot, ':-' keeps the empty value (':~' would take the default).
    done, build, rec = await _forced_build(coord, "interp", properties={"who": "you"})
    props = {p.name: json.loads(p.value_json) for p in build.properties}
    assert props["branch"] == ""
    assert await coord.read_log("interp", build.number, "greet", logs_pb2.STDOUT) == b"hello you on \n"
    assert await coord.read_log("interp", build.number, "env", logs_pb2.STDOUT) == b"you@none\n"


async def test_decode_rc_warnings_and_do_step_if(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "options")
    assert done.result == WARNINGS, describe_events(rec.events)
    assert build.result == WARNINGS and build.state_string == "warnings lint"
    assert [(s.name, s.result, s.state_string, s.hidden) for s in build.steps] == [
        ("lint", WARNINGS, "\"echo 'style nit'; exit 1\" (warnings)", False),
        ("deploy", SKIPPED, "skipped", False),
        ("only-on-release", SKIPPED, "skipped", True),
        ("after", SUCCESS, "'echo after'", False),
    ]
    assert [log.name for log in build.steps[1].logs] == []  # no command ran
    assert await coord.read_log("options", build.number, "lint", logs_pb2.STDOUT) == b"style nit\n"


async def test_set_property_from_command(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "setprop")
    assert done.result == SUCCESS, describe_events(rec.events)
    props = {p.name: (json.loads(p.value_json), p.source) for p in build.properties}
    source = "SetPropertyFromCommand Step"
    assert props["version"] == ("1.2.3", source)
    assert (props["n_lines"], props["err"], props["rc"]) == ((2, source), ("err", source), (0, source))
    assert await coord.read_log("setprop", build.number, "use", logs_pb2.STDOUT) == b"v1.2.3/2\n"
    # The output is stored in the step's log as well.
    assert await coord.read_log("setprop", build.number, "version", logs_pb2.STDOUT) == b"  1.2.3  \n"


async def test_shell_sequence(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "sequence")
    assert done.result == FAILURE, describe_events(rec.events)
    [step] = build.steps
    assert step.result == FAILURE
    assert [log.name for log in step.logs] == ["stdio", "second", "stdio2"]  # halted before the 4th
    for log, text in (("stdio", b"one\n"), ("second", b"two\n"), ("stdio2", b"three\n")):
        assert await coord.read_log("sequence", build.number, "seq", logs_pb2.STDOUT, log=log) == text


async def test_compile_counts_warnings(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "compile")
    assert done.result == FAILURE, describe_events(rec.events)
    assert [(s.name, s.result, s.state_string) for s in build.steps] == [
        ("compile", WARNINGS, "compile (warnings)"),
        ("strict", FAILURE, "compile (failure)"),  # more than maxWarnCount=0
    ]
    props = {p.name: (json.loads(p.value_json), p.source) for p in build.properties}
    assert props["warnings-count"] == (1, "WarningCountingShellCommand")  # the last step's count


async def test_custom_step_example(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "custom", properties={"verbosity": 2})
    assert done.result == FAILURE, describe_events(rec.events)
    assert [(s.name, s.result, [log.name for log in s.logs]) for s in build.steps] == [
        ("tests", WARNINGS, ["stdio", "retry"]),
        ("always-fails", FAILURE, ["stdio", "retry"]),
    ]
    assert await coord.read_log("custom", build.number, "tests", logs_pb2.STDOUT, log="retry") == b"retry V=2\n"
    props = {p.name: (json.loads(p.value_json), p.source) for p in build.properties}
    assert props["flaky"] == (False, "TestsWithRetry")  # the second step failed twice
