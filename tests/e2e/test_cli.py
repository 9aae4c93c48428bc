"""The `gantry` command line against a real coordinator and worker."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import pytest

from tests.e2e.harness import (
    FAILURE,
    SUCCESS,
    Cluster,
    Process,
    child_env,
    run_cli,
)
from tests.net import reserved_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("b", workers=["w1"], steps=[
            ShellCommand(name="out", command="printf 'to stdout\\\\n'; printf 'to stderr\\\\n' >&2"),
            ShellCommand(name="again", command=["echo", "again"]),
        ]),
        Builder("bad", workers=["w1"], steps=[ShellCommand(name="boom", command="exit 2")]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["b"]),
        ForceScheduler("force", builders=["b", "bad"]),
    ],
)
"""


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


async def test_cli_commands_work_against_a_real_coordinator(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    at = ("--coordinator", coord.address)

    # `gantry watch --json` follows the stream from the beginning while we work.
    watch = Process(
        "gantry-watch",
        [sys.executable, "-m", "clients.cli", "watch", "--json", "--since", "0", *at],
        cluster.log_dir / "gantry-watch.log",
        child_env(),
    )
    cluster.processes.append(watch)
    await watch.start()

    code, out, err = await run_cli(
        "sendchange",
        "--json",
        *at,
        "--author",
        "Jane <jane@example.org>",
        "--repository",
        "https://example.org/r.git",
        "--branch",
        "main",
        "--revision",
        "c0ffee",
        "--comments",
        "from the CLI",
        "--property",
        "k=3",
        "src/a.c",
        "src/b.c",
    )
    assert code == 0, err.decode()
    [change_id] = json.loads(out)["change_ids"]
    first = await rec.wait_kind("buildset.finished")
    assert first.result == SUCCESS

    code, out, err = await run_cli(
        "force", "b", "--wait", "--property", "n=3", "--reason", "from the CLI", *at
    )
    assert code == 0, (out.decode(), err.decode())
    assert b"success" in out.lower()
    code, out, err = await run_cli("force", "bad", "--wait", *at)
    assert code == 1, (out.decode(), err.decode())
    assert b"failure" in out.lower()

    results = await asyncio.gather(
        run_cli("builds", "--json", "--builder", "b", *at),
        run_cli("build", "b", "1", "--json", *at),
        run_cli("build", "b", "2", "--json", *at),
        run_cli("log", "b", "1", "out", "--channel", "stdout", *at),
        run_cli("log", "b", "1", "out", "--channel", "stderr", *at),
        run_cli("workers", "--json", *at),
        run_cli("builds", *at),
        run_cli("build", "bad", "1", *at),
        run_cli("workers", *at),
    )
    for code, out, err in results:
        assert code == 0, (out.decode(), err.decode())
    builds_json, build1, build2, log_out, log_err, workers_json, builds_h, build_h, workers_h = (
        out for _, out, _ in results
    )

    builds = json.loads(builds_json)["builds"]
    assert [(b["builder"], b["number"], b["result"]) for b in builds] == [
        ("b", 2, "SUCCESS"),
        ("b", 1, "SUCCESS"),
    ]
    one = json.loads(build1)
    assert [c["id"] for c in one["changes"]] == [change_id]
    assert one["changes"][0]["files"] == ["src/a.c", "src/b.c"]
    assert [(s["name"], s["result"]) for s in one["steps"]] == [
        ("out", "SUCCESS"),
        ("again", "SUCCESS"),
    ]
    two = json.loads(build2)
    props = {p["name"]: (p["value"], p["source"]) for p in two["properties"]}
    assert props["n"] == (3, "Force Build Form")
    assert "from the CLI" in two["reason"]
    assert log_out == b"to stdout\n"
    assert log_err == b"to stderr\n"
    workers = {w["name"]: w for w in json.loads(workers_json)["workers"]}
    assert workers["w1"]["connected"] is True
    for number in (1, 2):  # one row per build: builder, number, result, worker
        assert re.search(rf"(?m)^\W*b\W+{number}\W+success\W+w1\b".encode(), builds_h.lower()), builds_h
    assert b"boom" in build_h and b"failure" in build_h.lower()
    assert b"w1" in workers_h

    # The watcher saw everything, in order; Ctrl-C ends it cleanly.
    [bad_done] = rec.of_kind("build.finished", builder="bad")
    assert bad_done.result == FAILURE
    await watch.wait_line(rf'"id": {bad_done.id}\b')
    watch.send(signal.SIGINT)
    assert await watch.wait_exit() == 0, watch.output()
    events = json_lines(watch.output())
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert [e["id"] for e in events if e["id"] <= bad_done.id] == [
        e.id for e in rec.events if e.id <= bad_done.id
    ]
    kinds = {e["kind"] for e in events}
    assert {"change.added", "build.started", "step.finished", "build.finished"} <= kinds


async def test_cli_reports_an_unreachable_coordinator_in_one_line() -> None:
    with reserved_port() as port:  # nobody listens there, nor can while the test runs
        await _unreachable(f"127.0.0.1:{port}")


async def _unreachable(address: str) -> None:
    for argv in (
        ("builds",),
        ("workers", "--json"),
        ("force", "b", "--wait"),
        ("sendchange", "--author", "a", "--repository", "r", "--branch", "main", "--revision", "1"),
    ):
        code, out, err = await run_cli(*argv, "--coordinator", address, timeout=60)
        lines = err.decode().strip().splitlines()
        assert code == 1, (argv, out, err)
        assert len(lines) == 1 and lines[0].startswith("gantry: error:"), (argv, err.decode())
        assert address in lines[0] or "reach" in lines[0] or "unavailable" in lines[0].lower()
        assert out == b""
