"""A reader scoped to some builders (a read rule with tags=) lists without naming a builder, over
gRPC, the HTTP API, the web UI's pages and both event streams, and sees only its builders: a
hidden builder's name appears in no answer, and asking for it reads exactly like asking for a
builder that does not exist.

The gRPC part is generated from the METHODS table: every read method of the gantry services,
called with an empty request, so a new listing that leaks fails here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import message_factory

from coordinator.api.interceptors.methods import METHODS
from coordinator.domain.auth import actions
from protos.gantry.v1 import control_pb2, status_pb2
from tests.e2e.harness import TIMEOUT, Cluster
from tests.e2e.test_auth import gantry
from tests.e2e.web import Web, sse_events, started
from tests.security.test_authz_table import all_methods

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SECRET = "zz-secret-builder"  # a name that cannot appear by accident
CONFIG = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("app", workers=["w1"], tags=["team-a"], steps=[ShellCommand(name="s", command="true")]),
        Builder("{SECRET}", workers=["w1"], tags=["team-b"], steps=[ShellCommand(name="s", command="true")]),
    ],
    schedulers=[ForceScheduler("force", builders=["app", "{SECRET}"]),
                ForceScheduler("force-hidden", builders=["{SECRET}"])],
    auth=Auth(),
    authz=Authz(
        roles=[RolesFromGroups()],
        rules=[Allow("read", roles=["team"], tags=["team-a"]), Allow(actions.ALL, roles=["admin"])],
    ),
)
"""
# Streams, and reads that need a builder and a build (they are checked by name below).
STREAMS = {"Subscribe", "WatchBuild", "FollowLog", "DownloadArtifact"}


async def token(web: Web, user: str, group: str) -> str:
    code, out, err = await gantry("coordinator", "token", "create", user, "--group", group,
                                  "--data-dir", str(web.coord.data_dir))
    assert code == 0, err
    return out.strip()


