"""Typed ForceScheduler parameters and codebases in the domain."""

from __future__ import annotations

import re
from typing import Any

import pytest

from coordinator.domain.builds.builders import Builder
from coordinator.domain.changes.codebases import parse_codebases, stamps_for_changes, with_defaults
from coordinator.domain.errors import InvalidArgument
from coordinator.domain.model import Change, PropertyValue, SourceStamp
from coordinator.domain.scheduling.force import (
    BooleanParameter,
    ChoiceStringParameter,
    CodebaseParameter,
    FixedParameter,
    ForceScheduler,
    IntParameter,
    StringParameter,
    TextParameter,
)
from coordinator.domain.scheduling.schedulers import SingleBranchScheduler
from coordinator.domain.steps.base import ShellCommand
from tests.coordinator.test_domain_schedulers import Harness
from tests.coordinator.test_domain_triggers import service


@pytest.mark.parametrize(
    ("param", "given", "expected"),
    [
        (StringParameter("s"), 12, "12"),
        (TextParameter("t"), "a\nb", "a\nb"),
        (IntParameter("i"), "42", 42),
        (IntParameter("i"), -3, -3),
        (IntParameter("i", default=5), "", 5),
        (BooleanParameter("b"), "yes", True),
        (BooleanParameter("b"), "off", False),
        (BooleanParameter("b"), True, True),
        (ChoiceStringParameter("c", choices=["x", "y"]), "y", "y"),
        (ChoiceStringParameter("c", choices=["x", "y"], multiple=True), ["x", "y"], ["x", "y"]),
        (ChoiceStringParameter("c", choices=["x"], strict=False), "z", "z"),
        (FixedParameter("f", default="ci"), "ci", "ci"),
        (StringParameter("s", regex=r"^v\d+$"), "v2", "v2"),
    ],
)
def test_values_are_converted(param: Any, given: Any, expected: Any) -> None:
    assert param.check(given) == expected


