"""`gantry worker start ...`: parse arguments, read the secret, run the agent until a signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from worker_agent.connection import run_agent
from worker_agent.control import AgentControl
from worker_agent.options import DEFAULT_COORDINATOR, AgentOptions

log = logging.getLogger("gantry.worker")


LEAVE_TIMEOUT = 2.0  # seconds a stopping agent waits to tell the coordinator it is going
DRAIN_TIMEOUT = 600.0  # seconds a SIGTERM'd agent waits for its running builds (a bounded drain)


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
    if args.drain_timeout < 0:
        print("gantry worker: --drain-timeout must not be negative", file=sys.stderr)
        return 2
    _setup_logging(args.verbose)
    _run(opts, args.drain_timeout)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gantry worker",
        description="Gantry worker agent. (`gantry worker pause|drain|resume NAME` act on a worker "
        "through the coordinator.)",
    )
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
        "--spool-max", default="64M", metavar="SIZE",
        help="output of one command kept on disk while the coordinator has not stored it (a lost "
        "connection); past it the command is slowed down, its output never dropped. Bytes, or "
        "with K, M or G (default: %(default)s)",
    )
    start.add_argument(
        "--label", action="append", default=[], metavar="L", help="a label (repeatable)"
    )
    tls = start.add_argument_group("TLS")
    tls.add_argument("--tls-ca", default=os.environ.get("GANTRY_TLS_CA", ""), metavar="FILE",
                     help="CA that signed the coordinator's certificate (default: $GANTRY_TLS_CA)")
    tls.add_argument("--tls", action="store_true", help="use TLS, trusting the system's CAs")
    tls.add_argument("--tls-cert", default="", metavar="FILE", help="client certificate (mutual TLS)")
    tls.add_argument("--tls-key", default="", metavar="FILE", help="its private key")
    start.add_argument(
        "--drain-timeout", type=float, default=DRAIN_TIMEOUT, metavar="SECONDS",
        help="on SIGTERM, wait at most this long for running builds before stopping them "
        "(default: %(default)g; 0: SIGTERM stops at once)",
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
    spool_limit = parse_size(args.spool_max, "--spool-max")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for flag in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(args, flag)
        if value and not Path(value).is_file():
            raise UsageError(f"--{flag.replace('_', '-')}: no such file {value}")
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
        spool_limit=spool_limit,
        tls=bool(args.tls or args.tls_ca or args.tls_cert),
        tls_ca=Path(args.tls_ca) if args.tls_ca else None,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
    )


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str, flag: str) -> int:
    """A size such as 65536, 512K, 64M or 1G (binary units), at least 64 KiB."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)]
    try:
        size = int(float(number) * _UNITS[unit])
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a size (say 65536, 512K, 64M or 1G)") from None
    if size < 64 * 1024:
        raise UsageError(f"{flag}: {text!r} is too small (at least 64K: one chunk of output must fit)")
    return size


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("gantry.worker").setLevel(logging.DEBUG if verbose else logging.INFO)


def _run(opts: AgentOptions, drain_timeout: float) -> None:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(opts, drain_timeout))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(opts: AgentOptions, drain_timeout: float = DRAIN_TIMEOUT) -> None:
    """Run the agent. SIGTERM drains it: no new builds, exit once the running ones are done
    (the coordinator says when), or after `drain_timeout` seconds; a second SIGTERM, or SIGINT,
    stops it now: running commands are killed (their builds end RETRY) and the stream closes
    (bounded). Then we return and the process exits 0."""
    loop = asyncio.get_running_loop()
    control = AgentControl()
    agent = asyncio.create_task(run_agent(opts, control), name="agent")
    leaving: list[asyncio.Task[None]] = []

    def stop(sig: signal.Signals) -> None:
        log.info("received %s; stopping now (running builds will be retried)", sig.name)
        if not leaving:
            leaving.append(loop.create_task(leave_then_stop(sig)))

    async def leave_then_stop(sig: signal.Signals) -> None:
        # The coordinator is told first (bounded): it then retries our builds at once instead
        # of waiting for commands that are about to be killed.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(control.leave(f"the agent received {sig.name} and stops now"), LEAVE_TIMEOUT)
        agent.cancel()

    def drain(sig: signal.Signals) -> None:
        if control.drain_reason or drain_timeout <= 0:
            stop(sig)
            return
        log.info("received %s; draining: no new builds, exiting when idle (at most %gs; "
                 "send it again to stop now)", sig.name, drain_timeout)
        control.drain(f"the agent received {sig.name}")
        loop.call_later(drain_timeout, stop_if_running, sig)

    def stop_if_running(sig: signal.Signals) -> None:
        if not agent.done():
            log.info("drain timeout (%gs) reached", drain_timeout)
            stop(sig)

    signals = (signal.SIGINT, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, stop, signal.SIGINT)
    loop.add_signal_handler(signal.SIGTERM, drain, signal.SIGTERM)
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
