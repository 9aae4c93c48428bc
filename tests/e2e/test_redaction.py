"""A multi-line secret (a PEM key) printed by a build in every common encoding, on a worker and
by MasterShellCommand on the coordinator: the stored logs, the events and the database hold none
of its forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.gantry.v1 import logs_pb2
from tests.e2e.harness import SUCCESS, Cluster, describe_events
from tests.security.test_redaction import PEM, encodings, leaked

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Prints $PEM as is, with CRLF, one line alone, base64 at 3 offsets, base64url, URL- and
# JSON-escaped, shell-quoted and hex: each on a line of its own.
PRINT = r'''import base64, json, os, shlex, sys, urllib.parse
v = os.environ["PEM"]; b = v.encode(); w = sys.stdout.write
w(v); w(v.replace("\n", "\r\n")); w("line: " + v.splitlines()[1] + "\n")
for k in range(3): w(base64.b64encode(b"ab"[:k] + b).decode() + "\n")
w(base64.urlsafe_b64encode(b).decode() + "\n"); w(urllib.parse.quote(v, safe="") + "\n")
w(json.dumps({"key": v}) + "\n"); w(shlex.quote(v) + "\n"); w(b.hex() + "\n")
'''

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    secretsProviders=[SecretInAFile(SECRETS_DIR)],
    allow_master_commands=True,
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="worker", command=["python3", "-c", PRINT], env={"PEM": Secret("pem")}),
        MasterShellCommand(name="host", command=["python3", "-c", PRINT], env={"PEM": Secret("pem")}),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


async def test_a_pem_key_in_every_encoding_never_reaches_the_logs_or_the_database(
    cluster: Cluster, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pem").write_text(PEM)
    coord = await cluster.start_coordinator(f"SECRETS_DIR = {str(secrets)!r}\nPRINT = {PRINT!r}\n" + CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()
    forced = await coord.force("b")
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    build = await coord.get_build("b", finished.build_number)
    assert build.result == SUCCESS, describe_events(rec.events)
    # The secret file has a trailing newline, which SecretInAFile strips.
    value = PEM.strip()
    for step in ("worker", "host"):
        out = await coord.read_log("b", build.number, step, logs_pb2.STDOUT)
        assert out.count(b"<secret pem>") >= 10, (step, out[:300])
        assert not leaked(value, out), (step, leaked(value, out))
        for line in value.splitlines():
            assert line.encode() not in out, (step, line)
    assert value.splitlines()[1] not in describe_events(rec.events) + cluster.logs()

    await coord.stop()
    for path in (tmp_path / "coordinator-data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for name, form in encodings(value).items():
                if name in ("raw", "hex", "url", "json"):
                    assert form not in data, (path, name)
            assert value.splitlines()[1].encode() not in data, path
