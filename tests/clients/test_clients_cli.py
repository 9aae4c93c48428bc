"""Argument parsing of the `gantry` CLI, property parsing and subcommand delegation."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from clients import cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=3", ("n", 3)),
        ("ratio=1.5", ("ratio", 1.5)),
        ("flag=true", ("flag", True)),
        ("nothing=null", ("nothing", None)),
        ('quoted="007"', ("quoted", "007")),
        ("list=[1, 2]", ("list", [1, 2])),
        ('obj={"a": 1}', ("obj", {"a": 1})),
        ("plain=hello world", ("plain", "hello world")),
        ("empty=", ("empty", "")),
        ("eq=a=b", ("eq", "a=b")),
        ("version=1.2.3", ("version", "1.2.3")),
        ("nan=NaN", ("nan", "NaN")),  # not valid JSON: stays a string
        (" spaced =x", ("spaced", "x")),
    ],
)
def test_property_values_are_json_if_they_parse(text: str, expected: tuple[str, object]) -> None:
    assert cli.parse_property(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", ""])
def test_malformed_properties_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_property(text)


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


def test_force_arguments() -> None:
    args = parse(
        "force", "runtests", "--branch", "main", "--property", "n=3", "--property", "who=me",
        "--wait", "--coordinator", "ci:1234", "--json",
    )
    assert args.builder == "runtests" and args.branch == "main" and args.wait and args.json
    assert dict(args.property) == {"n": 3, "who": "me"}
    assert args.coordinator == "ci:1234"
    assert args.handler.__name__ == "cmd_force"


def test_force_codebase_arguments() -> None:
    args = parse("force", "app", "--codebase", "lib:branch=dev", "--codebase", "lib:revision=a:b=c",
                 "--codebase", ":branch=x", "--parameters")
    assert args.codebase == [("lib", "branch", "dev"), ("lib", "revision", "a:b=c"), ("", "branch", "x")]
    assert args.parameters


@pytest.mark.parametrize("text", ["lib", "lib:branch", "lib:tag=x", "branch=x"])
def test_malformed_codebase_arguments_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="CODEBASE:FIELD=VALUE"):
        cli.parse_codebase(text)


def test_sendchange_arguments() -> None:
    args = parse(
        "sendchange", "--author", "A <a@x>", "--repository", "r", "--branch", "b",
        "--revision", "abc", "--when", "1700000000.5", "--property", "x=1", "f1", "dir/f2",
    )
    assert (args.author, args.repository, args.branch, args.revision) == ("A <a@x>", "r", "b", "abc")
    assert args.when == 1700000000.5 and args.files == ["f1", "dir/f2"]
    assert args.comments == "" and args.project == "" and args.json is False


def test_log_watch_and_list_arguments() -> None:
    log = parse("log", "b", "7", "compile", "--follow", "--channel", "stderr")
    assert (log.builder, log.number, log.step, log.follow, log.channel, log.log) == (
        "b", 7, "compile", True, "stderr", "stdio"
    )
    watch = parse("watch", "--builder", "a", "--builder", "b", "--kind", "build.finished")
    assert watch.builder == ["a", "b"] and watch.kind == ["build.finished"] and watch.since == -1
    builds = parse("builds", "--builder", "x", "--limit", "5")
    assert (builds.builder, builds.limit) == ("x", 5)
    up = parse("up")
    assert (up.data_dir, up.listen) == ("./gantry-data", "127.0.0.1:9989")


def test_coordinator_address_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.ENV_COORDINATOR, raising=False)
    assert parse("workers").coordinator == "localhost:9989"
    monkeypatch.setenv(cli.ENV_COORDINATOR, "ci.example.org:7000")
    assert parse("workers").coordinator == "ci.example.org:7000"
    assert parse("workers", "--coordinator", "other:1").coordinator == "other:1"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["force"],
        ["nosuchcommand"],
        ["build", "b", "notanumber"],
        ["builds", "--limit", "0"],
        ["log", "b", "1", "s", "--channel", "purple"],
        ["force", "b", "--property", "novalue"],
        ["sendchange", "--author", "a"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("up", "sendchange", "force", "builds", "build", "log", "workers", "watch",
                 "coordinator", "checkconfig", "worker"):
        assert word in out


def test_delegated_subcommands_get_the_rest_of_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    def fake_main(argv: list[str]) -> int:
        calls.append(("main", argv))
        return 3

    def fake_checkconfig(argv: list[str]) -> None:
        calls.append(("check", argv))

    fake = types.ModuleType("fake_gantry_coordinator_cli")
    fake.main = fake_main  # type: ignore[attr-defined]
    fake.checkconfig_main = fake_checkconfig  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_gantry_coordinator_cli", fake)
    monkeypatch.setitem(cli.DELEGATED, "coordinator", ("fake_gantry_coordinator_cli", "main", "x", "x"))
    monkeypatch.setitem(
        cli.DELEGATED, "checkconfig", ("fake_gantry_coordinator_cli", "checkconfig_main", "x", "x")
    )
    assert cli.main(["coordinator", "start", "--listen", "h:1", "--json"]) == 3
    assert cli.main(["checkconfig", "master.py"]) == 0
    assert calls == [("main", ["start", "--listen", "h:1", "--json"]), ("check", ["master.py"])]


def test_a_missing_delegate_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        cli.DELEGATED, "coordinator", ("no_such_gantry_package.cli", "main", "the coordinator", "x")
    )
    assert cli.main(["coordinator", "start"]) == 2
    assert capsys.readouterr().err.strip() == "gantry: the coordinator is not installed here"
