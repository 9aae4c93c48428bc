"""`gantry token create|list|revoke` (API tokens, needs the `token` permission; the secret is
printed once, on stdout alone, so `gantry token create ... > FILE` works) and `gantry audit`
(the audit log, needs the `audit` permission)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

import grpc
from rich import box
from rich.console import Console
from rich.table import Table

from clients import errors
from clients.connection import Connection, open_channel, resolve
from protos.gantry.v1 import auth_pb2, auth_pb2_grpc

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """'90d', '12h', '3600' (seconds) -> seconds."""
    m = re.fullmatch(r"(\d+)([smhdw]?)", text.strip())
    if not m or int(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30d, 12h or 3600, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2) or "s"]


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("token", help="create, list and revoke API tokens",
                       description="Create, list and revoke API tokens (needs the `token` permission).")
    tsub = p.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    c = tsub.add_parser("create", parents=[common], help="create a token (its secret is shown once)")
    c.add_argument("user", help="the user the token authenticates as")
    c.add_argument("--group", action="append", default=[], help="a group of that user (repeatable)")
    c.add_argument("--description", default="", help="a note to recognise the token by")
    c.add_argument("--expires", type=parse_duration, default=0, metavar="DURATION",
                   help="lifetime, e.g. 90d, 12h (default: never expires)")
    c.set_defaults(handler=cmd_create)
    ls = tsub.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    ls.add_argument("--user", default="", help="only this user's tokens")
    ls.set_defaults(handler=cmd_list)
    rv = tsub.add_parser("revoke", parents=[common], help="revoke a token by id")
    rv.add_argument("id", type=int, help="the token's id (from `gantry token list`)")
    rv.set_defaults(handler=cmd_revoke)
    au = sub.add_parser("audit", parents=[common], help="who forced, stopped, cancelled... (the audit log)",
                        description="The audit log: control actions, who, when, from where, how they ended.")
    au.add_argument("--user", default="", help="only this user's actions")
    au.add_argument("--limit", type=int, default=50, help="at most this many entries (default 50)")
    au.set_defaults(handler=cmd_audit)


def _connection(args: argparse.Namespace) -> Connection:
    flags = {k: getattr(args, k, "") for k in ("token", "tls_ca", "tls_cert", "tls_key", "tls")}
    return resolve({**flags, "coordinator": args.coordinator}, default_address=args.coordinator)


async def _call(args: argparse.Namespace, method: str, request: Any, stub: Any = None) -> Any:
    conn = _connection(args)
    channel = open_channel(conn, [])
    try:
        return await getattr((stub or auth_pb2_grpc.TokenServiceStub)(channel), method)(request, timeout=30)
    except grpc.RpcError as err:
        raise errors.from_rpc_error(err, conn.address, tls=conn.tls is not None) from None
    finally:
        await channel.close()


def _doc(t: auth_pb2.Token) -> dict[str, Any]:
    def when(ts: float) -> str | None:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None

    return {"id": t.id, "user": t.user, "groups": list(t.groups), "description": t.description,
            "created_at": when(t.created_at), "expires_at": when(t.expires_at),
            "revoked_at": when(t.revoked_at), "created_by": t.created_by, "last4": t.last4}


async def cmd_create(args: argparse.Namespace) -> int:
    req = auth_pb2.CreateTokenRequest(user=args.user, groups=args.group, description=args.description,
                                      ttl_seconds=args.expires)
    resp = await _call(args, "CreateToken", req)
    if args.json:
        print(json.dumps({"secret": resp.secret, "token": _doc(resp.token)}))
        return 0
    print(resp.secret)
    expiry = _doc(resp.token)["expires_at"] or "never"
    print(f"token {resp.token.id} for {resp.token.user} (expires: {expiry}); "
          "the secret above is shown only now", file=sys.stderr)
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    resp = await _call(args, "ListTokens", auth_pb2.ListTokensRequest(user=args.user))
    docs = [_doc(t) for t in resp.tokens]
    if args.json:
        print(json.dumps(docs))
        return 0
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("id", "user", "groups", "ends …", "state", "description"):
        table.add_column(col, overflow="fold")
    for d in docs:
        state = "revoked" if d["revoked_at"] else "active"
        table.add_row(str(d["id"]), d["user"], ",".join(d["groups"]) or "-", "…" + d["last4"],
                      state, d["description"] or "-")
    Console(highlight=False).print(table)
    return 0


async def cmd_revoke(args: argparse.Namespace) -> int:
    resp = await _call(args, "RevokeToken", auth_pb2.RevokeTokenRequest(id=args.id))
    if args.json:
        print(json.dumps(_doc(resp)))
    else:
        print(f"token {resp.id} of {resp.user} revoked")
    return 0


async def cmd_audit(args: argparse.Namespace) -> int:
    resp = await _call(args, "ListAudit", auth_pb2.ListAuditRequest(limit=args.limit, user=args.user),
                       auth_pb2_grpc.AuditServiceStub)
    docs = [{"id": e.id, "at": datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds"),
             "user": e.user, "via": e.via, "source": e.source, "action": e.action, "target": e.target,
             "outcome": e.outcome, "detail": e.detail} for e in resp.entries]
    if args.json:
        print(json.dumps(docs))
        return 0
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("when", "who", "from", "action", "target", "outcome"):
        table.add_column(col, overflow="fold")
    for d in docs:
        outcome = d["outcome"] if d["outcome"] == "ok" else f"{d['outcome']}: {d['detail']}"
        table.add_row(d["at"].replace("T", " ").removesuffix("+00:00"), d["user"] or "(anonymous)",
                      d["source"], d["action"], d["target"] or "-", outcome)
    Console(highlight=False).print(table)
    return 0
