"""`gantry reconfig [--dry-run]`: reload the coordinator's configuration file, and say what it
changes (builders, schedulers, workers, notifiers, change sources added, removed, changed)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clients.client import GantryClient
from protos.gantry.v1 import admin_pb2


def add_parser(command: Any) -> None:
    p = command("reconfig", cmd_reconfig, "reload the coordinator's configuration file without a restart")
    p.add_argument("--dry-run", action="store_true", help="only show what would change")


async def cmd_reconfig(args: argparse.Namespace) -> int:
    async with GantryClient(args.coordinator) as client:
        response = await client.reconfig(dry_run=args.dry_run)
    if args.json:
        print(
            json.dumps(
                {
                    "config_file": response.config_file,
                    "applied": response.applied,
                    "changes": [{"kind": c.kind, "change": c.change, "names": list(c.names)} for c in response.changes],
                    "notes": list(response.notes),
                },
                ensure_ascii=False,
            )
        )
    else:
        print(describe(response))
    return 0


def describe(response: admin_pb2.ReconfigResponse) -> str:
    lines = [f"{'plan for' if not response.applied else 'applied'} {response.config_file}:"]
    for c in response.changes:
        lines.append(f"  {c.kind} {c.change}: {', '.join(c.names)}")
    if not response.changes:
        lines.append("  nothing changes")
    lines.extend(f"  note: {n}" for n in response.notes)
    if not response.applied:
        lines.append("(dry run: nothing applied; run `gantry reconfig` to apply)")
    return "\n".join(lines)