def md(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


async def events_until(
    channel: grpc.aio.Channel, tok: str, builder: str, number: int
) -> AsyncIterator[status_pb2.Event]:
    """Every event from the start, until `builder`'s build `number` finished."""
    sub = channel.unary_stream("/gantry.v1.StatusService/Subscribe",
                               request_serializer=status_pb2.SubscribeRequest.SerializeToString,
                               response_deserializer=status_pb2.Event.FromString)
    async for event in sub(status_pb2.SubscribeRequest(since_event_id=0), metadata=md(tok), timeout=TIMEOUT):
        yield event
        if (event.kind, event.builder, event.build_number) == ("build.finished", builder, number):
            return


async def force_and_finish(channel: grpc.aio.Channel, admin: str, builder: str) -> int:
    force = channel.unary_unary("/gantry.v1.ControlService/ForceBuild",
                                request_serializer=control_pb2.ForceBuildRequest.SerializeToString,
                                response_deserializer=control_pb2.ForceBuildResponse.FromString)
    forced = await force(control_pb2.ForceBuildRequest(builder=builder), metadata=md(admin), timeout=TIMEOUT)
    sub = channel.unary_stream("/gantry.v1.StatusService/Subscribe",
                               request_serializer=status_pb2.SubscribeRequest.SerializeToString,
                               response_deserializer=status_pb2.Event.FromString)
    async for event in sub(status_pb2.SubscribeRequest(since_event_id=0, builders=[builder]),
                           metadata=md(admin), timeout=TIMEOUT):
        if event.kind == "build.finished" and event.buildset_id == forced.buildset_id:
            return event.build_number
    raise AssertionError("the stream ended")


async def call_raw(channel: grpc.aio.Channel, name: str, data: bytes, tok: str) -> tuple[str, bytes]:
    """(status code name, the reply's bytes or the error's details)."""
    ident = bytes
    try:
        reply = await channel.unary_unary(name, request_serializer=ident, response_deserializer=ident)(
            data, metadata=md(tok), timeout=TIMEOUT)
    except grpc.aio.AioRpcError as err:
        return err.code().name, (err.details() or "").encode()
    return "OK", reply


def naming(method: Any, builder_fields: tuple[str, ...], builder: str) -> bytes:
    """A request of `method` about build 1's step "s" log "stdio" of `builder`."""
    msg = message_factory.GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    for field in builder_fields:
        if fields[field].is_repeated:
            getattr(msg, field).append(builder)
        else:
            setattr(msg, field, builder)
    for field, value in (("number", 1), ("build_number", 1), ("step", "s"), ("log", "stdio")):
        if field in fields:
            setattr(msg, field, value)
    return bytes(msg.SerializeToString())


async def call_any(channel: grpc.aio.Channel, name: str, method: Any, data: bytes, tok: str) -> tuple[str, bytes]:
    """A unary call, or a server stream's first reply."""
    if not method.server_streaming:
        return await call_raw(channel, name, data, tok)
    ident = bytes
    stream = channel.unary_stream(name, request_serializer=ident, response_deserializer=ident)(
        data, metadata=md(tok), timeout=TIMEOUT)
    try:
        async for reply in stream:
            stream.cancel()
            return "OK", reply
    except grpc.aio.AioRpcError as err:
        return err.code().name, (err.details() or "").encode()
    return "OK", b""


async def test_a_reader_scoped_by_tag_lists_only_its_builders(cluster: Cluster) -> None:
    async with started(cluster, CONFIG) as web, aiohttp.ClientSession() as http:
        admin, tina = await token(web, "root", "admin"), await token(web, "tina", "team")
        channel = grpc.aio.insecure_channel(web.coord.address)
        try:
            await force_and_finish(channel, admin, SECRET)
            app_number = await force_and_finish(channel, admin, "app")
            await grpc_listings(channel, admin, tina, app_number)
            await http_listings(web, http, admin, tina, app_number)
        finally:
            await channel.close()


async def grpc_listings(channel: grpc.aio.Channel, admin: str, tina: str, app_number: int) -> None:
    # The admin sees the hidden builder: what follows would notice a leak.
    code, reply = await call_raw(channel, "/gantry.v1.ControlService/ListBuilders", b"", admin)
    assert code == "OK" and SECRET.encode() in reply

    leaks, answered = [], []
    for name, method in all_methods():
        rule = METHODS[name]
        if rule.action != actions.READ or not name.startswith("/gantry.") or method.name in STREAMS:
            continue
        code, reply = await call_raw(channel, name, b"", tina)
        answered.append((method.name, code))
        if SECRET.encode() in reply:
            leaks.append(f"{name}: {reply[:300]!r}")
    assert not leaks, "\n".join(leaks)
    assert ("ListBuilders", "OK") in answered and ("ListBuilds", "OK") in answered

    def parsed(rpc: str, raw: bytes) -> Any:
        desc = dict(all_methods())[f"/gantry.v1.ControlService/{rpc}"]
        return message_factory.GetMessageClass(desc.output_type).FromString(raw)

    _, raw = await call_raw(channel, "/gantry.v1.ControlService/ListBuilders", b"", tina)
    assert [b.name for b in parsed("ListBuilders", raw).builders] == ["app"]
    _, raw = await call_raw(channel, "/gantry.v1.ControlService/ListBuilds", b"", tina)
    assert {b.builder for b in parsed("ListBuilds", raw).builds} == {"app"}
    _, raw = await call_raw(channel, "/gantry.v1.ControlService/ListBuildRequests", b"", tina)
    assert {r.builder for r in parsed("ListBuildRequests", raw).requests} == {"app"}
    _, raw = await call_raw(channel, "/gantry.v1.ControlService/ListSchedulers", b"", tina)
    assert [(s.name, list(s.builders)) for s in parsed("ListSchedulers", raw).schedulers] == [("force", ["app"])]

    # Named: every read of the hidden builder (build 1 exists) answers as for a builder that does
    # not exist: same code, same words.
    differ = []
    for name, method in all_methods():
        rule = METHODS[name]
        if rule.action != actions.READ or not rule.builder_fields or method.name == "Subscribe":
            continue  # Subscribe(builders=[hidden]) is a stream that stays silent: see events below
        answers = []
        for who in (SECRET, "no-such-builder"):
            code, details = await call_any(channel, name, method, naming(method, rule.builder_fields, who), tina)
            answers.append((code, details.decode(errors="replace").replace(who, "X")))
        if answers[0] != answers[1] or answers[0][0] == "OK":
            differ.append(f"{method.name}: {answers}")
    assert not differ, "\n".join(differ)

    seen = [e async for e in events_until(channel, tina, "app", app_number)]
    assert {e.builder for e in seen if e.builder} == {"app"}
    assert not [e for e in seen if SECRET in str(e)]
    assert "buildset.added" in {e.kind for e in seen}


async def http_listings(web: Web, http: aiohttp.ClientSession, admin: str, tina: str, app_number: int) -> None:
    hdr = {"Authorization": f"Bearer {tina}"}
    async with http.get(f"{web.base}/api/v1/builders", headers={"Authorization": f"Bearer {admin}"}) as r:
        assert SECRET in await r.text()
    paths = ["/api/v1/builders", "/api/v1/builds", "/api/v1/pending", "/api/v1/buildrequests",
             "/api/v1/workers", "/api/v1/changes", "/api/v1/notifications", "/api/v1/schedulers",
             "/", "/waterfall", "/console", "/grid", "/workers", "/changes",
             "/?format=json", "/waterfall?format=json", "/console?format=json", "/grid?format=json",
             "/workers?format=json", f"/builders/app/builds/{app_number}?format=json"]
    for path in paths:
        async with http.get(web.base + path, headers=hdr) as r:
            text = await r.text()
            assert r.status == 200, (path, text[:300])
            assert SECRET not in text, path
    async with http.get(f"{web.base}/api/v1/builds", headers=hdr) as r:
        assert {b["builder"] for b in (await r.json())["builds"]} == {"app"}
    for path in ("/api/v1/builders/{}", "/api/v1/builders/{}/builds", "/api/v1/builders/{}/builds/1",
                 "/api/v1/builders/{}/builds/1/artifacts", "/api/v1/builders/{}/tests",
                 "/api/v1/builders/{}/pending", "/api/v1/builders/{}/builds/1/steps/s/logs/stdio",
                 "/api/v1/builders/{}/builds/1/steps/s/logs/stdio/raw",
                 "/api/v1/builders/{}/builds/1/artifacts/a.txt",
                 "/builders/{}", "/builders/{}/builds/1", "/builders/{}/builds/1/steps/s/logs/stdio",
                 "/builders/{}?format=json", "/api/v1/builds?builder={}", "/api/v1/pending?builder={}"):
        answers = []
        for who in (SECRET, "no-such-builder"):
            async with http.get(web.base + path.format(who), headers=hdr) as r:
                answers.append((r.status, (await r.text()).replace(who, "X")))
        assert answers[0] == answers[1] and answers[0][0] == 404, (path, answers)

    kinds = set()
    async for _, _, event in sse_events(http, f"{web.base}/api/v1/events?since=0", hdr):
        assert SECRET not in json.dumps(event), event
        kinds.add(event["kind"])
        if (event["kind"], event["builder"], event["build_number"]) == ("build.finished", "app", app_number):
            break
    assert {"buildset.added", "build.started", "build.finished"} <= kinds
