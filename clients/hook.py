"""The VCS hook submitter: `gantry hook install` puts small git hooks into a repository that
run this module (in a Mercurial repository: a `changegroup` hook in .hg/hgrc); each push
(post-receive, changegroup) or local commit (post-commit) becomes one
SubmitChanges batch with an idempotency key derived from the push, so a retry never stores a
change twice. When the coordinator cannot be reached (or refuses the token) the batch is spooled
under the repository's git directory and sent by `gantry hook flush` or by the next hook run,
which flushes the spool first. A hook never fails the push and never prints a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import clients
from clients import git_push, hg_push
from clients.client import GantryClient
from clients.connection import Tls
from clients.errors import (
    CoordinatorUnavailable,
    GantryError,
    LocalError,
    PermissionDenied,
    Timeout,
)

MARK = "# gantry-hook"
HOOKS = ("post-receive", "post-commit")
HG_HOOK = "changegroup"
SETTINGS_FILE = "gantry-hook.json"
SPOOL_DIR = "gantry-spool"
BATCH = 1000  # the coordinator's limit per SubmitChanges request
# Failures worth retrying later: the changes go to the spool instead of being dropped.
_SPOOLABLE = (CoordinatorUnavailable, Timeout, PermissionDenied)


@dataclass
class Settings:
    coordinator: str
    repository: str
    project: str = ""
    category: str = ""
    revlink: str = ""
    token_file: str = ""
    tls_ca: str = ""  # a coordinator serving TLS: the CA that signed its certificate

    def tls(self) -> Tls | None:
        return Tls(Path(self.tls_ca)) if self.tls_ca else None

    def token(self) -> str:
        if not self.token_file:
            return ""
        try:
            return Path(self.token_file).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError):
            raise LocalError(f"cannot read the token file {self.token_file}") from None


@dataclass(frozen=True)
class Repo:
    git_dir: Path
    hooks_dir: Path
    default_repository: str

    @classmethod
    def at(cls, path: Path | None) -> Repo:
        """The repository at `path` (None: the one git's environment names, as in a hook)."""
        if path is not None and not path.exists():
            raise LocalError(f"{path} does not exist")
        if path is not None and (path / ".hg").is_dir():
            return cls.hg_at(path)
        try:
            git_dir = Path(git_push.git("rev-parse", "--absolute-git-dir", cwd=path).strip())
        except git_push.GitError:
            raise LocalError(f"{path or Path.cwd()} is not a git repository") from None
        hooks = Path(git_push.git("rev-parse", "--git-path", "hooks", cwd=path).strip())
        hooks = hooks if hooks.is_absolute() else (path or Path.cwd()) / hooks
        bare = git_push.git("rev-parse", "--is-bare-repository", cwd=path).strip() == "true"
        top = git_dir if bare else Path(git_push.git("rev-parse", "--show-toplevel", cwd=path).strip())
        return cls(git_dir, hooks.resolve(), str(top))

    @classmethod
    def hg_at(cls, path: Path | None) -> Repo:
        """A Mercurial repository (None: the current directory's, as in a hook): the settings
        and the spool live in .hg, the hook in .hg/hgrc."""
        root = hg_push.root_of(path)
        if root is None:
            raise LocalError(f"{path or Path.cwd()} is not a Mercurial repository")
        return cls(root / ".hg", root / ".hg", str(root))

    @property
    def spool(self) -> Path:
        return self.git_dir / SPOOL_DIR

    def settings(self) -> Settings:
        path = self.git_dir / SETTINGS_FILE
        try:
            return Settings(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            raise LocalError(f"no Gantry hook is installed in {self.git_dir} (run `gantry hook install`)") from None


# ---------------------------------------------------------------- install


def install(repo_path: Path, settings: Settings, force: bool = False) -> list[str]:
    """Write the settings and the hooks; returns what was done, one line each."""
    repo = Repo.at(repo_path)
    if not settings.repository:
        settings.repository = repo.default_repository
    if settings.token_file:
        settings.token_file = str(Path(settings.token_file).resolve())
        settings.token()  # readable now, not first at push time
    if repo.git_dir.name == ".hg":
        hgrc = repo.git_dir / "hgrc"
        replaced = hg_push.install_hook(hgrc, _command(HG_HOOK), MARK)
        (repo.git_dir / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2) + "\n")
        return [f"{'updated' if replaced else 'installed'} the {hg_push.HOOK_NAME} hook in {hgrc}"]
    repo.hooks_dir.mkdir(parents=True, exist_ok=True)
    foreign = [n for n in HOOKS if _is_foreign(repo.hooks_dir / n)]
    if foreign and not force:
        names = ", ".join(str(repo.hooks_dir / n) for n in foreign)
        raise LocalError(
            f"{names} already exist(s) and not from Gantry; use --force to keep it as NAME.orig "
            "and run it before Gantry's hook"
        )
    done = []
    for name in HOOKS:
        path = repo.hooks_dir / name
        if name in foreign:
            path.rename(path.with_name(f"{name}.orig"))
            done.append(f"kept the existing {name} hook as {name}.orig (it runs first)")
        path.write_text(_script(name))
        path.chmod(0o755)
        done.append(f"installed {path}")
    (repo.git_dir / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2) + "\n")
    return done


