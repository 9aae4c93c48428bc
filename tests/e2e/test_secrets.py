"""Secrets and MasterShellCommand end to end: a real coordinator and worker, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2, logs_pb2
from tests.e2e.harness import EXCEPTION, FAILURE, SUCCESS, Cluster, describe_events, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TOKEN = "tK-91f3c0de5ecre7-ZQ"

CONFIG = """
class Leak(BuildStep):
    name = "leak"

    async def run(self, ctx):
        ctx.set_property("leaked", "value:" + ctx.render(Secret("token")), "Leak")
        return SUCCESS

config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    secretsProviders=[SecretInAFile(SECRETS_DIR)],
    builders=[
        Builder("deploy", workers=["w1"], steps=[
            ShellCommand(name="use", command="echo token=$TOKEN; echo $TOKEN >&2",
                         env={"TOKEN": Secret("token")}),
            ShellCommand(name="arg", command=["echo", Interpolate("arg=%(secret:token)s")]),
            Leak(),
        ]),
        Builder("missing", workers=["w1"], steps=[
            ShellCommand(name="use", command=["echo", Secret("nope")]),
            ShellCommand(name="after", command=["echo", "after"]),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["deploy", "missing"])],
)
"""

MASTER_CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    allow_master_commands=True,
    builders=[
        Builder("m", workers=["w1"], steps=[
            MasterShellCommand(name="here", command="echo on-coordinator; pwd; echo warn >&2; exit 3",
                               decodeRC={0: SUCCESS, 3: WARNINGS}),
            MasterShellCommand(name="fail", command=["false"]),
        ]),
        Builder("slow", workers=["w1"], steps=[
            MasterShellCommand(name="sleep", command="echo started; sleep 600"),
        ]),
        Builder("quiet", workers=["w1"], steps=[
            MasterShellCommand(name="sleep", command="sleep 600", timeout=1),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["m", "slow", "quiet"])],
)
"""


async def _build(coord, builder: str):  # type: ignore[no-untyped-def]
    rec = await coord.record()
    forced = await coord.force(builder)
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    await rec.aclose()
    return await coord.get_build(builder, finished.build_number), rec


