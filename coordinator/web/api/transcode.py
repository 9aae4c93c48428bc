"""Protobuf messages <-> the API's JSON.

Proto3 JSON as protobuf's `json_format` writes it, made pleasant to script against: field names
as in the .proto (snake_case), fields with default values present (a SUCCESS result is not
omitted, an unset timestamp is null), 64-bit integers as numbers, and a `*_json` string field
(an event's `details_json`, a property's `value_json`, a parameter's `default_json`) as the JSON
value itself under the name without the suffix (`details`, `value`, `default`). Requests accept
the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from coordinator.web.api.errors import invalid

JSON_SUFFIX = "_json"
WELL_KNOWN = {"google.protobuf.Timestamp", "google.protobuf.Duration"}


def to_json(msg: Message) -> dict[str, Any]:
    doc = json_format.MessageToDict(
        msg,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
        unquote_int64_if_possible=True,
    )
    return _unwrap(doc, msg.DESCRIPTOR)


def _is_message(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.full_name not in WELL_KNOWN


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


def _unwrap(doc: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    for f in desc.fields:
        if f.name not in doc:
            if f.type == FieldDescriptor.TYPE_MESSAGE and not _repeated(f):
                doc[f.name] = None  # an unset message (a step not started yet): present, as null
            continue
        value = doc[f.name]
        if f.name.endswith(JSON_SUFFIX) and f.type == FieldDescriptor.TYPE_STRING and not _repeated(f):
            del doc[f.name]
            try:
                doc[f.name[: -len(JSON_SUFFIX)]] = json.loads(value) if value else None
            except ValueError:  # stored before validation existed: show it as text
                doc[f.name[: -len(JSON_SUFFIX)]] = value
        elif _is_message(f) and not _is_map(f):
            if _repeated(f):
                doc[f.name] = [_unwrap(v, f.message_type) for v in value]
            elif value is not None:
                doc[f.name] = _unwrap(value, f.message_type)
    return doc


def _repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def from_json(doc: Any, cls: type[Message], where: str = "") -> Message:
    """A request message from a JSON body; unknown fields and wrong types are 400s that say which."""
    if not isinstance(doc, Mapping):
        raise invalid(f"{where or 'the body'} must be a JSON object")
    msg = cls()
    try:
        json_format.ParseDict(_wrap(dict(doc), cls.DESCRIPTOR), msg)
    except json_format.ParseError as exc:
        raise invalid(str(exc)) from None
    return msg


def _wrap(doc: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    by_name = {f.name: f for f in desc.fields}
    for key in list(doc):
        f = by_name.get(key)
        if f is None and (jf := by_name.get(key + JSON_SUFFIX)) is not None and not _repeated(jf):
            doc[jf.name] = json.dumps(doc.pop(key))
        elif f is not None and _is_message(f) and not _is_map(f):
            value = doc[key]
            if _repeated(f) and isinstance(value, list):
                doc[key] = [_wrap(dict(v), f.message_type) if isinstance(v, Mapping) else v for v in value]
            elif isinstance(value, Mapping):
                doc[key] = _wrap(dict(value), f.message_type)
    return doc


def from_params(params: Mapping[str, list[str]], cls: type[Message], fixed: Mapping[str, str]) -> Message:
    """A request message from path parameters (`fixed`) and a query string (repeated keys make a
    list). Only scalar fields can be given this way, as in grpc-gateway."""
    desc = cls.DESCRIPTOR
    by_name = {f.name: f for f in desc.fields}
    doc: dict[str, Any] = {}
    items = [(k, [v]) for k, v in fixed.items()] + [(k, v) for k, v in params.items() if k not in fixed]
    for key, values in items:
        f = by_name.get(key)
        if f is None or (_is_message(f) and f.message_type.full_name not in WELL_KNOWN):
            known = ", ".join(n for n, fd in by_name.items() if not _is_message(fd)) or "none"
            raise invalid(f"unknown query parameter {key!r}; known: {known}")
        converted = [_scalar(f, v) for v in values]
        if _repeated(f):
            doc[key] = converted
        elif len(converted) > 1:
            raise invalid(f"query parameter {key!r} given {len(converted)} times; it takes one value")
        else:
            doc[key] = converted[0]
    try:
        return json_format.ParseDict(doc, cls())
    except json_format.ParseError as exc:
        raise invalid(str(exc)) from None


def _scalar(f: FieldDescriptor, value: str) -> Any:
    if f.type == FieldDescriptor.TYPE_BOOL:
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no", ""):
            return False
        raise invalid(f"{f.name} must be true or false, not {value!r}")
    if f.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                      FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
        try:
            return int(value)
        except ValueError:
            raise invalid(f"{f.name} must be an integer, not {value!r}") from None
    return value


def parse_int(value: str, name: str) -> int:
    """A 64-bit integer, as the gRPC fields it stands for."""
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"{name} must be an integer, not {value!r}") from None
    if not -(2**63) <= number < 2**63:
        raise invalid(f"{name} is out of range: {value}")
    return number
