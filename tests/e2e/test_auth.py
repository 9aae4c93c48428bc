"""Authentication and authorization end to end: a coordinator with auth=Auth() and an Authz,
the first token made on its host (`gantry coordinator token create`), then `gantry token
create|list|revoke` over the API, a viewer refused a force, anonymous refused a read, a revoked
token refused at once, and a worker (its own authentication) unaffected."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import TIMEOUT, Cluster, child_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(name="s", command="true")])],
    schedulers=[ForceScheduler("force", builders=["b"])],
    auth=Auth(),
    authz=Authz(
        roles=[RolesFromGroups()],
        rules=[Allow("read", roles=["viewer"]), Allow(actions.ALL, roles=["admin"])],
    ),
)
"""


async def gantry(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clients.cli", *argv, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=child_env(env),
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_tokens_roles_and_refusals(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    # The bootstrap token, made on the coordinator's host, straight into its database.
    code, admin, err = await gantry("coordinator", "token", "create", "root", "--group", "admin",
                                    "--data-dir", str(coord.data_dir))
    assert code == 0, err
    admin = admin.strip()
    assert admin.startswith("gty_") and "shown only now" in err
    at = ["--coordinator", coord.address]

    code, out, err = await gantry("token", "create", "vera", "--group", "viewer", "--expires", "1d", *at,
                                  "--token", admin)
    assert code == 0, err
    viewer = out.strip()

    code, out, err = await gantry("builders", "--json", *at, env={"GANTRY_TOKEN": viewer})
    assert code == 0, err
    assert [b["name"] for b in json.loads(out)["builders"]] == ["b"]

    code, out, err = await gantry("force", "b", *at, "--token", viewer)
    assert code == 1 and "permission denied: vera may not force" in err, err

    code, out, err = await gantry("builders", *at)
    assert code == 1 and "authentication required to read" in err and "Traceback" not in err

    # The client config file supplies the token when no flag or variable does.
    conf = tmp_path / "client.toml"
    conf.write_text(f'coordinator = "{coord.address}"\ntoken = "{viewer}"\n')
    code, out, err = await gantry("builders", "--json", env={"GANTRY_CONFIG": str(conf)})
    assert code == 0, err

    code, out, err = await gantry("token", "list", "--json", *at, "--token", admin)
    assert code == 0, err
    listed = json.loads(out)
    assert [(t["user"], t["created_by"]) for t in listed] == [("root", "(coordinator host)"), ("vera", "root")]
    assert viewer not in out and admin not in out

    vera_id = str(listed[1]["id"])
    code, out, err = await gantry("token", "revoke", vera_id, *at, "--token", admin)
    assert code == 0 and "revoked" in out, err
    code, out, err = await gantry("builders", *at, "--token", viewer)
    assert code == 1 and "not valid (unknown, revoked or expired)" in err

    # A worker authenticates itself (name + secret): auth of the API does not stand in its way.
    await cluster.start_worker(coord, "w1", "secret1")

    # The audit log: the refused force, the token admin calls; reads are not in it.
    code, out, err = await gantry("audit", "--json", *at, "--token", admin)
    assert code == 0, err
    entries = [(e["user"], e["action"], e["target"], e["outcome"]) for e in json.loads(out)]
    assert entries == [
        ("root", "token", f"id={vera_id}", "ok"),
        ("vera", "force", "builder=b", "PERMISSION_DENIED"),
        ("root", "token", "user=vera groups=viewer", "ok"),
    ], entries
    assert all(e["source"] == "127.0.0.1" for e in json.loads(out))
    code, out, err = await gantry("audit", *at, "--token", viewer)
    assert code == 1 and "not valid" in err
