"""`gantry coordinator start` and `gantry checkconfig`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from coordinator import bootstrap
from coordinator.api.interceptors.limits import ClientLimits
from coordinator.app import DEFAULT_PORT, Coordinator, ListenError
from coordinator.config.buildbot.migration import Migration
from coordinator.config.buildbot.native import NotWritable
from coordinator.config.loader import ConfigError, load_config_noted
from coordinator.config.objects import MasterConfig
from coordinator.config.security import WorkerSecretError
from coordinator.domain.errors import GantryError
from coordinator.exposure import ExposureError
from coordinator.storage.sql import StorageError
from coordinator.tls import TlsError, TlsFiles
from coordinator.web.server import HttpListenError


def checkconfig_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gantry checkconfig", description="Check a configuration file.")
    parser.add_argument("config", help="the configuration file (e.g. master.py, or a Buildbot master.cfg)")
    parser.add_argument(
        "--from-buildbot", action="store_true",
        help="print the migration report of a Buildbot master.cfg loaded through coordinator.config.buildbot",
    )
    parser.add_argument("--write", metavar="FILE", help="with --from-buildbot: write the Gantry-native configuration")
    args = parser.parse_args(argv)
    if args.write and not args.from_buildbot:
        parser.error("--write needs --from-buildbot")
    try:
        cfg, migration = load_config_noted(args.config)
    except ConfigError as exc:
        if args.from_buildbot and exc.migration is not None:
            print(exc.migration.report())
        for p in exc.problems:
            print(f"{p}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.config}", file=sys.stderr)
        if args.write:
            print(f"gantry: error: {args.write} not written: fix the problems first", file=sys.stderr)
        return 1
    if args.from_buildbot:
        return _migration_report(migration, args.write)
    for note in migration.notes():
        print(note)
    print(
        f"{args.config} is valid: {len(cfg.workers)} worker(s), {len(cfg.builders)} builder(s), "
        f"{len(cfg.schedulers)} scheduler(s)"
    )
    return 0


def _migration_report(migration: Migration, write: str | None) -> int:
    if not migration.is_buildbot:
        print(f"{migration.path} is a Gantry-native configuration: nothing to migrate")
        return 0
    print(migration.report())
    try:
        source = migration.native_source()
    except NotWritable as exc:
        print("gantry: error: no Gantry-native configuration: these values cannot be written as "
              f"Python; copy them across by hand: {exc}", file=sys.stderr)
        return 1
    if not write:
        print("Gantry-native configuration (write it with --write FILE):\n")
        print(source)
        return 0
    try:
        Path(write).write_text(source)
    except OSError as exc:
        print(f"gantry: error: cannot write {write}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote the Gantry-native configuration to {write}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gantry coordinator", description="Run the Gantry coordinator.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the coordinator in the foreground")
    bootstrap.add_parser(sub)
    start.add_argument("--config", required=True, help="configuration file (master.py)")
    start.add_argument("--data-dir", default="gantry-data", help="data directory (default ./gantry-data)")
    start.add_argument(
        "--listen", default=None,
        help=f"HOST:PORT for gRPC (default: the config's listen, else 127.0.0.1:{DEFAULT_PORT})",
    )
    start.add_argument(
        "--db", default=os.environ.get("GANTRY_DB", ""),
        help="database URL (default: the config's db_url, else SQLite in the data dir; e.g. postgresql://host/db)",
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
    tls = start.add_argument_group("TLS (also `tls=TLS(...)` in the config; see docs/security.md)")
    tls.add_argument("--tls-cert", default="", metavar="FILE", help="server certificate (PEM) for gRPC and HTTP")
    tls.add_argument("--tls-key", default="", metavar="FILE", help="its private key (PEM)")
    tls.add_argument("--tls-client-ca", default="", metavar="FILE",
                     help="verify client certificates against this CA (mutual TLS)")
    tls.add_argument("--tls-require-client-cert", action="store_true",
                     help="refuse clients without a certificate (needs --tls-client-ca)")
    start.add_argument("--max-streams-per-client", type=int, default=ClientLimits.max_streams, metavar="N",
                       help="open streams (Subscribe, FollowLog…) one client address may hold (default %(default)s)")
    start.add_argument("--control-rate", type=float, default=ClientLimits.control_rate, metavar="PER_SECOND",
                       help="control calls (force, stop, submit…) per second per client address (default %(default)s)")
    start.add_argument(
        "--insecure", action="store_true",
        help="serve beyond loopback without TLS/auth (only behind a TLS proxy you trust)",
    )
    args = parser.parse_args(argv)
    if args.command == "token":
        return int(args.token_handler(args))
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if (args.tls_client_ca or args.tls_require_client_cert) and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        cfg, migration = load_config_noted(args.config)
    except ConfigError as exc:
        for p in exc.problems:
            print(f"gantry: {p}", file=sys.stderr)
        return 1
    for note in migration.notes():
        logging.getLogger("coordinator.config").info("%s", note)
    change_token = ""
    if args.change_token_file:
        try:
            change_token = Path(args.change_token_file).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError):
            print(f"gantry: error: cannot read a token from {args.change_token_file}", file=sys.stderr)
            return 1
    try:
        coordinator = Coordinator(
            cfg, Path(args.data_dir), args.listen or cfg.listen or f"127.0.0.1:{DEFAULT_PORT}",
            args.db or cfg.db_url or None, args.name, args.heartbeat,
            args.subscriber_buffer, args.http, change_token, _tls_files(args, cfg), args.insecure,
            ClientLimits(control_rate=args.control_rate, control_burst=max(args.control_rate * 5, 1.0),
                         max_streams=args.max_streams_per_client),
            config_path=Path(args.config),
        )
    except ValueError as exc:  # a bad --http
        print(f"gantry: error: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(coordinator)
    except (ListenError, StorageError, HttpListenError, TlsError, ExposureError, WorkerSecretError) as exc:
        print(f"gantry: error: {exc}", file=sys.stderr)
        return 1


def _tls_files(args: argparse.Namespace, cfg: MasterConfig) -> TlsFiles | None:
    """The flags win over the config's `tls=TLS(...)` (paths relative to the config file)."""
    if args.tls_cert:
        ca = Path(args.tls_client_ca) if args.tls_client_ca else None
        return TlsFiles(Path(args.tls_cert), Path(args.tls_key), ca, args.tls_require_client_cert)
    if cfg.tls is None:
        return None
    cert, key, ca = cfg.tls.resolve(Path(args.config).resolve().parent)
    return TlsFiles(cert, key, ca, cfg.tls.require_client_cert)
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
