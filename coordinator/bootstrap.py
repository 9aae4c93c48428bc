"""`gantry coordinator token create USER --data-dir DIR`: the first API token, written straight
into the database on the coordinator's host (who can read the data directory is trusted already),
for when no one holds the `token` permission yet."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from coordinator.domain.auth.tokens import Tokens
from coordinator.domain.errors import InvalidArgument
from coordinator.storage.sql import StorageError, database_url, open_storage


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="create an API token directly in the database (bootstrap)")
    tsub = p.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("create", help="create a token; its secret is printed once on stdout")
    c.add_argument("user")
    c.add_argument("--group", action="append", default=[], help="a group of that user (repeatable)")
    c.add_argument("--description", default="created on the coordinator's host")
    c.add_argument("--data-dir", default="gantry-data", help="data directory (default ./gantry-data)")
    c.add_argument("--db", default=os.environ.get("GANTRY_DB", ""), help="database URL (default: SQLite there)")
    c.set_defaults(token_handler=_create)


def _create(args: argparse.Namespace) -> int:
    async def create() -> str:
        db = await open_storage(database_url(args.db or None, Path(args.data_dir)), lambda _e: None)
        try:
            secret, record = await Tokens(db.tokens).create(
                args.user, args.group, description=args.description, created_by="(coordinator host)")
            print(f"token {record.id} for {record.user}; the secret is shown only now", file=sys.stderr)
            return secret
        finally:
            await db.aclose()

    try:
        print(asyncio.run(create()))
    except (StorageError, InvalidArgument) as exc:
        print(f"gantry: error: {exc}", file=sys.stderr)
        return 1
    return 0
