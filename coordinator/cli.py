"""`gantry coordinator start` and `gantry checkconfig`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from coordinator.app import DEFAULT_PORT, Coordinator, ListenError
from coordinator.config.loader import ConfigError, load_config
from coordinator.domain.errors import GantryError
from coordinator.storage.sql import StorageError
from coordinator.web.server import HttpListenError


def checkconfig_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gantry checkconfig", description="Check a configuration file.")
    parser.add_argument("config", help="the configuration file (e.g. master.py)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        for p in exc.problems:
            print(f"{p}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.config}", file=sys.stderr)
        return 1
    print(
        f"{args.config} is valid: {len(cfg.workers)} worker(s), {len(cfg.builders)} builder(s), "
        f"{len(cfg.schedulers)} scheduler(s)"
    )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gantry coordinator", description="Run the Gantry coordinator.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the coordinator in the foreground")
    start.add_argument("--config", required=True, help="configuration file (master.py)")
    start.add_argument("--data-dir", default="gantry-data", help="data directory (default ./gantry-data)")
    start.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", help="HOST:PORT for gRPC")
    start.add_argument(
        "--db", default=os.environ.get("GANTRY_DB", ""),
        help="database URL (default: SQLite in the data dir; e.g. postgresql://host/db)",
    )
    start.add_argument("--name", default="default", help="this coordinator's id (for claims)")
    start.add_argument("--heartbeat", type=float, default=10.0, help="worker heartbeat interval, seconds")
    start.add_argument(
        "--subscriber-buffer", type=int, default=10_000,
        help="events buffered per status subscriber before a too-slow one is dropped (it resumes)",
    )
    start.add_argument(
        "--http", default=None, metavar="HOST:PORT",
        help="serve HTTP (webhooks) here, overriding the config's www port (port 0: any free one)",
    )
    start.add_argument(
        "--change-token-file", default="", metavar="FILE",
        help="require the token in FILE (first line) to submit changes (`gantry hook install --token-file`)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        for p in exc.problems:
            print(f"gantry: {p}", file=sys.stderr)
        return 1
    change_token = ""
    if args.change_token_file:
        try:
            change_token = Path(args.change_token_file).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError):
            print(f"gantry: error: cannot read a token from {args.change_token_file}", file=sys.stderr)
            return 1
    try:
        coordinator = Coordinator(
            cfg, Path(args.data_dir), args.listen, args.db or None, args.name, args.heartbeat,
            args.subscriber_buffer, args.http, change_token, config_path=Path(args.config),
        )
    except ValueError as exc:  # a bad --http
        print(f"gantry: error: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(coordinator)
    except (ListenError, StorageError, HttpListenError) as exc:
        print(f"gantry: error: {exc}", file=sys.stderr)
        return 1


async def _reconfig(coordinator: Coordinator) -> None:
    log = logging.getLogger("coordinator")
    log.info("SIGHUP: reloading the configuration")
    try:
        await coordinator.reconfig()  # logs the plan it applied
    except GantryError as exc:  # a bad file: FILE:LINE problems, nothing changed
        log.error("reconfig refused: %s", exc)
    except Exception:
        log.exception("reconfig failed")


def _run(coordinator: Coordinator) -> int:
    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reconfigs: set[asyncio.Task[None]] = set()

        def reconfig() -> None:  # SIGHUP, as Buildbot's `buildbot reconfig` sends it
            task = loop.create_task(_reconfig(coordinator))
            reconfigs.add(task)
            task.add_done_callback(reconfigs.discard)

        loop.add_signal_handler(signal.SIGHUP, reconfig)
        address_file: Path | None = None
        try:
            await coordinator.start()
            if coordinator.http_address:
                # Printed before the gRPC line, which tools wait for as "ready".
                print(f"Gantry coordinator HTTP on http://{coordinator.http_address}/", flush=True)
            print(f"Gantry coordinator listening on {coordinator.address}", flush=True)
            address_file = coordinator.data_dir / "coordinator.addr"  # clients started nearby read it
            address_file.write_text(coordinator.address + "\n")
            await stop.wait()
            logging.getLogger("coordinator").info("shutting down")
        finally:
            await coordinator.aclose()
            if address_file is not None:
                address_file.unlink(missing_ok=True)  # a stale address would mislead clients

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    return 0
