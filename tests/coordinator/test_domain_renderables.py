"""Properties and interpolation: every form of Interpolate, Property, Transform and @renderer,
rendered through lists, tuples and dicts, with Buildbot's rules for missing values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest

from coordinator.domain.model import SourceStamp
from coordinator.domain.properties.renderables import (
    Interpolate,
    Property,
    Transform,
    render,
    renderer,
)
from coordinator.domain.results import Result
from coordinator.domain.steps.base import ShellCommand, StepContext
from coordinator.domain.workers.commands import Finished


class Ctx:
    """A build as rendering and steps see it, recording the commands it is asked to run."""

    def __init__(self, props: dict[str, Any], stamps: Sequence[SourceStamp] = ()) -> None:
        self.props = dict(props)
        self.sourcestamps = list(stamps)
        self.commands: list[dict[str, Any]] = []
        self.builder, self.worker, self.interrupted = "b", "w", False

    def get_property(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)

    getProperty = get_property

    def has_property(self, name: str) -> bool:
        return name in self.props

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.props[name] = value

    def render(self, value: Any) -> Any:
        return render(value, self)

    async def run_command(
        self, command: Sequence[str] | str, *, workdir: str, env: Mapping[str, str],
        timeout: float, max_time: float, log_name: str = "stdio", collect: Any = None,
    ) -> Finished:
        self.commands.append({"command": command, "workdir": workdir, "env": dict(env)})
        return Finished("c", 0)


def as_step_context(ctx: Ctx) -> StepContext:
    """Ctx implements the part of StepContext that rendering and ShellCommand use."""
    return cast(StepContext, ctx)


STAMPS = [
    SourceStamp(repository="r0", branch="main", revision="abc", codebase=""),
    SourceStamp(repository="r1", branch="lib-br", revision="", codebase="lib"),
]
CTX = Ctx({"branch": "main", "who": "world", "empty": "", "zero": 0, "none": None, "n": 3}, STAMPS)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%(prop:who)s", "world"),
        ("hello %(prop:who)s on %(prop:branch)s", "hello world on main"),
        ("[%(prop:missing)s]", "[]"),  # missing, no default: empty string (Buildbot)
        ("[%(prop:none)s]", "[]"),  # None renders as empty too
        ("%(prop:n)s-%(prop:n)d", "3-3"),
        ("%(prop:missing:-dflt)s", "dflt"),
        ("%(prop:who:-dflt)s", "world"),
        ("[%(prop:empty:-dflt)s]", "[]"),  # '-': set (even if false) wins
        ("%(prop:empty:~dflt)s", "dflt"),  # '~': false also takes the default
        ("%(prop:zero:~dflt)s", "dflt"),
        ("%(prop:missing:-)s|", "|"),
        ("%(prop:who:+yes)s", "yes"),
        ("[%(prop:missing:+yes)s]", "[]"),
        ("%(prop:who:?|set|unset)s %(prop:missing:?|set|unset)s", "set unset"),
        ("%(prop:zero:#?|T|F)s %(prop:n:#?|T|F)s", "F T"),
        ("%(src::revision)s %(src::branch)s %(src::repository)s", "abc main r0"),
        ("%(src:lib:branch)s", "lib-br"),
        ("[%(src:lib:revision)s]", "[]"),  # empty attribute: missing
        ("%(src:lib:revision:-HEAD)s", "HEAD"),
        ("[%(src:nope:branch)s]", "[]"),  # unknown codebase: missing
        ("100%% %(prop:who)s", "100% world"),
    ],
)
def test_interpolate_forms(fmt: str, expected: str) -> None:
    assert render(Interpolate(fmt), CTX) == expected


def test_interpolate_keywords_are_rendered_and_can_have_defaults() -> None:
    fmt = Interpolate("%(kw:who)s/%(kw:missing:-x)s/%(kw:b)s", who="me", b=Property("branch"))
    assert render(fmt, CTX) == "me/x/main"


def test_interpolate_positional_arguments() -> None:
    assert render(Interpolate("%s-%s", Property("who"), "lit"), CTX) == "world-lit"
    with pytest.raises(ValueError):
        Interpolate("%s", "a", b="c")


def test_unknown_key_or_operator_is_an_error() -> None:
    with pytest.raises(KeyError):
        render(Interpolate("%(nope:x)s"), CTX)
    with pytest.raises(KeyError):
        render(Interpolate("%(prop:x:!y)s"), CTX)


def test_property_with_defaults() -> None:
    assert render(Property("who"), CTX) == "world"
    assert render(Property("n"), CTX) == 3  # not turned into a string
    assert render(Property("missing"), CTX) is None
    assert render(Property("missing", default="d"), CTX) == "d"
    assert render(Property("empty", default="d"), CTX) == "d"  # defaultWhenFalse
    assert render(Property("empty", default="d", defaultWhenFalse=False), CTX) == ""


def test_transform_renders_its_arguments_first() -> None:
    t = Transform(lambda a, b, sep: sep.join([a, b]), Property("who"), Interpolate("%(prop:branch)s"),
                  sep=Property("missing", default="+"))
    assert render(t, CTX) == "world+main"
    with pytest.raises(TypeError):
        Transform("not callable")  # type: ignore[arg-type]


def test_renderer_function_gets_the_properties_object() -> None:
    @renderer
    def flags(props: Any) -> list[str]:
        return ["-j", str(props.getProperty("n") * 2)]

    assert render(["make", flags, "all"], CTX) == ["make", ["-j", "6"], "all"]


def test_render_walks_lists_tuples_and_dicts_and_keeps_other_values() -> None:
    value = {"a": [Property("who"), ("x", Interpolate("%(prop:branch)s"))], Interpolate("k-%(prop:n)s"): 1}
    assert render(value, CTX) == {"a": ["world", ("x", "main")], "k-3": 1}
    obj = object()
    assert render([obj, 1.5, None, True, b"b"], CTX) == [obj, 1.5, None, True, b"b"]


def test_a_renderable_rendering_to_a_renderable_is_rendered_again() -> None:
    assert render(Property("missing", default=Interpolate("%(prop:who)s")), CTX) == "world"


async def test_shell_command_renders_command_env_workdir_and_descriptions() -> None:
    ctx = Ctx({"who": "world", "dir": "sub", "v": 7})
    step = ShellCommand(
        command=["echo", Interpolate("hi %(prop:who)s"), Property("v")],
        workdir=Interpolate("build/%(prop:dir)s"),
        env={"WHO": Property("who"), "N": Property("v")},
        descriptionDone=Interpolate("greeted %(prop:who)s"),
    )
    assert step.errors == []
    assert await step.run(as_step_context(ctx)) == Result.SUCCESS
    assert ctx.commands == [{"command": ["echo", "hi world", "7"], "workdir": "build/sub",
                             "env": {"WHO": "world", "N": "7"}}]
    assert step.describe(True, Result.SUCCESS, as_step_context(ctx)) == "greeted world"
    assert step.describe(True, Result.FAILURE, as_step_context(ctx)) == "greeted world (failure)"


async def test_shell_command_string_command_and_default_description_are_rendered() -> None:
    ctx = Ctx({"t": "check"})
    step = ShellCommand(command=Interpolate("make %(prop:t)s"))
    assert step.errors == []
    await step.run(as_step_context(ctx))
    assert ctx.commands[0]["command"] == "make check"
    assert step.describe(True, Result.SUCCESS, as_step_context(ctx)) == "'make check'"


async def test_a_workdir_rendering_outside_the_build_directory_fails_the_step() -> None:
    step = ShellCommand(command=["true"], workdir=Property("dir"))
    with pytest.raises(ValueError):
        await step.run(as_step_context(Ctx({"dir": "../etc"})))


def test_shell_command_validation_accepts_renderables_and_rejects_other_objects() -> None:
    nested: list[Any] = ["a", Property("x"), ["b", Interpolate("c")]]  # Buildbot flattens these
    assert ShellCommand(command=nested).errors == []
    assert ShellCommand(command=Property("cmd"), env={"A": Interpolate("x")}).errors == []
    assert ShellCommand(command=["a", object()]).errors  # type: ignore[list-item]
    assert ShellCommand(command=["a"], env={"A": 1}).errors  # type: ignore[dict-item]
    assert ShellCommand(command=["a"], workdir=3).errors  # type: ignore[arg-type]