async def test_secret_values_reach_commands_but_never_logs_or_the_database(
    cluster: Cluster, tmp_path: Path, db: str | None
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text(TOKEN + "\n")  # the trailing newline is stripped
    coord = await cluster.start_coordinator(f"SECRETS_DIR = {str(secrets)!r}\n" + CONFIG, db=db)
    await cluster.start_worker(coord, "w1", "secret1")

    build, rec = await _build(coord, "deploy")
    assert build.result == SUCCESS, describe_events(rec.events)
    use = await coord.read_log("deploy", build.number, "use")
    assert await coord.read_log("deploy", build.number, "use", logs_pb2.STDOUT) == b"token=<secret token>\n"
    assert await coord.read_log("deploy", build.number, "use", logs_pb2.STDERR) == b"<secret token>\n"
    arg = await coord.read_log("deploy", build.number, "arg")
    assert arg.startswith(b"echo arg=<secret token>\n")  # the command header
    assert await coord.read_log("deploy", build.number, "arg", logs_pb2.STDOUT) == b"arg=<secret token>\n"
    assert build.steps[1].state_string == "'echo arg=<secret token>'"
    props = {p.name: json.loads(p.value_json) for p in build.properties}
    assert props["leaked"] == "value:<secret token>"
    for data in (use, arg, str(build).encode(), describe_events(rec.events).encode()):
        assert TOKEN.encode() not in data
    assert TOKEN not in cluster.logs()  # nor the coordinator's and worker's own logs

    await coord.stop()  # everything flushed to the database files
    scanned, redacted = [], []
    for path in (tmp_path / "coordinator-data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert TOKEN.encode() not in data, path
            scanned.append(path.name)
            if b"value:<secret token>" in data:
                redacted.append(path.name)
    if db is None:
        # The scan read the database itself, and could see what was stored in it.
        assert "gantry.sqlite" in scanned and "gantry.sqlite" in redacted, (scanned, redacted)
    else:
        assert await _tables_containing(db, TOKEN) == []
        assert await _tables_containing(db, "value:<secret token>") != []  # the scan can see


async def _tables_containing(url: str, text: str) -> list[str]:
    """The tables of PostgreSQL database `url` with a row whose text form holds `text` (as is,
    or hex-encoded as bytea prints it)."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=30)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        assert {"builds", "steps", "logchunks", "events"} <= set(tables), tables
        found = []
        for table in tables:
            hit = await conn.fetchval(
                f'SELECT count(*) FROM "{table}" t WHERE strpos(t::text, $1) > 0 OR strpos(t::text, $2) > 0',
                text, text.encode().hex(),
            )
            if hit:
                found.append(table)
        return found
    finally:
        await conn.close()


async def test_a_missing_secret_fails_the_step_with_a_plain_message(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    coord = await cluster.start_coordinator(f"SECRETS_DIR = {str(tmp_path / 'secrets')!r}\n" + CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    build, rec = await _build(coord, "missing")
    assert build.result == EXCEPTION, describe_events(rec.events)
    assert [s.result for s in build.steps][0] == EXCEPTION
    err = await coord.read_log("missing", build.number, "use", log="err")
    assert err == b"secret nope not found in any provider\n"
    assert "Traceback" not in cluster.logs()


async def test_checkconfig_reports_a_missing_secrets_directory(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(
        "from coordinator.config import *\n"
        "config = MasterConfig(\n"
        "    workers=[Worker('w1', 's')],\n"
        "    secretsProviders=[SecretInAFile('/no/such/dir')],\n"
        ")\n"
    )
    rc, out, err = await run_cli("checkconfig", str(path))
    assert rc != 0
    assert f"{path}:4: SecretInAFile: the directory '/no/such/dir' does not exist" in (out + err).decode()


async def test_master_shell_command_runs_on_the_coordinator(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(MASTER_CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    build, rec = await _build(coord, "m")
    assert build.result == FAILURE, describe_events(rec.events)
    assert [s.result for s in build.steps] == [1, FAILURE]  # WARNINGS through decodeRC
    out = await coord.read_log("m", build.number, "here", logs_pb2.STDOUT)
    assert out == f"on-coordinator\n{tmp_path / 'coordinator-data'}\n".encode()
    assert await coord.read_log("m", build.number, "here", logs_pb2.STDERR) == b"warn\n"
    header = (await coord.read_log("m", build.number, "here", logs_pb2.HEADER)).decode()
    assert "program finished with exit code 3" in header

    # Stop interrupts it (its whole process group).
    rec = await coord.record()
    forced = await coord.force("slow")
    started = await rec.wait_kind("step.started", buildset_id=forced.buildset_id)
    await coord.control.StopBuild(
        control_pb2.StopBuildRequest(builder="slow", number=started.build_number, reason="enough")
    )
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == 6  # CANCELLED

    build, rec = await _build(coord, "quiet")
    assert build.result == FAILURE, describe_events(rec.events)
    header = (await coord.read_log("quiet", build.number, "sleep", logs_pb2.HEADER)).decode()
    assert "timed out" in header


async def test_master_shell_command_is_refused_unless_allowed(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    text = "from coordinator.config import *\n" + MASTER_CONFIG.replace("allow_master_commands=True,", "")
    path.write_text(text)
    line = text.splitlines().index(next(s for s in text.splitlines() if 'name="here"' in s)) + 1
    rc, out, err = await run_cli("checkconfig", str(path))
    assert rc != 0
    message = (
        "MasterShellCommand runs commands on the coordinator host and is disabled; "
        "set allow_master_commands=True to enable it"
    )
    assert f"{path}:{line}: {message}" in (out + err).decode()
    assert "Traceback" not in (out + err).decode()
