"""An unreachable coordinator gives one clear line on stderr and exit code 1, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.net import reserved_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["builds"],
        ["workers", "--json"],
        ["build", "sample", "1"],
        ["force", "sample", "--wait"],
        ["sendchange", "--author", "a", "--repository", "r", "--branch", "b", "--revision", "c"],
        ["log", "sample", "1", "hello", "--follow"],
        ["watch"],
    ],
)
def test_unreachable_coordinator(argv: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GANTRY_COORDINATOR", None)
    with reserved_port() as port:  # refused, and no one else's while the command runs
        address = f"127.0.0.1:{port}"
        proc = subprocess.run(
            [sys.executable, "-m", "clients.cli", *argv, "--coordinator", address],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"gantry: error: cannot reach the coordinator at {address} "
        "(is it running? set --coordinator or GANTRY_COORDINATOR)"
    ]
