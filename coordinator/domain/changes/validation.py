"""Validation of what people and hooks send: every message says which field and what to fix."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from coordinator.domain.errors import InvalidArgument
from coordinator.domain.model import Change, PropertyValue

PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_CHANGES_PER_REQUEST = 1000
MAX_FILES = 10_000
MAX_PROPERTY_VALUE = 64 * 1024

_LIMITS = {
    "author": 256,
    "committer": 256,
    "revision": 256,
    "branch": 256,
    "repository": 1024,
    "project": 256,
    "codebase": 256,
    "category": 256,
    "revlink": 1024,
    "comments": 64 * 1024,
}
_REQUIRED = ("author", "revision", "branch", "repository")


def check_length(field: str, value: str, limit: int, where: str = "") -> None:
    if len(value) > limit:
        raise InvalidArgument(f"{where}{field} is {len(value)} characters long; the limit is {limit}")


def check_property_name(name: str, where: str = "") -> None:
    if not PROPERTY_NAME.match(name):
        raise InvalidArgument(
            f"{where}property name {name!r} is not valid: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or '_'"
        )


def parse_property_value(name: str, value_json: str, where: str = "") -> object:
    if len(value_json) > MAX_PROPERTY_VALUE:
        raise InvalidArgument(f"{where}property {name!r} is larger than {MAX_PROPERTY_VALUE} bytes")
    try:
        return json.loads(value_json) if value_json else ""
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{where}property {name!r} value is not valid JSON ({exc.msg}); strings must be quoted, "
            'e.g. "\\"main\\""'
        ) from None


def check_properties(props: Iterable[PropertyValue], where: str = "") -> None:
    seen: set[str] = set()
    for p in props:
        check_property_name(p.name, where)
        if p.name in seen:
            raise InvalidArgument(f"{where}property {p.name!r} is given twice")
        seen.add(p.name)


def check_changes(changes: list[Change], idempotency_key: str) -> None:
    if not changes:
        raise InvalidArgument("no changes given: send at least one change")
    if len(changes) > MAX_CHANGES_PER_REQUEST:
        raise InvalidArgument(
            f"{len(changes)} changes in one request; send at most {MAX_CHANGES_PER_REQUEST} per request"
        )
    check_length("idempotency_key", idempotency_key, 128)
    for i, c in enumerate(changes):
        where = f"change {i}: "
        for field in _REQUIRED:
            if not getattr(c, field).strip():
                raise InvalidArgument(f"{where}{field} is required")
        for field, limit in _LIMITS.items():
            check_length(field, getattr(c, field), limit, where)
        if len(c.files) > MAX_FILES:
            raise InvalidArgument(f"{where}{len(c.files)} files; at most {MAX_FILES} per change")
        for f in c.files:
            check_length("a file path", f, 1024, where)
        for name in c.properties:
            check_property_name(name, where)


def fit_polled_change(c: Change) -> None:
    """A commit found by a poller is a fact, not a request to refuse: clip what exceeds the
    limits (a huge commit message, a commit touching more files than a change holds)."""
    for name, limit in _LIMITS.items():
        value = getattr(c, name)
        if len(value) > limit:
            setattr(c, name, value[: limit - 3] + "...")
    c.files = [f for f in c.files if len(f) <= 1024][:MAX_FILES]
