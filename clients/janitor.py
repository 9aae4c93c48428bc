"""`gantry janitor [--dry-run]`: apply the configuration's Retention rules now (or count what a
sweep would delete): logs, artifacts and whole builds past their horizons, and status events past
the eventHorizon."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clients.client import GantryClient
from protos.gantry.v1 import admin_pb2


def add_parser(command: Any) -> None:
    p = command("janitor", cmd_janitor, "delete what the Retention rules say is past its horizon")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


async def cmd_janitor(args: argparse.Namespace) -> int:
    async with GantryClient(args.coordinator, timeout=3600) as client:  # a long sweep is fine
        response = await client.run_janitor(dry_run=args.dry_run)
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": response.dry_run,
                    "batches": response.batches,
                    "reclaimed": response.reclaimed,
                    "counts": [{"builder": c.builder, "kind": c.kind, "count": c.count} for c in response.counts],
                },
                ensure_ascii=False,
            )
        )
    else:
        print(describe(response))
    return 0


def describe(response: admin_pb2.JanitorResponse) -> str:
    verb = "would delete" if response.dry_run else "deleted"
    counts = [c for c in response.counts if c.count]
    if not counts:
        return "nothing is past its horizon" if response.dry_run else "nothing was past its horizon"
    lines = [f"  {c.builder or 'all builders'}: {verb} {c.count} {c.kind}" for c in counts]
    if not response.dry_run:
        lines.append(f"  in {response.batches} batches; {response.reclaimed}")
    return "\n".join(lines)
