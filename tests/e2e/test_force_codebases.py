"""Typed ForceScheduler parameters through `gantry force`, and codebases: a change of one codebase
plus the defaults of the other, end to end."""

from __future__ import annotations

import json

import aiohttp
import grpc
import pytest

from protos.gantry.v1 import common_pb2, control_pb2, logs_pb2
from tests.e2e.harness import SUCCESS, Cluster, run_cli
from tests.e2e.web import CODEBASES_CONFIG, started

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
CODEBASES = {
    "app": {"repository": "https://example.org/app.git", "branch": "main"},
    "lib": {"repository": "https://example.org/lib.git", "branch": "stable", "revision": "v1.0"},
}
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("app", workers=["w1"], steps=[
            ShellCommand(name="show", command=["echo", Interpolate(
                "app=%(src:app:branch)s@%(src:app:revision)s lib=%(src:lib:branch)s@%(src:lib:revision)s")]),
        ]),
    ],
    schedulers=[
        SingleBranchScheduler("on-change", builders=["app"], codebases=CODEBASES),
        ForceScheduler("force", ["app"], codebases=CODEBASES, properties=[
            IntParameter("jobs", default=2),
            BooleanParameter("clean"),
            ChoiceStringParameter("flavour", choices=["debug", "release"]),
            StringParameter("ticket", regex=r"^[A-Z]+-[0-9]+$", required=True),
            FixedParameter("channel", default="ci"),
        ]),
    ],
)
"""


async def test_a_change_of_one_codebase_builds_with_the_other_codebases_defaults(
    cluster: Cluster, db: str | None
) -> None:
    coord = await cluster.start_coordinator(CONFIG, db=db)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()

    await coord.submit({"codebase": "app", "branch": "main", "revision": "abc123",
                        "repository": "https://example.org/app.git"})
    added = await rec.wait_kind("buildset.added")
    done = await rec.wait_kind("buildset.finished", buildset_id=added.buildset_id)
    assert done.result == SUCCESS
    [finished] = rec.of_kind("build.finished", builder="app")
    build = await coord.get_build("app", finished.build_number)
    assert [(s.codebase, s.repository, s.branch, s.revision) for s in build.sourcestamps] == [
        ("app", "https://example.org/app.git", "main", "abc123"),
        ("lib", "https://example.org/lib.git", "stable", "v1.0"),
    ]
    assert await coord.read_log("app", build.number, "show", logs_pb2.STDOUT) == b"app=main@abc123 lib=stable@v1.0\n"

    at = ("--coordinator", coord.address)
    code, out, err = await run_cli("build", "app", str(build.number), *at)
    assert code == 0, err
    text = out.decode()
    assert "source app" in text and "source lib" in text and "v1.0" in text

    # A change of a codebase the scheduler does not declare is not built.
    await coord.submit({"codebase": "docs", "branch": "main", "revision": "d1"})
    forced = await coord.force("app", {"ticket": "GAN-1"})
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert len(rec.of_kind("buildset.added")) == 2


async def test_force_parameters_are_checked_converted_and_listed(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()
    at = ("--coordinator", coord.address)

    for args, message in [
        (["--property", "jobs=x", "--property", "ticket=GAN-1"], 'parameter "jobs": "x" is not an integer'),
        ([], 'parameter "ticket": a value is required'),
        (["--property", "ticket=nope"], 'parameter "ticket": "nope" does not match'),
        (["--property", "ticket=GAN-1", "--property", "flavour=fast"], 'parameter "flavour": "fast" is not one of'),
        (["--property", "ticket=GAN-1", "--property", "clean=maybe"], 'parameter "clean": "maybe" is not a boolean'),
        (["--property", "ticket=GAN-1", "--property", "channel=prod"], 'parameter "channel": is fixed'),
        (["--property", "ticket=GAN-1", "--property", "colour=red"], "unknown parameter 'colour'"),
        (["--property", "ticket=GAN-1", "--codebase", "docs:branch=x"], "has no codebase 'docs'"),
    ]:
        code, out, err = await run_cli("force", "app", *args, *at)
        assert code == 1, (args, out, err)
        assert message in err.decode(), (args, err)
        assert "Traceback" not in err.decode()
    assert not rec.of_kind("buildset.added")

    code, out, err = await run_cli(
        "force", "app", "--property", "ticket=GAN-7", "--property", "jobs=4", "--property", "clean=yes",
        "--codebase", "lib:branch=dev", "--codebase", "app:revision=feed", "--wait", *at,
    )
    assert code == 0, err
    [finished] = rec.of_kind("build.finished", builder="app")
    build = await coord.get_build("app", finished.build_number)
    props = {p.name: json.loads(p.value_json) for p in build.properties}
    assert (props["jobs"], props["clean"], props["flavour"], props["ticket"], props["channel"]) == (
        4, True, "debug", "GAN-7", "ci"
    )
    assert [(s.codebase, s.branch, s.revision) for s in build.sourcestamps] == [
        ("app", "main", "feed"), ("lib", "dev", "")
    ]

    # Clients see the parameters: GetBuilder, and `gantry force --parameters`.
    builder = await coord.control.GetBuilder(control_pb2.GetBuilderRequest(name="app"))
    assert builder.force_scheduler == "force"
    assert [(p.name, p.type, p.required) for p in builder.force_parameters] == [
        ("jobs", "int", False), ("clean", "bool", False), ("flavour", "choice", False),
        ("ticket", "string", True), ("channel", "fixed", False),
    ]
    assert list(builder.force_parameters[2].choices) == ["debug", "release"]
    assert [c.codebase for c in builder.force_codebases] == ["app", "lib"]
    code, out, err = await run_cli("force", "app", "--parameters", *at)
    assert code == 0, err
    text = out.decode()
    for word in ("jobs", "ticket", "release", "lib", "stable"):
        assert word in text, text


async def test_codebase_fields_are_typed_parameters_checked_alike_over_grpc_and_http(cluster: Cluster) -> None:
    """Buildbot's CodebaseParameter: each codebase's branch/revision/repository/project field is a
    typed parameter (or absent); a bad value is refused naming the codebase and field, with the
    same words over gRPC and HTTP, and clients are told each codebase's fields."""
    async with started(cluster, CODEBASES_CONFIG) as web, aiohttp.ClientSession() as s:
        async with s.get(f"{web.base}/api/v1/builders/multi") as resp:
            builder = await resp.json()
        forms = builder["force_codebase_forms"]
        assert [(f["codebase"], f["label"]) for f in forms] == [("app", "Application"), ("lib", "lib")]
        assert [(p["name"], p["type"], p["default"]) for p in forms[0]["fields"]] == [
            ("branch", "choice", "main"), ("revision", "string", ""),
            ("repository", "fixed", "https://example.org/app.git")]
        assert forms[1]["fields"][1]["required"] is True and forms[0]["fields"][0]["choices"] == ["main", "dev"]

        lib = {"codebase": "lib", "revision": "def456"}
        for stamps, message in [
            ([{"codebase": "app", "branch": "feature"}, lib], "codebase \"app\" branch: \"feature\" is not one of"),
            ([{"codebase": "app", "revision": "XYZ"}, lib], "codebase \"app\" revision: \"XYZ\" does not match"),
            ([{"codebase": "app", "repository": "https://evil.example/x.git"}, lib],
             "codebase \"app\" repository: is fixed to"),
            ([{"codebase": "app", "project": "p"}, lib], "codebase \"app\" project: is not on the force form"),
            ([{"codebase": "app"}], "codebase \"lib\" revision: a value is required"),
        ]:
            async with s.post(f"{web.base}/api/v1/builders/multi/force", json={"sourcestamps": stamps}) as resp:
                doc = await resp.json()
            assert resp.status == 400 and message in doc["error"], (stamps, doc)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await web.coord.control.ForceBuild(control_pb2.ForceBuildRequest(
                    builder="multi", sourcestamps=[common_pb2.SourceStamp(**st) for st in stamps]))
            assert err.value.details() == doc["error"]

        rec = await web.coord.record()
        async with s.post(f"{web.base}/api/v1/builders/multi/force", json={"sourcestamps": [
                {"codebase": "app", "branch": "dev", "revision": "abc123"}, lib]}) as resp:
            assert resp.status == 200, await resp.text()
            forced = await resp.json()
        done = await rec.wait_kind("buildset.finished", buildset_id=forced["buildset_id"])
        assert done.result == SUCCESS
        build = await web.coord.get_build("multi", 1)
        assert [(st.codebase, st.repository, st.branch, st.revision) for st in build.sourcestamps] == [
            ("app", "https://example.org/app.git", "dev", "abc123"),
            ("lib", "https://example.org/lib.git", "stable", "def456"),
        ]
