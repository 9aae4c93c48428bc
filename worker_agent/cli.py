"""`gantry worker start ...`: parse arguments, read the secret, run the agent until a signal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from worker_agent.connection import run_agent
from worker_agent.options import DEFAULT_COORDINATOR, AgentOptions

log = logging.getLogger("gantry.worker")


class UsageError(Exception):
    """A problem the operator must fix; shown as one line, exit status 2."""


def main(argv: list[str]) -> int:
    """Entry point; `argv` excludes the leading "worker" (e.g. ["start", "--name", ...])."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage/help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        opts = _options(args)
    except UsageError as exc:
        print(f"gantry worker: {exc}", file=sys.stderr)
        return 2
    _setup_logging(args.verbose)
    _run(opts)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gantry worker", description="Gantry worker agent.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser("start", help="connect to the coordinator and run builds")
    start.add_argument(
        "--coordinator",
        default=os.environ.get("GANTRY_COORDINATOR", DEFAULT_COORDINATOR),
        metavar="HOST:PORT",
        help="coordinator address (default: $GANTRY_COORDINATOR or %(default)s)",
    )
    start.add_argument("--name", required=True, help="worker name as configured on the coordinator")
    start.add_argument(
        "--secret-file", required=True, metavar="FILE", help="file holding the worker's secret"
    )
    start.add_argument("--basedir", required=True, metavar="DIR", help="where builds run")
    start.add_argument(
        "--max-builds", type=int, default=None, metavar="N",
        help="run at most N builds at once (default: as the coordinator's configuration says; "
        "this can only lower it)",
    )
    start.add_argument(
        "--label", action="append", default=[], metavar="L", help="a label (repeatable)"
    )
    start.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _options(args: argparse.Namespace) -> AgentOptions:
    path = Path(args.secret_file)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"secret file {path} is not UTF-8 text") from None
    if not secret:
        raise UsageError(f"secret file {path} is empty")
    if args.max_builds is not None and args.max_builds < 1:
        raise UsageError("--max-builds must be at least 1")
    basedir = Path(args.basedir).absolute()
    try:
        basedir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create basedir {basedir}: {exc.strerror or exc}") from None
    return AgentOptions(
        coordinator=args.coordinator,
        name=args.name,
        secret=secret,
        basedir=basedir,
        max_builds=args.max_builds or 0,
        labels=tuple(args.label),
    )


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("gantry.worker").setLevel(logging.DEBUG if verbose else logging.INFO)


def _run(opts: AgentOptions) -> None:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(opts))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(opts: AgentOptions) -> None:
    """Run the agent; SIGINT/SIGTERM cancel it, which kills running commands and closes the
    stream (bounded), then we return and the process exits 0."""
    loop = asyncio.get_running_loop()
    agent = asyncio.create_task(run_agent(opts), name="agent")

    def stop(sig: signal.Signals) -> None:
        log.info("received %s; stopping", sig.name)
        agent.cancel()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop, sig)
    log.info("worker %s starting (basedir %s)", opts.name, opts.basedir)
    try:
        await agent
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():  # we were cancelled, not just the agent
            raise
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    log.info("worker %s stopped", opts.name)
