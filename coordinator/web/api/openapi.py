"""The OpenAPI 3 description of the API, generated from the proto descriptors and the route table
(so it cannot drift from what is served). Schemas describe the JSON of `transcode`: snake_case
names, defaults present, `*_json` fields as their JSON value without the suffix."""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from coordinator.web.api.routes import BUILD, LOG, OTHER, ROUTES, Route
from coordinator.web.api.transcode import JSON_SUFFIX, WELL_KNOWN
from protos.gantry.v1 import common_pb2, status_pb2

F = FieldDescriptor
INTEGER = {F.CPPTYPE_INT32: "int32", F.CPPTYPE_INT64: "int64", F.CPPTYPE_UINT32: "int32", F.CPPTYPE_UINT64: "int64"}
ERROR = {"$ref": "#/components/schemas/Error"}
STATUS_TEXT = {400: "Invalid argument", 401: "Unauthenticated", 403: "Permission denied", 404: "Not found",
               500: "Internal error"}


def _field_schema(f: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        value = f.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, schemas)}
    one = _single(f, schemas)
    if f.is_repeated:
        return {"type": "array", "items": one}
    return one


def _single(f: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if f.type == F.TYPE_MESSAGE:
        name = f.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return {"type": "string", "format": "date-time"}
        if name == "google.protobuf.Duration":
            return {"type": "string", "description": "seconds with an 's' suffix, e.g. \"1.5s\""}
        _message(f.message_type, schemas)
        return {"$ref": f"#/components/schemas/{f.message_type.name}"}
    if f.type == F.TYPE_ENUM:
        return _enum(f.enum_type)
    if f.cpp_type in INTEGER:
        return {"type": "integer", "format": INTEGER[f.cpp_type]}
    if f.type == F.TYPE_BOOL:
        return {"type": "boolean"}
    if f.cpp_type in (F.CPPTYPE_DOUBLE, F.CPPTYPE_FLOAT):
        return {"type": "number"}
    if f.type == F.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


def _enum(e: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [v.name for v in e.values]}


def _json_field(f: FieldDescriptor) -> bool:
    return f.name.endswith(JSON_SUFFIX) and f.type == F.TYPE_STRING and not f.is_repeated


def _message(desc: Descriptor, schemas: dict[str, Any]) -> None:
    if desc.name in schemas or desc.full_name in WELL_KNOWN:
        return
    props: dict[str, Any] = {}
    schemas[desc.name] = {"type": "object", "properties": props}
    for f in desc.fields:
        if _json_field(f):
            props[f.name[: -len(JSON_SUFFIX)]] = {"description": "any JSON value", "nullable": True}
        else:
            props[f.name] = _field_schema(f, schemas)
            if f.type == F.TYPE_MESSAGE and not f.is_repeated and "$ref" not in props[f.name]:
                props[f.name]["nullable"] = True  # unset: null
            elif f.type == F.TYPE_MESSAGE and not f.is_repeated:
                props[f.name] = {"allOf": [props[f.name]], "nullable": True}


def _query_params(desc: Descriptor, skip: set[str]) -> list[dict[str, Any]]:
    out = []
    for f in desc.fields:
        if f.name in skip or (f.type == F.TYPE_MESSAGE and f.message_type.full_name not in WELL_KNOWN):
            continue
        schema = _field_schema(f, {})
        param: dict[str, Any] = {"name": f.name, "in": "query", "required": False, "schema": schema}
        if f.is_repeated:
            param["explode"] = True
        out.append(param)
    return out


def _responses(ok: dict[str, Any], content_type: str = "application/json") -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {content_type: {"schema": ok}}}}
    for code, text in STATUS_TEXT.items():
        responses[str(code)] = {"description": text, "content": {"application/json": {"schema": ERROR}}}
    return responses


INT64 = {"type": "integer", "format": "int64"}
SSE = "text/event-stream"
TEXT: dict[str, Any] = {"type": "string"}
_TIMES: dict[str, Any] = {"type": "object", "properties": {
    "offset": INT64, "size": INT64,
    "times": {"type": "array", "items": {"type": "array", "items": INT64, "minItems": 2, "maxItems": 2}},
}}


class Shape(NamedTuple):
    """What a route of OTHER answers, and the query parameters it takes beyond the path."""

    content_type: str
    what: str
    query: list[dict[str, Any]]
    schema: dict[str, Any] = TEXT


# By path, as http.py serves them: ReadLog is served twice (its bytes, and their times).
OTHER_SHAPE: dict[str, Shape] = {
    "/api/v1/events": Shape(SSE, "Each `data:` is an Event (its `id:` the event id).", [
        {"name": "since", "in": "query", "schema": INT64,
         "description": "deliver events after this id (0: all history, -1: only new); Last-Event-ID wins"},
        *_query_params(status_pb2.SubscribeRequest.DESCRIPTOR, {"since_event_id"}),
    ]),
    BUILD + "/watch": Shape(SSE, "Each `data:` is a BuildUpdate: the build's full state first, then after each "
                                 "of its events (`id:` the event id); an `end` event follows the finished state.", []),
    LOG + "/follow": Shape(SSE, "Each `data:` is {offset, text, eof} (`id:` the byte offset after it); an `eof` "
                                "event ends it.", [{"name": "offset", "in": "query", "schema": INT64,
                                                    "description": "start at this byte; Last-Event-ID wins"}]),
    LOG + "/raw": Shape("text/plain", "The log's bytes, all channels in arrival order.", [
        {"name": "download", "in": "query", "schema": {"type": "string"},
         "description": "any value: served as an attachment"}]),
    LOG + "/times": Shape("application/json", "The marks of the range's bytes (plain JSON numbers).", [
        {"name": n, "in": "query", "schema": INT64} for n in ("offset", "limit")], _TIMES),
    BUILD + "/artifacts/{name}": Shape("application/octet-stream", "The artifact's bytes.", []),
}


