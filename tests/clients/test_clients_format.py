"""Formatting helpers and protobuf conversion of the clients package."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clients import convert, fmt
from clients.errors import InvalidArgument
from clients.models import Change, Result
from protos.gantry.v1 import common_pb2, status_pb2


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (-1, "0.0s"),
        (0, "0.0s"),
        (1.23, "1.2s"),
        (12.44, "12.4s"),
        (59.94, "59.9s"),
        (59.96, "1m00s"),
        (184, "3m04s"),
        (3599.6, "1h00m"),
        (7530, "2h05m"),
        (90000, "1d01h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert fmt.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB")]
)
def test_format_size(size: int, text: str) -> None:
    assert fmt.format_size(size) == text


def test_format_ago() -> None:
    now = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    assert fmt.format_ago(None, now) == ""
    assert fmt.format_ago(now, now) == "just now"
    assert fmt.format_ago(now - timedelta(seconds=42), now) == "42s ago"
    assert fmt.format_ago(now - timedelta(minutes=5, seconds=3), now) == "5m ago"
    assert fmt.format_ago(now - timedelta(hours=3), now) == "3h ago"
    assert fmt.format_ago(now - timedelta(days=2), now) == "2d ago"


def test_only_success_and_warnings_pass() -> None:
    assert [r for r in Result if fmt.is_good(r)] == [Result.SUCCESS, Result.WARNINGS]
    assert not fmt.is_good(None)


def test_change_to_proto_from_dataclass_and_dict() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    from_dc = convert.change_to_proto(
        Change(author="a", repository="r", branch="b", revision="c", files=("x",), when=when,
               properties={"n": 3, "s": "v"})
    )
    from_dict = convert.change_to_proto(
        {"author": "a", "repository": "r", "branch": "b", "revision": "c", "files": ["x"],
         "when": when.timestamp(), "properties": {"n": 3, "s": "v"}}
    )
    assert from_dc == from_dict
    assert from_dc.when.ToDatetime(tzinfo=UTC) == when
    assert {p.name: json.loads(p.value_json) for p in from_dc.properties} == {"n": 3, "s": "v"}


def test_change_to_proto_rejects_unknown_fields_and_bad_values() -> None:
    with pytest.raises(InvalidArgument, match="autor"):
        convert.change_to_proto({"autor": "a"})
    with pytest.raises(InvalidArgument):
        convert.properties_to_proto({"x": float("nan")})


def test_event_result_only_for_finished_events() -> None:
    started = convert.event_from_proto(status_pb2.Event(id=1, kind="build.started"))
    finished = convert.event_from_proto(
        status_pb2.Event(id=2, kind="build.finished", result=common_pb2.SUCCESS,
                         details_json='{"duration": 1.5}')
    )
    assert started.result is None and started.at is None and started.details == {}
    assert finished.result is Result.SUCCESS and finished.details == {"duration": 1.5}


def test_to_jsonable() -> None:
    event = convert.event_from_proto(
        status_pb2.Event(id=2, kind="step.finished", result=common_pb2.FAILURE,
                         details_json='{"state_string": "failed"}')
    )
    assert convert.to_jsonable(event)["result"] == "FAILURE"
    assert convert.to_jsonable(event)["details"] == {"state_string": "failed"}
    assert json.loads(json.dumps(convert.to_jsonable(event)))["id"] == 2


def test_build_eta_and_expected_step_durations_from_proto_to_screen() -> None:
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp
    from rich.console import Console

    from clients import render
    from protos.gantry.v1 import control_pb2

    now = datetime.now(UTC)
    started, eta = Timestamp(), Timestamp()
    started.FromDatetime(now - timedelta(seconds=30))
    eta.FromDatetime(now + timedelta(seconds=95))
    msg = control_pb2.Build(id=1, builder="b", number=3, started_at=started, eta=eta, steps=[
        control_pb2.Step(id=1, number=0, name="compile", started_at=started,
                         expected_duration=Duration(seconds=42)),
        control_pb2.Step(id=2, number=1, name="test"),
    ])
    build = convert.build_from_proto(msg)
    assert build.eta == now + timedelta(seconds=95)
    assert [s.expected_duration for s in build.steps] == [42.0, None]
    console = Console(record=True, width=150)
    console.print(render.build_detail(build))
    text = console.export_text()
    assert "remaining" in text and "expected" in text and "42.0s" in text

    done = convert.build_from_proto(control_pb2.Build(id=1, builder="b", number=2, complete=True))
    assert done.eta is None
    console = Console(record=True, width=150)
    console.print(render.build_detail(done))
    assert "eta" not in console.export_text() and "expected" not in console.export_text()
