"""Every RPC × {no credentials, viewer, developer scoped to another builder, admin, revoked token,
expired token, the change token} -> allowed or refused, through the real interceptors over loopback; and the same
for every HTTP endpoint through the real middleware.

The methods come from the service descriptors the coordinator serves, so a new RPC without a
rule in coordinator/api/interceptors/methods.py fails here. Behind the interceptors stands one
stub handler per method that answers ABORTED "reached": reaching it means the call was allowed.
The HTTP endpoints come from the router of a real coordinator's HTTP server, so a new route is
in the table the moment it is served; each is called with its path filled in.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from coordinator.api.gate import Gate
from coordinator.api.interceptors.auth import AuthInterceptor
from coordinator.api.interceptors.input import InputInterceptor
from coordinator.api.interceptors.methods import METHODS
from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from coordinator.config.security import Auth
from coordinator.domain.auth import actions
from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups
from coordinator.domain.auth.limits import RateLimiter
from coordinator.domain.auth.tokens import Tokens
from coordinator.storage.memory_auth import MemoryTokens
from coordinator.web.auth import Sessions, WebAuth, route_action
from protos.gantry import v1 as gantry_v1
from protos.gantry.v1 import control_pb2

# Every service of the contract (each *_pb2 module of protos/gantry/v1, found, not listed: a new
# .proto file's RPCs need rules too), plus health and reflection.
FILES = [
    *(importlib.import_module(f"protos.gantry.v1.{m.name}")
      for m in pkgutil.iter_modules(gantry_v1.__path__) if m.name.endswith("_pb2")),
    health_pb2,
    reflection_pb2,
]
HOOK_TOKEN = "the-change-token"
BUILDER = "app"  # the builder every builder-scoped request names; the developer may use only "other"


def services() -> Iterator[pb_descriptor.ServiceDescriptor]:
    for module in FILES:
        yield from module.DESCRIPTOR.services_by_name.values()


def all_methods() -> list[tuple[str, pb_descriptor.MethodDescriptor]]:
    return [(f"/{s.full_name}/{m.name}", m) for s in services() for m in s.methods]


def test_every_served_method_has_a_rule_and_every_rule_a_method() -> None:
    names = {name for name, _ in all_methods()}
    missing = sorted(names - set(METHODS))
    assert not missing, f"add an authorization rule for: {missing} (coordinator/api/interceptors/methods.py)"
    # v1 reflection is listed for clients that ask for it, though grpcio serves v1alpha.
    assert sorted(set(METHODS) - names) == ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]


def test_every_builder_field_exists_on_its_request() -> None:
    for name, method in all_methods():
        for field in METHODS[name].builder_fields:
            assert field in method.input_type.fields_by_name, f"{name}: no field {field!r}"


def _stub_handler(method: pb_descriptor.MethodDescriptor) -> grpc.RpcMethodHandler:
    req = message_factory.GetMessageClass(method.input_type)
    resp = message_factory.GetMessageClass(method.output_type)

    async def reached(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.ABORTED, "reached")

    des, ser = req.FromString, resp.SerializeToString
    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(reached, des, ser)
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(reached, des, ser)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(reached, des, ser)
    return grpc.unary_unary_rpc_method_handler(reached, des, ser)


@dataclass
class World:
    channel: grpc.aio.Channel
    tokens: dict[str, str]  # identity -> token ("" : none)


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def world() -> AsyncIterator[World]:
    gate, issued = await _gate()
    server = grpc.aio.server(interceptors=[InputInterceptor(), AuthInterceptor(gate)])
    for svc in services():
        handlers = {m.name: _stub_handler(m) for m in svc.methods}
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(svc.full_name, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield World(channel, issued)
    finally:
        await channel.close()
        await server.stop(None)


async def _gate() -> tuple[Gate, dict[str, str]]:
    """The gate of both tables and a token of each identity ("" : none)."""
    clock = Clock()
    tokens = Tokens(MemoryTokens(), clock)
    authz = Authz(
        roles=[RolesFromGroups()],
        rules=[
            Allow(actions.READ, roles=["viewer", "developer"]),
            Allow([actions.FORCE, actions.STOP, actions.REBUILD, actions.READ], roles=["developer"],
                  builders=["other"]),
            Allow(actions.ALL, roles=["admin"]),
        ],
    )
    # The developer reads only "other" too (its unscoped read is replaced by a scoped one).
    authz.rules[0] = Allow(actions.READ, roles=["viewer"])
    gate = Gate(Auth(), authz, tokens, change_token=HOOK_TOKEN)
    issued = {
        "viewer": (await tokens.create("vera", ["viewer"]))[0],
        "developer": (await tokens.create("dev", ["developer"]))[0],
        "admin": (await tokens.create("ada", ["admin"]))[0],
    }
    revoked, rec = await tokens.create("rob", ["admin"])
    await tokens.revoke(rec.id)
    expired, _ = await tokens.create("old", ["admin"], ttl_seconds=10)
    clock.t += 11
    issued.update({"none": "", "revoked": revoked, "expired": expired, "hook": HOOK_TOKEN})
    return gate, issued


def expected(who: str, name: str) -> bool:
    return allowed_to(who, METHODS[name].action)


def allowed_to(who: str, action: str) -> bool:
    if action in (actions.PUBLIC, actions.WORKER):
        return True
    if who in ("none", "revoked", "expired"):
        return False
    if who == "admin":
        return True
    if who == "viewer":
        return action == actions.READ
    if who == "hook":  # the change token (`--change-token-file`) submits changes and nothing else
        return action == actions.SUBMIT
    # developer: force/stop/rebuild/read on "other" only; requests here name BUILDER ("app").
    # Its reads all pass the gate with a visibility that hides "app": the read side answers as
    # for a builder that does not exist (tests/e2e/test_scoped_read.py, on a real coordinator).
    return action == actions.READ


def request_for(method: pb_descriptor.MethodDescriptor) -> bytes:
    msg = message_factory.GetMessageClass(method.input_type)()
    for field in METHODS[f"/{method.containing_service.full_name}/{method.name}"].builder_fields:
        if method.input_type.fields_by_name[field].is_repeated:
            getattr(msg, field).append(BUILDER)
        else:
            setattr(msg, field, BUILDER)
    return msg.SerializeToString()


async def call(
    channel: grpc.aio.Channel, name: str, method: pb_descriptor.MethodDescriptor, token: str
) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    data = request_for(method)
    ident = bytes
    try:
        if method.client_streaming:
            mc = channel.stream_stream(name, request_serializer=ident, response_deserializer=ident)
            c = mc(iter([data]), metadata=metadata, timeout=30)
            async for _ in c:
                pass
        elif method.server_streaming:
            us = channel.unary_stream(name, request_serializer=ident, response_deserializer=ident)
            async for _ in us(data, metadata=metadata, timeout=30):
                pass
        else:
            uu = channel.unary_unary(name, request_serializer=ident, response_deserializer=ident)
            await uu(data, metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


WHO = ["none", "viewer", "developer", "admin", "revoked", "expired", "hook"]


async def test_every_method_for_every_identity(world: World) -> None:
    wrong = []
    for name, method in all_methods():
        for who in WHO:
            code = await call(world.channel, name, method, world.tokens[who])
            allowed = code == grpc.StatusCode.ABORTED
            if not allowed:
                refusal = grpc.StatusCode.UNAUTHENTICATED if who in ("none", "revoked", "expired") \
                    else grpc.StatusCode.PERMISSION_DENIED
                if code != refusal:
                    wrong.append(f"{name} as {who}: {code.name}, expected {refusal.name}")
                    continue
            if allowed != expected(who, name):
                wrong.append(f"{name} as {who}: {'allowed' if allowed else 'refused'}")
    assert not wrong, "\n".join(wrong)


async def test_a_scoped_developer_may_force_its_builder_and_is_refused_alike_on_others(world: World) -> None:
    force = world.channel.unary_unary("/gantry.v1.ControlService/ForceBuild",
                                      request_serializer=control_pb2.ForceBuildRequest.SerializeToString,
                                      response_deserializer=control_pb2.ForceBuildResponse.FromString)
    md = (("authorization", f"Bearer {world.tokens['developer']}"),)
    with pytest.raises(grpc.aio.AioRpcError) as ok:
        await force(control_pb2.ForceBuildRequest(builder="other"), metadata=md, timeout=30)
    assert ok.value.code() == grpc.StatusCode.ABORTED  # reached the method
    details = []
    for hidden in ("app", "no-such-builder"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await force(control_pb2.ForceBuildRequest(builder=hidden), metadata=md, timeout=30)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        details.append(refused.value.details().replace(hidden, "X"))
    assert details[0] == details[1] and "force" in details[0]  # same words, exists or not


async def test_refusals_name_the_action(world: World) -> None:
    stop = world.channel.unary_unary("/gantry.v1.ControlService/StopBuild",
                                     request_serializer=control_pb2.StopBuildRequest.SerializeToString,
                                     response_deserializer=control_pb2.StopBuildResponse.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as anon:
        await stop(control_pb2.StopBuildRequest(builder="app", number=1), timeout=30)
    assert anon.value.code() == grpc.StatusCode.UNAUTHENTICATED and "to stop" in anon.value.details()
    md = (("authorization", f"Bearer {world.tokens['viewer']}"),)
    with pytest.raises(grpc.aio.AioRpcError) as viewer:
        await stop(control_pb2.StopBuildRequest(builder="app", number=1), metadata=md, timeout=30)
    assert viewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert viewer.value.details() == "permission denied: vera may not stop on builder 'app'"


# ------------------------------------------------------------------------------------ HTTP

PATH_VALUES = {"builder": BUILDER, "name": BUILDER, "number": "1", "build_number": "1", "id": "1",
               "request_id": "1", "step": "s", "log": "stdio", "dialect": "github"}


async def served_http_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, canonical path) of every route the coordinator's HTTP server serves, with auth."""
    coord = Coordinator(MasterConfig(auth=Auth()), tmp_path / "d", "127.0.0.1:0", http="127.0.0.1:0")
    await coord.start()
    try:
        assert coord.web is not None and coord.web._runner is not None
        found = {(r.method, r.resource.canonical) for r in coord.web._runner.app.router.routes()
                 if r.method != "HEAD" and r.resource is not None}
    finally:
        await coord.aclose()
    return sorted(found)


