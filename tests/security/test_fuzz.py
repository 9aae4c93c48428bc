"""Every RPC with random messages and with random bytes (hypothesis, bounded): the answer is never
UNKNOWN or INTERNAL and the coordinator logs no traceback. HTTP endpoints likewise: never a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from tests.security.test_authz_table import all_methods

F = pb_descriptor.FieldDescriptor
BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
EXAMPLES = 6  # per method and kind of input: the whole file stays within seconds
STREAM_TIMEOUT = 1.0  # a stream that is still open then was accepted: fine

SCALARS: dict[int, st.SearchStrategy[Any]] = {
    F.TYPE_STRING: st.text(max_size=40),
    F.TYPE_BYTES: st.binary(max_size=40),
    F.TYPE_BOOL: st.booleans(),
    F.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    F.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_UINT32: st.integers(0, 2**32 - 1),
    F.TYPE_UINT64: st.integers(0, 2**64 - 1),
    F.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    F.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_DOUBLE: st.floats(allow_nan=True),
    F.TYPE_FLOAT: st.floats(width=32, allow_nan=True),
}


def message_bytes(desc: pb_descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[bytes]:
    cls = message_factory.GetMessageClass(desc)

    def value(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
        if field.type == F.TYPE_MESSAGE:
            if depth >= 2:
                return st.just(None)
            sub = message_factory.GetMessageClass(field.message_type)
            return message_bytes(field.message_type, depth + 1).map(sub.FromString)
        if field.type == F.TYPE_ENUM:
            return st.sampled_from([v.number for v in field.enum_type.values] + [99])
        return SCALARS.get(field.type, st.just(None))

    fields = {f.name: (st.lists(value(f), max_size=3) if f.is_repeated else value(f)) for f in desc.fields}

    def build(values: dict[str, Any]) -> bytes:
        msg = cls()
        for name, v in values.items():
            field = desc.fields_by_name[name]
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if v is None or (field.is_repeated and is_map):
                continue
            try:
                if field.is_repeated:
                    getattr(msg, name).extend([x for x in v if x is not None])
                elif field.type == F.TYPE_MESSAGE:
                    getattr(msg, name).CopyFrom(v)
                else:
                    setattr(msg, name, v)
            except (TypeError, ValueError):
                continue  # a value protobuf itself refuses (e.g. an enum out of range in proto2)
        return bytes(msg.SerializeToString())

    return st.fixed_dictionaries({k: v for k, v in fields.items()}).map(build)


def examples(method: pb_descriptor.MethodDescriptor) -> list[bytes]:
    """A few requests for `method`: random messages of its type, and random bytes."""
    seen: list[bytes] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(message_bytes(method.input_type), st.binary(max_size=64)))
    def collect(data: bytes) -> None:
        seen.append(data)

    collect()
    return seen


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    tmp = tmp_path
    coord = Coordinator(MasterConfig(www=dict(change_hook_dialects={"github": {}, "gitlab": {}, "gitea": {}})),
                        tmp / "d", "127.0.0.1:0", http="127.0.0.1:0")
    await coord.start()
    try:
        yield coord
    finally:
        await coord.aclose()


async def _call(
    channel: grpc.aio.Channel, name: str, method: pb_descriptor.MethodDescriptor, data: bytes
) -> grpc.StatusCode:
    raw = bytes
    try:
        if method.client_streaming:
            call = channel.stream_stream(name, request_serializer=raw, response_deserializer=raw)(
                iter([data]), timeout=STREAM_TIMEOUT)
            async for _ in call:
                pass
        elif method.server_streaming:
            async for _ in channel.unary_stream(name, request_serializer=raw, response_deserializer=raw)(
                    data, timeout=STREAM_TIMEOUT):
                pass
        else:
            await channel.unary_unary(name, request_serializer=raw, response_deserializer=raw)(data, timeout=30)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.timeout(300)
async def test_every_rpc_with_random_messages_and_bytes(
    coordinator: Coordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{coordinator.port}") as channel:
        for name, method in all_methods():
            for data in examples(method):
                code = await _call(channel, name, method, data)
                if code in BAD:
                    bad.append(f"{name} {data[:40]!r}: {code.name}")
    tracebacks = [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, bad
    assert not tracebacks, tracebacks


@pytest.mark.timeout(120)
async def test_http_endpoints_with_random_bodies_and_headers(
    coordinator: Coordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    samples: list[tuple[str, bytes, dict[str, str]]] = []
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300)

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/change_hook/github", "/change_hook/gitlab", "/change_hook/gitea", "/change_hook/x",
                            "/auth/login", "/auth/logout", "/auth/whoami"]),
           st.binary(max_size=200), st.dictionaries(
               st.sampled_from(["X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Hub-Signature-256",
                                "X-Gitlab-Token", "Content-Type", "Authorization", "Cookie"]), header_text, max_size=4))
    def collect(path: str, body: bytes, headers: dict[str, str]) -> None:
        samples.append((path, body, headers))

    collect()
    statuses = []
    async with aiohttp.ClientSession() as http:
        for path, body, headers in samples:
            async with http.post(f"http://{coordinator.http_address}{path}", data=body, headers=headers) as r:
                statuses.append((path, r.status))
    assert not [s for s in statuses if s[1] >= 500], statuses
    tracebacks = [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, tracebacks


def test_the_fuzzed_methods_cover_every_service() -> None:
    services = {name.split("/")[1] for name, _ in all_methods()}
    assert {"gantry.v1.ControlService", "gantry.v1.WorkerService", "gantry.v1.TokenService"} <= services
    assert Path(__file__).exists()
