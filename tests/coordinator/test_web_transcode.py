"""The HTTP API's JSON: proto messages with defaults present, 64-bit integers as numbers, `*_json`
fields as JSON values; query strings and bodies parsed with errors that name the field."""

from __future__ import annotations

import pytest

from coordinator.web.api.errors import HttpError
from coordinator.web.api.openapi import openapi
from coordinator.web.api.routes import ROUTES
from coordinator.web.api.transcode import from_json, from_params, parse_int, to_json
from protos.gantry.v1 import common_pb2, control_pb2, status_pb2


def test_defaults_are_present_and_int64_are_numbers() -> None:
    doc = to_json(control_pb2.Build(id=2**40, builder="b", complete=True))
    assert doc["result"] == "SUCCESS" and doc["steps"] == [] and doc["worker"] == ""
    assert doc["id"] == 2**40 and isinstance(doc["number"], int)
    assert doc["finished_at"] is None and doc["eta"] is None  # unset messages are null, not absent


def test_json_fields_become_their_values() -> None:
    event = to_json(status_pb2.Event(id=1, kind="build.finished", details_json='{"a": [1, 2]}'))
    assert event["details"] == {"a": [1, 2]} and "details_json" not in event
    build = to_json(control_pb2.Build(properties=[common_pb2.Property(name="n", value_json="3", source="S")]))
    assert build["properties"] == [{"name": "n", "value": 3, "source": "S"}]
    empty = to_json(status_pb2.Event(id=1))
    assert empty["details"] is None


def test_requests_take_values_for_json_fields() -> None:
    msg = from_json({"properties": [{"name": "jobs", "value": {"n": 3}}]}, control_pb2.ForceBuildRequest)
    assert isinstance(msg, control_pb2.ForceBuildRequest)
    assert msg.properties[0].value_json == '{"n": 3}'
    with pytest.raises(HttpError) as err:
        from_json({"priority": "high"}, control_pb2.ForceBuildRequest)
    assert err.value.status == 400 and "priority" in str(err.value)


def test_query_strings_fill_scalar_fields_and_name_what_is_wrong() -> None:
    msg = from_params({"limit": ["5"], "results": ["FAILURE", "EXCEPTION"], "with_steps": ["true"]},
                      control_pb2.ListBuildsRequest, {"builder": "b"})
    assert isinstance(msg, control_pb2.ListBuildsRequest)
    assert (msg.builder, msg.limit, list(msg.results), msg.with_steps) == ("b", 5, [2, 4], True)
    for params, word in [({"limit": ["x"]}, "limit"), ({"colour": ["red"]}, "colour"),
                         ({"limit": ["1", "2"]}, "limit"), ({"with_steps": ["maybe"]}, "with_steps"),
                         ({"limit": [str(2**40)]}, "limit")]:
        with pytest.raises(HttpError) as err:
            from_params(params, control_pb2.ListBuildsRequest, {})
        assert err.value.status == 400 and word in str(err.value), params
    with pytest.raises(HttpError):
        parse_int(str(2**63), "number")


def test_openapi_has_every_route_and_their_schemas() -> None:
    spec = openapi()
    for route in ROUTES:
        op = spec["paths"][route.path][route.method.lower()]
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]
    props = spec["components"]["schemas"]["Property"]["properties"]
    assert "value" in props and "value_json" not in props