async def test_every_http_endpoint_for_every_identity(tmp_path: Path) -> None:
    routes = await served_http_routes(tmp_path)
    assert ("POST", "/api/v1/changes") in routes
    assert ("GET", "/api/v1/builders/{builder}/builds/{number}/watch") in routes
    gate, tokens = await _gate()
    auth = WebAuth(gate, Sessions(tmp_path / "session.key"))
    auth.writes = RateLimiter(rate=0.0, burst=1e9, now=lambda: 0.0)  # this many writes are the point
    app = web.Application(middlewares=[auth.middleware])  # the check, in front of one stub per route

    async def reached(request: web.Request) -> web.Response:
        return web.json_response({"reached": True}, status=299)

    for method, path in routes:
        app.router.add_route(method, path, reached)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    wrong = []
    try:
        async with aiohttp.ClientSession() as s:
            for method, path in routes:
                action = route_action(method, path)
                assert action is not None, f"{method} {path} has no rule"
                url = base + re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], path)
                for who in WHO:
                    headers = {"Authorization": f"Bearer {tokens[who]}"} if tokens[who] else {}
                    async with s.request(method, url, headers=headers, allow_redirects=False) as resp:
                        status = resp.status
                    ok = status == 299
                    if not ok:
                        refusal = 401 if who in ("none", "revoked", "expired") else 403
                        if status != refusal:
                            wrong.append(f"{method} {path} as {who}: HTTP {status}, expected {refusal}")
                            continue
                    if ok != allowed_to(who, action):
                        wrong.append(f"{method} {path} ({action}) as {who}: {'allowed' if ok else 'refused'}")
    finally:
        await runner.cleanup()
    assert not wrong, "\n".join(wrong)