@pytest.mark.parametrize(
    ("param", "given", "reason"),
    [
        (IntParameter("i"), "x", '"x" is not an integer'),
        (IntParameter("i"), True, "True is not an integer"),
        (IntParameter("i"), 1.5, "1.5 is not an integer"),
        (BooleanParameter("b"), "maybe", '"maybe" is not a boolean'),
        (ChoiceStringParameter("c", choices=["x", "y"]), "z", "\"z\" is not one of 'x', 'y'"),
        (ChoiceStringParameter("c", choices=["x", "y"]), ["x", "y"], "only one value may be chosen"),
        (FixedParameter("f", default="ci"), "prod", 'is fixed to "ci"'),
        (StringParameter("s", regex=r"^v\d+$"), "w2", "\"w2\" does not match '^v\\\\d+$'"),
        (StringParameter("s", required=True), "", "a value is required"),
        (StringParameter("s"), {"a": 1}, "is not a string"),
    ],
)
def test_bad_values_say_why(param: Any, given: Any, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        param.check(given)
    assert reason in str(info.value)


def scheduler() -> ForceScheduler:
    return ForceScheduler("force", ["b"], properties=[
        IntParameter("jobs", default=2), BooleanParameter("clean"),
        ChoiceStringParameter("flavour", choices=["debug", "release"]),
        StringParameter("ticket", required=True),
    ])


def test_collect_applies_defaults_converts_and_names_the_bad_parameter() -> None:
    sched = scheduler()
    assert sched.errors == []
    props = sched.collect_properties([PropertyValue("ticket", "T-1", ""), PropertyValue("jobs", "8", "")])
    assert {p.name: p.value for p in props} == {"jobs": 8, "clean": False, "flavour": "debug", "ticket": "T-1"}
    assert {p.source for p in props} == {"Force Build Form"}
    with pytest.raises(InvalidArgument, match='parameter "jobs": "x" is not an integer'):
        sched.collect_properties([PropertyValue("ticket", "T-1", ""), PropertyValue("jobs", "x", "")])
    with pytest.raises(InvalidArgument, match='parameter "ticket": a value is required'):
        sched.collect_properties([])
    with pytest.raises(InvalidArgument, match=r"unknown parameter 'x'.*jobs \(int\), .*ticket \(string, required\)"):
        sched.collect_properties([PropertyValue("x", 1, "")])


def test_without_parameters_any_property_is_accepted_and_a_dict_is_fixed_properties() -> None:
    sched = ForceScheduler("force", builders=["b"], properties={"fixed": 1})
    assert sched.parameters == [] and sched.properties == {"fixed": 1}
    assert sched.collect_properties([PropertyValue("x", 1, "")]) == [PropertyValue("x", 1, "")]


def test_configuration_mistakes_are_errors() -> None:
    sched = ForceScheduler("f", ["b"], properties=[
        IntParameter("n", default="many"), StringParameter("s", regex="("), ChoiceStringParameter("c"),
        StringParameter("n"), "oops",  # type: ignore[list-item]
    ])
    text = "\n".join(sched.errors)
    for part in ("parameter 'n': default \"many\" is not an integer", "regex '(' is not valid",
                 "choices must list at least one value", "parameter 'n' is defined twice",
                 "properties must be parameters"):
        assert part in text, text


CODEBASES = {"app": {"repository": "A", "branch": "main"}, "lib": {"repository": "L", "branch": "stable",
                                                                  "revision": "v1"}}


def test_force_stamps_per_codebase() -> None:
    sched = ForceScheduler("f", ["b"], codebases=CODEBASES)
    stamps = sched.sourcestamps(SourceStamp(), [SourceStamp(branch="dev", codebase="lib"),
                                                SourceStamp(revision="abc", codebase="app")])
    assert [(s.codebase, s.repository, s.branch, s.revision) for s in stamps] == [
        ("app", "A", "main", "abc"), ("lib", "L", "dev", ""),  # another branch: not the default's revision
    ]
    with pytest.raises(InvalidArgument, match="has no codebase 'x'"):
        sched.sourcestamps(SourceStamp(), [SourceStamp(codebase="x")])
    with pytest.raises(InvalidArgument, match="give branch/revision per codebase"):
        sched.sourcestamps(SourceStamp(branch="main"), [])
    with pytest.raises(InvalidArgument, match="given twice"):
        sched.sourcestamps(SourceStamp(), [SourceStamp(codebase="app"), SourceStamp(codebase="app")])
    plain = ForceScheduler("f", ["b"])
    assert plain.sourcestamps(SourceStamp(branch="x"), []) == [SourceStamp(branch="x")]


def test_codebases_forms_and_errors() -> None:
    errors: list[str] = []
    assert list(parse_codebases(["b", "a"], errors) or {}) == ["a", "b"] and errors == []
    assert parse_codebases(None, errors) is None
    for bad, message in [("app", "must be a dict"), ({"a": {"tag": "x"}}, "unknown key(s) tag"),
                         ({"a": {"branch": 3}}, "must be strings"), ([], "at least one codebase")]:
        errors = []
        parse_codebases(bad, errors)
        assert any(message in e for e in errors), (bad, errors)


def test_codebase_parameters_declare_each_codebases_fields() -> None:
    sched = ForceScheduler("f", ["b"], codebases=[
        CodebaseParameter("lib", branch=ChoiceStringParameter("branch", choices=["stable", "dev"]), project=None,
                          repository=FixedParameter("repository", default="L")),
        "app",  # a name alone: string fields, no defaults
    ])
    assert sched.errors == []
    assert [(f.codebase, [p.name for p in f.fields]) for f in sched.codebase_infos()] == [
        ("lib", ["branch", "revision", "repository"]), ("app", ["branch", "revision", "repository", "project"])]
    stamps = sched.sourcestamps(SourceStamp(), [SourceStamp(codebase="lib", branch="dev", revision="r1")])
    assert [(s.codebase, s.repository, s.branch, s.revision) for s in stamps] == [
        ("app", "", "", ""), ("lib", "L", "dev", "r1")]
    for stamp, message in [
        (SourceStamp(codebase="lib", branch="main"), 'codebase "lib" branch: "main" is not one of'),
        (SourceStamp(codebase="lib", repository="X"), 'codebase "lib" repository: is fixed to "L"'),
        (SourceStamp(codebase="lib", project="p"), 'codebase "lib" project: is not on the force form'),
    ]:
        with pytest.raises(InvalidArgument, match=re.escape(message)):
            sched.sourcestamps(SourceStamp(), [stamp])
    # A dict of defaults: every field a string field with the codebase's default.
    plain = ForceScheduler("f", ["b"], codebases=CODEBASES)
    assert [(p.name, p.type, p.default) for p in plain.codebase_infos()[1].fields] == [
        ("branch", "string", "stable"), ("revision", "string", "v1"), ("repository", "string", "L"),
        ("project", "string", "")]
    bad = ForceScheduler("f", ["b"], codebases=[
        CodebaseParameter("a", branch=IntParameter("branch")), CodebaseParameter("a"),
        CodebaseParameter("c", revision=ChoiceStringParameter("revision", choices=["x"], multiple=True))])
    text = "\n".join(bad.errors)
    for part in ("codebase 'a': branch must be a string parameter", "a codebase is declared twice",
                 "codebase 'c': revision takes one value"):
        assert part in text, text


def test_with_defaults_keeps_undeclared_codebases() -> None:
    cbs = parse_codebases(CODEBASES, [])
    out = with_defaults(cbs, [SourceStamp(revision="r", codebase="app"), SourceStamp(branch="x", codebase="z")])
    assert [(s.codebase, s.branch, s.revision) for s in out] == [
        ("app", "main", "r"), ("lib", "stable", "v1"), ("z", "x", "")
    ]
    assert with_defaults(None, [SourceStamp(branch="x")]) == [SourceStamp(branch="x")]


def change(codebase: str, revision: str, n: int) -> Change:
    return Change(author="a", revision=revision, branch="main", repository=codebase.upper(), codebase=codebase, id=n)


def test_change_stamps_take_the_latest_change_per_codebase_and_defaults_for_the_rest() -> None:
    cbs = parse_codebases(CODEBASES, [])
    stamps = stamps_for_changes(cbs, [change("app", "r1", 1), change("app", "r2", 2)])
    assert [(s.codebase, s.repository, s.revision) for s in stamps] == [("app", "APP", "r2"), ("lib", "L", "v1")]
    assert stamps_for_changes(None, [change("", "r1", 1), change("x", "r2", 2)]) == [
        SourceStamp("X", "main", "r2", codebase="x")
    ]


async def test_change_scheduler_with_codebases_ignores_other_codebases() -> None:
    h = Harness(SingleBranchScheduler("s", builders=["b"], tree_stable_timer=5, codebases=CODEBASES))
    h.scheduler.on_change(change("docs", "d1", 1), h.clock, h._submit, h._spawn)
    h.scheduler.on_change(change("lib", "l2", 2), h.clock, h._submit, h._spawn)
    h.clock.advance(5)
    (bs,) = await h.buildsets()
    assert bs.change_ids == [2]
    assert [(s.codebase, s.repository, s.branch, s.revision) for s in bs.sourcestamps] == [
        ("app", "A", "main", ""), ("lib", "LIB", "main", "l2"),
    ]


async def test_force_build_picks_the_named_force_scheduler() -> None:
    svc, repo, _ = service()
    svc.dispatcher.configure([Builder("b", workers=["w"], steps=[ShellCommand(["true"])])])
    svc.schedulers.configure(
        [scheduler(), ForceScheduler("release", ["b"], properties=[StringParameter("version", required=True)])]
    )
    await svc.builds.force_build("b", properties=[PropertyValue("ticket", "T-1", "")])
    await svc.builds.force_build("b", scheduler="release", properties=[PropertyValue("version", "1.0", "")])
    assert [(bs.scheduler, {p.name: p.value for p in bs.properties}.get("version")) for bs in repo.submitted] == [
        ("force", None), ("release", "1.0")
    ]
    with pytest.raises(InvalidArgument, match=r"no ForceScheduler named 'x' lists builder 'b' .*force, release"):
        await svc.builds.force_build("b", scheduler="x")
    with pytest.raises(InvalidArgument, match='parameter "version": a value is required'):
        await svc.builds.force_build("b", scheduler="release")
    assert svc.builds.force_form("b")[0] == "force"
