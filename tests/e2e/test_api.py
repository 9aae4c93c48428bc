"""The gRPC API end to end: server reflection and health, bad requests answered with the right
status codes, and idempotent change submission."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.gantry.v1 import (
    changes_pb2,
    common_pb2,
    control_pb2,
    logs_pb2,
    status_pb2,
)
from tests.e2e.harness import SUCCESS, TIMEOUT, Cluster, Coordinator, make_change

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("b", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "hi"])]),
        Builder("unforceable", workers=["w1"], steps=[ShellCommand(name="x", command="true")]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["b"]),
        ForceScheduler("force", builders=["b"]),
    ],
)
"""
GANTRY_SERVICES = {
    "gantry.v1.ChangeService",
    "gantry.v1.ControlService",
    "gantry.v1.StatusService",
    "gantry.v1.LogService",
    "gantry.v1.WorkerService",
}


async def reflect(coord: Coordinator, **request: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(coord.channel)
    call = stub.ServerReflectionInfo()
    try:
        await call.write(reflection_pb2.ServerReflectionRequest(**request))
        return await asyncio.wait_for(call.read(), TIMEOUT)
    finally:
        call.cancel()


async def test_reflection_lists_the_services_and_health_is_serving(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)

    listed = await reflect(coord, list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert GANTRY_SERVICES <= names, names
    assert "grpc.health.v1.Health" in names

    # What grpcurl needs to describe and call a method: the file defining the service.
    described = await reflect(coord, file_containing_symbol="gantry.v1.ControlService")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    control = next(f for f in files if f.package == "gantry.v1" and f.service)
    methods = {m.name for m in control.service[0].method}
    assert {"ForceBuild", "GetBuild", "ListBuilds", "ListWorkers"} <= methods

    health = health_pb2_grpc.HealthStub(coord.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def expect(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, (err.value.code(), err.value.details())
    assert err.value.details(), "an error should say what is wrong"
    assert "Traceback" not in err.value.details()
    return err.value.details()


async def test_bad_requests_are_rejected_with_the_right_status_codes(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    ctl, chg, logs = coord.control, coord.changes, coord.logs

    def submit(*changes: common_pb2.Change) -> object:
        return chg.SubmitChanges(
            changes_pb2.SubmitChangesRequest(changes=list(changes)), timeout=TIMEOUT
        )

    # Changes: none at all, required fields missing, too long, bad property JSON.
    await expect(invalid, submit())
    assert "author" in await expect(invalid, submit(make_change(author="")))
    assert "revision" in await expect(invalid, submit(make_change(revision="")))
    assert "branch" in await expect(invalid, submit(make_change(branch="")))
    await expect(invalid, submit(make_change(author="x" * 257)))
    await expect(invalid, submit(make_change(), make_change(files=["a" * 1025])))
    bad_prop = make_change()
    bad_prop.properties.append(common_pb2.Property(name="p", value_json="{not json"))
    await expect(invalid, submit(bad_prop))
    await expect(
        invalid,
        chg.SubmitChanges(
            changes_pb2.SubmitChangesRequest(changes=[make_change()], idempotency_key="k" * 129),
            timeout=TIMEOUT,
        ),
    )

    # Forcing: no builder, an unknown one, one without a ForceScheduler, bad properties.
    await expect(invalid, ctl.ForceBuild(control_pb2.ForceBuildRequest(), timeout=TIMEOUT))
    assert "nope" in await expect(
        missing, ctl.ForceBuild(control_pb2.ForceBuildRequest(builder="nope"), timeout=TIMEOUT)
    )
    await expect(
        invalid,
        ctl.ForceBuild(control_pb2.ForceBuildRequest(builder="unforceable"), timeout=TIMEOUT),
    )
    await expect(
        invalid,
        ctl.ForceBuild(
            control_pb2.ForceBuildRequest(
                builder="b", properties=[common_pb2.Property(name="p", value_json="nan-sense")]
            ),
            timeout=TIMEOUT,
        ),
    )
    await expect(
        invalid,
        ctl.ForceBuild(
            control_pb2.ForceBuildRequest(builder="b", reason="r" * 1025), timeout=TIMEOUT
        ),
    )

    # Reads of things that do not exist.
    await expect(
        missing, ctl.GetBuilder(control_pb2.GetBuilderRequest(name="nope"), timeout=TIMEOUT)
    )
    await expect(
        missing, ctl.GetBuild(control_pb2.GetBuildRequest(builder="b", number=99), timeout=TIMEOUT)
    )
    await expect(
        missing,
        ctl.GetBuild(control_pb2.GetBuildRequest(builder="nope", number=1), timeout=TIMEOUT),
    )
    await expect(missing, ctl.GetChange(control_pb2.GetChangeRequest(id=12345), timeout=TIMEOUT))
    await expect(
        missing, ctl.ListBuilds(control_pb2.ListBuildsRequest(builder="nope"), timeout=TIMEOUT)
    )
    await expect(
        missing,
        ctl.StopBuild(control_pb2.StopBuildRequest(builder="b", number=99), timeout=TIMEOUT),
    )
    await expect(invalid, ctl.ListBuilds(control_pb2.ListBuildsRequest(limit=-1), timeout=TIMEOUT))
    await expect(
        invalid, ctl.ListChanges(control_pb2.ListChangesRequest(limit=-1), timeout=TIMEOUT)
    )

    # Logs: missing fields, negative offsets, unknown step / log / build.
    def read(**kw: object) -> object:
        return logs.ReadLog(logs_pb2.ReadLogRequest(**kw), timeout=TIMEOUT)  # type: ignore[arg-type]

    await expect(invalid, read(builder="b", build_number=1))
    await expect(invalid, read(step="hello", build_number=1))
    await expect(invalid, read(builder="b", build_number=1, step="hello", offset=-1))
    await expect(missing, read(builder="b", build_number=1, step="nope"))
    await expect(missing, read(builder="b", build_number=1, step="7"))
    await expect(missing, read(builder="b", build_number=1, step="hello", log="nope"))
    await expect(missing, read(builder="b", build_number=42, step="hello"))

    # Status: an unknown event kind, and WatchBuild of a build that does not exist.
    async def first_of(call: Any) -> object:
        async for item in call:
            return item
        return None

    detail = await expect(invalid, first_of(coord.status.Subscribe(
        status_pb2.SubscribeRequest(since_event_id=0, kinds=["build.finsihed"]))))
    assert "build.finsihed" in detail and "build.finished" in detail
    await expect(missing, first_of(coord.status.WatchBuild(
        status_pb2.WatchBuildRequest(builder="b", number=42))))

    # The coordinator is unharmed: the good requests still work.
    ok = await coord.read_log("b", 1, "hello", logs_pb2.STDOUT)
    assert ok == b"hi\n"
    assert (await coord.get_build("b", 1)).result == SUCCESS


async def test_an_idempotency_key_makes_a_retried_submission_store_nothing_new(
    cluster: Cluster,
) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    batch = [make_change(comments="one"), make_change(comments="two")]
    request = changes_pb2.SubmitChangesRequest(changes=batch, idempotency_key="hook-42")

    first = await coord.changes.SubmitChanges(request, timeout=TIMEOUT)
    assert len(first.change_ids) == 2 and not first.duplicate
    done = await rec.wait_kind("buildset.finished")
    again = await coord.changes.SubmitChanges(request, timeout=TIMEOUT)
    assert list(again.change_ids) == list(first.change_ids) and again.duplicate
    other = await coord.changes.SubmitChanges(
        changes_pb2.SubmitChangesRequest(
            changes=[make_change(comments="three")], idempotency_key="hook-43"
        ),
        timeout=TIMEOUT,
    )
    assert not other.duplicate and other.change_ids[0] > max(first.change_ids)
    await rec.wait_for(
        lambda e: e.kind == "buildset.finished" and e.id > done.id, what="the third change's build"
    )

    listed = await coord.control.ListChanges(
        control_pb2.ListChangesRequest(limit=100), timeout=TIMEOUT
    )
    assert sorted(c.id for c in listed.changes) == sorted([*first.change_ids, *other.change_ids])
    assert len(rec.of_kind("change.added")) == 3
    buildsets = rec.of_kind("buildset.added")
    assert [sorted(json.loads(e.details_json)["change_ids"]) for e in buildsets] == [
        sorted(first.change_ids),
        list(other.change_ids),
    ]
    stored = await coord.control.GetChange(
        control_pb2.GetChangeRequest(id=first.change_ids[1]), timeout=TIMEOUT
    )
    assert stored.comments == "two"

    # The key is stored with the changes, not just cached: a retry after a restart is harmless.
    await coord.restart()
    after_restart = await coord.changes.SubmitChanges(request, timeout=TIMEOUT)
    assert list(after_restart.change_ids) == list(first.change_ids) and after_restart.duplicate
    listed = await coord.control.ListChanges(
        control_pb2.ListChangesRequest(limit=100), timeout=TIMEOUT
    )
    assert len(listed.changes) == 3