def _other(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    """A route served as a stream or as bytes: its parameters, and its message's schema listed so
    the description can name it."""
    shape = OTHER_SHAPE[route.path]
    _message(route.descriptor.output_type, schemas)
    path = [{"name": n, "in": "path", "required": True, "schema": INT64 if n == "number" else {"type": "string"}}
            for n in re.findall(r"{(\w+)}", route.path)]
    return {
        "operationId": f"{route.rpc}_{route.method.lower()}_{shape.content_type.split('/')[1].replace('-', '_')}",
        "summary": route.summary,
        "description": f"Serves gantry.v1.{route.service}/{route.rpc}. {shape.what}",
        "tags": [route.service],
        "parameters": path + shape.query,
        "responses": _responses(shape.schema, shape.content_type),
    }


# The web UI's pages: each has a JSON twin (`?format=json`) holding the data the page renders,
# read through the same servicers as the routes above (coordinator/web/ui/pages.py).
_FILTERS: list[dict[str, Any]] = [
    {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "explode": True,
     "description": "only builders with this tag (repeat, or comma-separated)"},
    {"name": "name", "in": "query", "schema": {"type": "string"},
     "description": "only builders whose name contains this"},
]
_LIMIT: dict[str, Any] = {"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int32"},
          "description": "at most this many (1..1000)"}
VIEWS: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("/", "Home: each builder's latest result, running builds with ETA, queue, workers", _FILTERS),
    ("/waterfall", "Waterfall: recent builds per builder, with steps, pending requests, offline workers",
     [*_FILTERS, _LIMIT]),
    ("/console", "Console: changes × builders", _FILTERS),
    ("/grid", "Grid: builders × recent changes", _FILTERS),
    ("/builders/{builder}", "A builder: pending requests (why they wait, expected start), history, tests", [
        {"name": "result", "in": "query", "explode": True, "description": "only builds with this result (repeat)",
         "schema": {"type": "array", "items": _enum(common_pb2.Result.DESCRIPTOR)}},
        {"name": "branch", "in": "query", "schema": {"type": "string"}, "description": "only builds of this branch"},
        {"name": "before", "in": "query", "schema": INT64, "description": "the page of builds with smaller ids"},
        {"name": "test", "in": "query", "schema": {"type": "string"}, "description": "also this test's runs"},
    ]),
    ("/builders/{builder}/builds/{number}", "A build: steps, properties, changes, triggered builds, artifacts", []),
    ("/builders/{builder}/builds/{number}/steps/{step}/logs/{log}", "A log's page (its build and step)", []),
    ("/workers", "Workers: connected, running, paused or draining, last seen", []),
    ("/changes", "Recent changes", [_LIMIT]),
]


def _view(path: str, summary: str, query: list[dict[str, Any]]) -> dict[str, Any]:
    both = {"text/html": {"schema": {"type": "string"}}}
    responses = _responses({"type": "object", "description": "the data the page renders"})
    for answer in responses.values():  # without format=json the page (or an error page) is HTML
        answer["content"].update(both)
    path_params = [{"name": n, "in": "path", "required": True, "schema": INT64 if n == "number" else {"type": "string"}}
                   for n in re.findall(r"{(\w+)}", path)]
    return {
        "operationId": "view_" + (re.sub(r"\W+", "_", path).strip("_") or "home"),
        "summary": summary,
        "description": "A web UI page; with format=json its JSON twin, the data the page shows.",
        "tags": ["Views"],
        "parameters": [*path_params,
                       {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json"]},
                        "description": "json: the page's data as JSON instead of HTML"}, *query],
        "responses": responses,
    }


@functools.cache
def openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string", "description": "what went wrong, for a person"},
                "code": {"type": "string", "description": "the gRPC status code name"},
            },
        }
    }
    paths: dict[str, Any] = {}
    for route in ROUTES:
        method = route.descriptor
        in_desc, out_desc = method.input_type, method.output_type
        _message(in_desc, schemas)
        _message(out_desc, schemas)
        path_names = re.findall(r"{(\w+)}", route.path)
        params = [
            {"name": n, "in": "path", "required": True,
             "schema": _field_schema(in_desc.fields_by_name[n], {})}
            for n in path_names
        ]
        op: dict[str, Any] = {
            "operationId": f"{route.rpc}_{route.method.lower()}_{len(paths)}",
            "summary": route.summary,
            "description": f"Transcodes gantry.v1.{route.service}/{route.rpc}.",
            "tags": [route.service],
            "responses": _responses({"$ref": f"#/components/schemas/{out_desc.name}"}),
        }
        if route.method == "GET":
            params += _query_params(in_desc, set(path_names))
        else:
            op["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{in_desc.name}"}}}}
            # coordinator/web/auth.py limits the writes of one address (a real answer, documented)
            op["responses"]["429"] = {"description": "Too many writes from this address: retry after Retry-After",
                                      "content": {"application/json": {"schema": ERROR}}}
        op["parameters"] = params
        paths.setdefault(route.path, {})[route.method.lower()] = op
    for route in OTHER:
        paths.setdefault(route.path, {})[route.method.lower()] = _other(route, schemas)
    for path, summary, query in VIEWS:
        paths[path] = {"get": _view(path, summary, query)}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Gantry HTTP API",
            "version": "v1",
            "description": "The gRPC API (protos/gantry/v1) transcoded to JSON over HTTP.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
