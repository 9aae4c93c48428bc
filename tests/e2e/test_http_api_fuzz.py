"""The HTTP API fuzzed with schemathesis against the OpenAPI description it serves: whatever the
input, no 5xx (and responses conform to the description). Bounded: a few examples per route."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, child_env
from tests.e2e.web import started

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
]
pytest.importorskip("schemathesis", reason="needs schemathesis (a test dependency)")


async def test_no_input_makes_the_api_fail_with_a_server_error(cluster: Cluster, tmp_path: Path) -> None:
    async with started(cluster) as web:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "run", f"{web.base}/api/v1/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples", "8", "--phases", "examples,coverage,fuzzing",
            "--exclude-path", "/api/v1/events",  # an endless stream
            "--request-timeout", "30", "--no-color",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=child_env(),
            cwd=tmp_path,  # its cache directory goes there, not into the work tree
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 280)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text[-6000:]
