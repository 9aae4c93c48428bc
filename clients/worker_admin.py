"""`gantry worker pause|drain|resume NAME`: an operator's hold on a worker.

(`gantry worker start` runs an agent; it is delegated to the worker_agent package.)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from clients.client import GantryClient
from clients.convert import to_jsonable
from clients.models import Worker

ACTIONS = {
    "pause": "start no new build on the worker (running builds go on)",
    "drain": "start no new build on the worker, then tell its agent to exit once idle",
    "resume": "let a paused or draining worker take builds again",
}


def is_admin_command(argv: list[str]) -> bool:
    """`gantry worker pause|drain|resume ...` (anything else after `worker` is the agent's)."""
    return len(argv) > 1 and argv[0] == "worker" and argv[1] in ACTIONS


def add_parser(sub: Any, common: argparse.ArgumentParser, agent_help: str) -> None:
    worker = sub.add_parser(
        "worker",
        help=f"{agent_help}; pause, drain or resume a worker",
        description="`gantry worker start ...` runs an agent (see `gantry worker start --help`); "
        "pause, drain and resume act on a worker through the coordinator.",
    )
    actions = worker.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("start", help="run a worker agent (see `gantry worker start --help`)", add_help=False)
    for action, text in ACTIONS.items():
        p = actions.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("name", help="the worker's configured name")
        p.add_argument("--reason", default="", help="why (shown by `gantry workers`)")
        p.set_defaults(handler=cmd_hold)


async def cmd_hold(args: argparse.Namespace) -> int:
    async with GantryClient(args.coordinator) as client:
        worker = await client.hold_worker(args.action, args.name, args.reason)
    if args.json:
        print(json.dumps(to_jsonable(worker), ensure_ascii=False), flush=True)
    else:
        print(describe(worker))
    return 0


def describe(worker: Worker) -> str:
    running = len(worker.running_builds)
    if worker.state == "paused":
        return f"worker {worker.name} paused: no new builds ({running} running go on)"
    if worker.state == "draining":
        after = "its agent exits once idle" if worker.connected else "its agent exits when it next connects idle"
        return f"worker {worker.name} draining: no new builds; {after} ({running} running)"
    return f"worker {worker.name} active: takes builds"
