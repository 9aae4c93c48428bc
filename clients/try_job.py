"""`gantry try`: send the change in your checkout to builders before pushing it.

What is sent (Buildbot's `buildbot try --vc git`): `git diff --binary MERGE_BASE` of the working
tree, where MERGE_BASE is the merge base of HEAD with the branch's upstream — so the local
commits not pushed yet and the uncommitted changes to tracked files travel together (untracked
files do not: `git add -N FILE` includes one). The build checks out MERGE_BASE of the upstream
branch and applies the patch. `--diff FILE` sends a diff you made yourself instead (git's
format, paths a/... b/...; `-` reads stdin) on `--revision` (default: the merge base)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from clients import fmt
from clients.buildset_follow import BuildsetFollower
from clients.client import GantryClient
from clients.commands import _client, _console, _emit_json, _is_matrix
from clients.errors import LocalError
from clients.live import BuildFollower, EventPump, Target
from clients.live_view import make_display

GIT_TIMEOUT = 60.0


@dataclass
class Patch:
    body: bytes
    repository: str = ""
    branch: str = ""
    revision: str = ""
    author: str = ""
    comment: str = ""


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """A git command's stdout (stripped); LocalError with git's message when it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise LocalError("git is not installed (needed to collect the change)") from None
    except subprocess.TimeoutExpired:
        raise LocalError(f"git {' '.join(args)} took longer than {GIT_TIMEOUT:g}s") from None
    if check and done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise LocalError(f"git {' '.join(args)} failed: {said}")
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else ""


def upstream_of(cwd: Path) -> tuple[str, str, str]:
    """(remote URL, upstream branch name, merge base of HEAD with it)."""
    if not git(cwd, "rev-parse", "--is-inside-work-tree", check=False):
        raise LocalError(f"{cwd} is not inside a git checkout (give --diff FILE --revision REV --branch B)")
    current = git(cwd, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    remote = git(cwd, "config", f"branch.{current}.remote", check=False) if current else ""
    merge = git(cwd, "config", f"branch.{current}.merge", check=False) if current else ""
    if not remote or not merge:
        where = f"branch {current!r}" if current else "a detached HEAD"
        raise LocalError(
            f"{where} has no upstream to diff against: set one (`git branch -u origin/main`), "
            "or give --revision REV --branch B"
        )
    upstream = git(cwd, "rev-parse", "--symbolic-full-name", "@{upstream}")
    base = git(cwd, "merge-base", "HEAD", upstream)
    url = git(cwd, "remote", "get-url", remote, check=False) if remote != "." else ""
    return url, merge.removeprefix("refs/heads/"), base


def collect(cwd: Path, args: argparse.Namespace) -> Patch:
    """The patch and where it applies, from the checkout at `cwd` and the options."""
    repository, branch, revision = "", "", ""
    if not (args.diff and args.revision and args.branch):
        repository, branch, revision = upstream_of(cwd)
    revision = args.revision or revision
    if args.diff:
        body = _read_diff(args.diff)
    else:
        body = subprocess_bytes(cwd, "diff", "--binary", "--no-color", "--no-ext-diff", revision)
    if not body.strip():
        raise LocalError(f"nothing to try: no difference from {revision[:12]} (commit or change something first)")
    comment = args.comment
    if not comment and not args.diff:
        comment = git(cwd, "log", "-1", "--format=%s", f"{revision}..HEAD", check=False)
    return Patch(body, args.repository or repository, args.branch or branch, revision, _author(cwd), comment)


def subprocess_bytes(cwd: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, check=False)
    if done.returncode != 0:
        raise LocalError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _read_diff(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as err:
        raise LocalError(f"cannot read the diff: {err}") from None


def _author(cwd: Path) -> str:
    name = git(cwd, "config", "user.name", check=False)
    email = git(cwd, "config", "user.email", check=False)
    if name and email:
        return f"{name} <{email}>"
    try:
        return name or email or getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


async def cmd_try(args: argparse.Namespace) -> int:
    patch = await asyncio.to_thread(collect, Path(args.directory), args)
    console = _console()
    async with _client(args) as client:
        single = len(args.builder) == 1 and not await _is_matrix(client, args.builder[0])
        pump = EventPump(client, builders=args.builder if single else ()) if args.wait else None
        try:
            if pump is not None:
                await pump.start()  # subscribe first, so no event of the builds is missed
            sent = await client.submit_try(
                args.builder, patch.body, author=patch.author, repository=patch.repository, branch=patch.branch,
                revision=patch.revision, comment=patch.comment, properties=dict(args.property),
                scheduler=args.scheduler,
            )
            if args.json:
                _emit_json({"event": "tried", **sent._asdict()})
            else:
                base = f"{patch.branch or 'the default branch'} at {patch.revision[:12] or 'its head'}"
                console.print(f"try job sent: buildset {sent.buildset_id}, {len(patch.body)} bytes on {base} "
                              f"for {', '.join(sorted(sent.build_request_ids))}")
            if pump is None:
                return 0
            return await _follow(client, pump, console, args, sent.buildset_id, single)
        finally:
            if pump is not None:
                await pump.aclose()


async def _follow(
    client: GantryClient, pump: EventPump, console: Console, args: argparse.Namespace, buildset_id: int, single: bool
) -> int:
    if single:
        target = Target(buildset_id=buildset_id, builders=(args.builder[0],))
        with make_display(console, args.json, f"waiting for a worker to run {args.builder[0]}") as display:
            state = await BuildFollower(client, pump, display, target).run()
        return 0 if fmt.is_good(state.result) else 1
    done = await BuildsetFollower(client, pump, console, buildset_id, args.json).run()
    return 0 if fmt.is_good(done.result) else 1


def add_parser(command: Callable[..., argparse.ArgumentParser]) -> None:
    """`gantry try` (`command` is cli.build_parser's helper)."""
    from clients.cli import parse_property

    p = command("try", cmd_try, "build your uncommitted change (and unpushed commits) on builders, before pushing")
    p.add_argument("--builder", "-b", action="append", required=True, metavar="B",
                   help="a builder listed by a TryScheduler (repeatable)")
    p.add_argument("--diff", metavar="FILE", help="send this diff (git format; '-': stdin) instead of git diff")
    p.add_argument("--revision", default="", help="base revision the diff applies to (default: the merge base "
                                                   "of HEAD with its upstream)")
    p.add_argument("--branch", default="", help="branch of that revision (default: the upstream branch)")
    p.add_argument("--repository", default="", help="repository (default: the upstream remote's URL)")
    p.add_argument("--comment", "-m", default="", help="what the change is (default: the last unpushed commit's "
                                                       "subject)")
    p.add_argument("--property", action="append", type=parse_property, default=[], metavar="K=V")
    p.add_argument("--scheduler", default="", help="the TryScheduler to use (default: the first that fits)")
    p.add_argument("--directory", "-C", default=".", metavar="DIR", help="the git checkout (default: .)")
    p.add_argument("--wait", action="store_true",
                   help="follow the builds; exit 0 when all succeed (or warn), 1 otherwise")