def _is_foreign(path: Path) -> bool:
    try:
        return MARK not in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def _script(name: str) -> str:
    return (
        f"#!/bin/sh\n{MARK}: installed by `gantry hook install`; settings in $GIT_DIR/{SETTINGS_FILE}\n"
        f"{_command(name, 'exec ')}\n"
    )


def _command(name: str, run: str = "") -> str:
    """The shell command that runs the hook `name` (`run`: 'exec ' in a hook script)."""
    root = Path(clients.__file__).resolve().parent.parent
    return (f"GRPC_VERBOSITY=ERROR PYTHONPATH={_sh(str(root))}${{PYTHONPATH:+:$PYTHONPATH}} "
            f"{run}{_sh(sys.executable)} -m clients.hook {name}")


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------- submitting and the spool


def push_key(repository: str, what: str) -> str:
    """Same push (same ref updates) -> same key, so resubmitting it stores nothing new."""
    return "hook-" + hashlib.sha256(f"{repository}\n{what}".encode()).hexdigest()


def spool(repo: Repo, key: str, changes: Sequence[dict[str, Any]]) -> None:
    repo.spool.mkdir(exist_ok=True)
    for i in range(0, len(changes), BATCH):
        part_key = key if len(changes) <= BATCH else f"{key}-{i // BATCH}"
        name = f"{time.time_ns():020d}-{part_key}.json"
        tmp = repo.spool / f".{name}.tmp"
        tmp.write_text(json.dumps({"key": part_key, "changes": list(changes[i : i + BATCH])}))
        os.replace(tmp, repo.spool / name)  # atomic: a flush never sees half a file


def spooled(repo: Repo) -> list[Path]:
    return sorted(repo.spool.glob("*.json")) if repo.spool.is_dir() else []


async def flush(repo: Repo, client: GantryClient) -> int:
    """Send the spool, oldest first; returns the changes sent. Stops at the first failure."""
    sent = 0
    for path in spooled(repo):
        try:
            batch = json.loads(path.read_text())
        except FileNotFoundError:  # a concurrent hook run sent it
            continue
        await client.submit_changes(batch["changes"], idempotency_key=batch["key"])
        # A crash (or a concurrent flush) before this resends the file: its key makes that harmless.
        path.unlink(missing_ok=True)
        sent += len(batch["changes"])
    return sent


