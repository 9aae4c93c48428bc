"""Helpers of the web UI and HTTP API tests: a coordinator serving HTTP on a port held for the
whole test (a restart comes back on it), and a Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.e2e.harness import TIMEOUT, Cluster, Coordinator
from tests.net import port_of, reserve_port

WEB_CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=4)],
    builders=[
        Builder("ok", workers=["w1"], tags=["team-a"], description="passes", steps=[
            ShellCommand(name="compile",
                         command=["printf", "\\\\033[32mgreen\\\\033[0m compiled\\\\nwarning: none\\\\n"]),
            ShellCommand(name="test", command=["echo", "all tests passed"]),
        ]),
        Builder("bad", workers=["w1"], tags=["team-b"], steps=[
            ShellCommand(name="compile", command=["sh", "-c", "echo 'error: it broke'; exit 1"]),
        ]),
        Builder("slow", workers=["w1"], tags=["team-b"], steps=[
            ShellCommand(name="run", command=["sh", "-c",
                "i=0; while [ $i -lt 600 ]; do echo line $i; i=$((i+1)); sleep 0.1; done"]),
        ]),
    ],
    schedulers=[
        ForceScheduler("force", ["ok", "bad", "slow"], properties=[
            IntParameter("jobs", default=2),
            BooleanParameter("clean"),
            ChoiceStringParameter("flavour", choices=["debug", "release"], default="debug"),
            StringParameter("ticket", regex=r"^[A-Z]+-[0-9]+$", required=True),
        ]),
    ],
)
"""


@dataclass
class Web:
    coord: Coordinator
    base: str


@contextlib.asynccontextmanager
async def started(
    cluster: Cluster, config: str = WEB_CONFIG, db: str | None = None, extra_args: Sequence[str] = ()
) -> AsyncIterator[Web]:
    """A coordinator with HTTP on a port held until the block ends, and its worker w1."""
    with reserve_port() as held:
        port = port_of(held)
        coord = await cluster.start_coordinator(
            config, db=db, extra_args=["--http", f"127.0.0.1:{port}", *extra_args])
        assert coord.process is not None
        await coord.process.wait_line(r"Gantry coordinator HTTP on http://\S+:(\d+)/")
        await cluster.start_worker(coord, "w1", "secret1")
        yield Web(coord, f"http://127.0.0.1:{port}")


async def sse_events(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """(id, event name, data) of each event of an SSE stream."""
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        event_id, name, data = "", "message", ""
        while True:
            line = (await asyncio.wait_for(resp.content.readline(), TIMEOUT)).decode()
            if not line:
                return
            line = line.rstrip("\n")
            if not line:
                if data:
                    yield event_id, name, json.loads(data)
                event_id, name, data = "", "message", ""
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]


# A ForceScheduler with two codebases whose fields are typed parameters (Buildbot's CodebaseParameter).
CODEBASES_CONFIG = """
HEX = r"^[0-9a-f]*$"
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("multi", workers=["w1"], steps=[
            ShellCommand(name="show", command=["echo", Interpolate(
                "app=%(src:app:branch)s@%(src:app:revision)s lib=%(src:lib:branch)s@%(src:lib:revision)s")]),
        ]),
    ],
    schedulers=[
        ForceScheduler("force", ["multi"], codebases=[
            CodebaseParameter("app", label="Application",
                              branch=ChoiceStringParameter("branch", choices=["main", "dev"]),
                              revision=StringParameter("revision", regex=HEX),
                              repository=FixedParameter("repository", default="https://example.org/app.git"),
                              project=None),
            CodebaseParameter("lib", branch=StringParameter("branch", default="stable"),
                              revision=StringParameter("revision", regex=HEX, required=True),
                              repository=FixedParameter("repository", default="https://example.org/lib.git"),
                              project=None),
        ]),
    ],
)
"""
