"""Row <-> domain conversion and the JSON and compression helpers storage uses."""

from __future__ import annotations

import json
import zlib
from typing import Any

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Build,
    Buildset,
    Change,
    LogInfo,
    PropertyValue,
    SourceStamp,
    Step,
)
from coordinator.domain.results import Result

# Below this size compression is not worth its CPU.
COMPRESS_MIN = 512


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def result_or_none(value: int | None) -> Result | None:
    return None if value is None else Result(value)


def compress(data: bytes) -> tuple[int, bytes]:
    if len(data) < COMPRESS_MIN:
        return 0, data
    packed = zlib.compress(data, 1)
    return (1, packed) if len(packed) < len(data) else (0, data)


def decompress(flag: int, data: bytes) -> bytes:
    return zlib.decompress(data) if flag == 1 else bytes(data)


def marks_to_text(marks: tuple[int, ...]) -> str | None:
    """A chunk's time marks as stored: "off,ms,off,ms" (NULL when it has none)."""
    return ",".join(map(str, marks)) if marks else None


def marks_from_text(text: str | None) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",")) if text else ()


def props_to_json(props: list[PropertyValue]) -> str:
    return dumps([[p.name, p.value, p.source] for p in props])


def props_from_json(text: str) -> list[PropertyValue]:
    return [PropertyValue(n, v, s) for n, v, s in json.loads(text)]


def stamps_to_json(stamps: list[SourceStamp]) -> str:
    return dumps([s.__dict__ for s in stamps])


def stamps_from_json(text: str) -> list[SourceStamp]:
    return [SourceStamp(**d) for d in json.loads(text)]


def change_values(c: Change) -> dict[str, Any]:
    return {
        "author": c.author,
        "committer": c.committer,
        "comments": c.comments,
        "files_json": dumps(c.files),
        "revision": c.revision,
        "branch": c.branch,
        "repository": c.repository,
        "project": c.project,
        "codebase": c.codebase,
        "category": c.category,
        "when_ts": c.when,
        "properties_json": dumps(c.properties),
        "revlink": c.revlink,
    }


def change_from_row(r: sa.Row[Any]) -> Change:
    return Change(
        id=r.id,
        author=r.author,
        committer=r.committer,
        comments=r.comments,
        files=json.loads(r.files_json),
        revision=r.revision,
        branch=r.branch,
        repository=r.repository,
        project=r.project,
        codebase=r.codebase,
        category=r.category,
        when=r.when_ts,
        properties=json.loads(r.properties_json),
        revlink=r.revlink,
    )


def buildset_from_row(r: sa.Row[Any]) -> Buildset:
    return Buildset(
        id=r.id, reason=r.reason, scheduler=r.scheduler, submitted_at=r.submitted_at,
        sourcestamps=stamps_from_json(r.sourcestamps_json), properties=props_from_json(r.properties_json),
        change_ids=json.loads(r.change_ids_json), complete=r.complete, result=result_or_none(r.result),
    )


def build_from_row(r: sa.Row[Any]) -> Build:
    return Build(
        id=r.id,
        builder=r.builder,
        number=r.number,
        worker=r.worker,
        build_request_id=r.buildrequest_id,
        buildset_id=r.buildset_id,
        started_at=r.started_at,
        finished_at=r.finished_at,
        result=result_or_none(r.result),
        state_string=r.state_string,
        properties=props_from_json(r.properties_json),
    )


def step_from_row(r: sa.Row[Any]) -> Step:
    return Step(
        id=r.id,
        build_id=r.build_id,
        number=r.number,
        name=r.name,
        state_string=r.state_string,
        started_at=r.started_at,
        finished_at=r.finished_at,
        result=result_or_none(r.result),
        hidden=r.hidden,
        urls=[tuple(u) for u in json.loads(r.urls_json)],
    )


def log_from_row(r: sa.Row[Any]) -> LogInfo:
    return LogInfo(id=r.id, step_id=r.step_id, name=r.name, type=r.type, size=r.size, complete=r.complete)


def event_from_row(r: sa.Row[Any]) -> Event:
    return Event(
        id=r.id,
        kind=r.kind,
        at=r.at,
        builder=r.builder,
        build_number=r.build_number,
        buildset_id=r.buildset_id,
        step_number=r.step_number,
        step_name=r.step_name,
        result=result_or_none(r.result),
        worker=r.worker,
        details=json.loads(r.details_json),
    )