def complete(changes: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    for c in changes:
        c["repository"] = settings.repository
        if settings.project:
            c["project"] = settings.project
        if settings.category:
            c["category"] = settings.category
        if settings.revlink:
            c["revlink"] = _revlink(settings.revlink, c)
    return changes


def _revlink(template: str, change: dict[str, Any]) -> str:
    if "%s" in template:  # Buildbot's spelling
        return template.replace("%s", change["revision"])
    return template.format(revision=change["revision"], branch=change["branch"],
                           repository=change["repository"])


async def submit(repo: Repo, settings: Settings, key: str, changes: list[dict[str, Any]]) -> str:
    """Flush the spool, then submit; spool on a retryable failure. Returns one line to show."""
    try:
        token = settings.token()
    except LocalError as err:  # the changes are kept all the same
        spool(repo, key, changes)
        return f"gantry: {err}: {len(changes)} change(s) spooled in {repo.spool}"
    client = GantryClient(settings.coordinator, timeout=15.0, token=token, tls=settings.tls())
    try:
        flushed = await flush(repo, client)
        for i in range(0, len(changes), BATCH):
            part_key = key if len(changes) <= BATCH else f"{key}-{i // BATCH}"
            await client.submit_changes(changes[i : i + BATCH], idempotency_key=part_key)
    except _SPOOLABLE as err:
        spool(repo, key, changes)
        reason = (f"cannot reach the coordinator at {settings.coordinator}"
                  if isinstance(err, CoordinatorUnavailable) else str(err))
        total = sum(len(json.loads(p.read_text())["changes"]) for p in spooled(repo))
        return (f"gantry: {reason}: {len(changes)} change(s) spooled in {repo.spool} ({total} waiting); "
                f"`gantry hook flush --repo {repo.default_repository}` sends them")
    finally:
        await client.close()
    earlier = f" (and {flushed} spooled earlier)" if flushed else ""
    return f"gantry: {len(changes)} change(s) sent to {settings.coordinator}{earlier}"


# ---------------------------------------------------------------- entry points


async def cmd_install(args: argparse.Namespace) -> int:
    settings = Settings(
        coordinator=args.coordinator, repository=args.repository, project=args.project,
        category=args.category, revlink=args.revlink, token_file=args.token_file,
        tls_ca=args.tls_ca,
    )
    for line in install(Path(args.repo), settings, force=args.force):
        print(line)
    return 0


async def cmd_flush(args: argparse.Namespace) -> int:
    repo = Repo.at(Path(args.repo))
    settings = repo.settings()
    if args.coordinator:
        settings.coordinator = args.coordinator
    waiting = spooled(repo)
    if not waiting:
        print("gantry: nothing spooled")
        return 0
    async with GantryClient(settings.coordinator, timeout=15.0, token=settings.token(), tls=settings.tls()) as client:
        sent = await flush(repo, client)
    print(f"gantry: {sent} spooled change(s) sent to {settings.coordinator}")
    return 0


def run_hook(name: str, stdin: str) -> int:
    """What the installed hook runs. Always exits 0 unless a chained `NAME.orig` hook failed."""
    repo = Repo.hg_at(None) if name == HG_HOOK else Repo.at(None)
    status = _run_chained(repo, name, stdin)
    try:
        settings = repo.settings()
        if name == HG_HOOK:
            first, last = os.environ.get("HG_NODE", ""), os.environ.get("HG_NODE_LAST", "")
            changes = hg_push.changegroup_changes(first, last, Path(repo.default_repository)) if first else []
            what = f"hg {first} {last}"
        elif name == "post-receive":
            updates = git_push.parse_updates(stdin)
            changes = git_push.push_changes(updates)
            what = "\n".join(f"{u.old} {u.new} {u.ref}" for u in updates)
        else:
            changes = git_push.head_change()
            what = "commit " + (changes[0]["revision"] if changes else "")
        if not changes:
            return status
        complete(changes, settings)
        line = asyncio.run(submit(repo, settings, push_key(settings.repository, what), changes))
    except GantryError as err:
        line = f"gantry: {err}"
    print(line, file=sys.stderr)
    return status


def _run_chained(repo: Repo, name: str, stdin: str) -> int:
    import subprocess

    orig = repo.hooks_dir / f"{name}.orig"
    if not os.access(orig, os.X_OK):
        return 0
    return subprocess.run([str(orig)], input=stdin, text=True, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in (*HOOKS, HG_HOOK):
        print(f"usage: python -m clients.hook {{{'|'.join((*HOOKS, HG_HOOK))}}}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    stdin = "" if args[0] != "post-receive" else sys.stdin.read()
    try:
        return run_hook(args[0], stdin)
    except GantryError as err:
        print(f"gantry: {err}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
