"""What a git push (or a local commit) means as Gantry changes, read with git itself.

The rules are those of Buildbot's contrib/git_buildbot.py: an updated branch yields its new
commits, oldest first; a new branch only the commits no other branch already has; a deleted
branch nothing; a new tag one change for the tagged commit with the tag name as its branch; a
moved or deleted tag nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.errors import LocalError

# Field and record separators in `git log` output: bytes no commit message or path contains.
_RS, _FS = "\x1e", "\x00"
_LOG_FORMAT = "%x1e%H%x00%an <%ae>%x00%cn <%ce>%x00%ct%x00%B%x00"


class GitError(LocalError):
    pass


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str


def is_zero(rev: str) -> bool:
    return not rev.strip("0")


def git(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args], cwd=cwd, input=stdin,
            capture_output=True, text=True, encoding="utf-8", errors="replace", check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise GitError(f"git {args[0]} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc.stdout


def parse_updates(text: str) -> list[RefUpdate]:
    """The lines a post-receive hook reads: `OLD NEW REFNAME`."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(RefUpdate(*parts))
    return out


def push_changes(updates: Sequence[RefUpdate], cwd: Path | None = None) -> list[dict[str, Any]]:
    """Changes (dicts for the client) for a push, without repository/project/revlink yet."""
    changes: list[dict[str, Any]] = []
    for u in updates:
        if u.ref.startswith("refs/heads/"):
            branch = u.ref[len("refs/heads/"):]
            if is_zero(u.new):
                continue  # deleted branch: nothing to build
            if is_zero(u.old):
                # New branch: only what no other branch already has.
                others = git("for-each-ref", "--format=%(objectname)", "refs/heads/", cwd=cwd).split()
                exclude = [r for r in others if r != u.new]
            else:
                exclude = [u.old]
            revs = git("rev-list", "--reverse", "--topo-order", "--stdin", cwd=cwd,
                       stdin="\n".join([u.new, *(f"^{r}" for r in exclude)]) + "\n").split()
            changes += commit_changes(revs, branch, cwd)
        elif u.ref.startswith("refs/tags/") and is_zero(u.old) and not is_zero(u.new):
            commit = git("rev-parse", "--verify", f"{u.new}^{{commit}}", cwd=cwd).strip()
            changes += commit_changes([commit], u.ref[len("refs/tags/"):], cwd)
    return changes


def head_change(cwd: Path | None = None) -> list[dict[str, Any]]:
    """The commit just made (post-commit): one change on the current branch; none when detached."""
    try:
        branch = git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=cwd).strip()
    except GitError:
        return []
    head = git("rev-parse", "HEAD", cwd=cwd).strip()
    return commit_changes([head], branch, cwd)


def commit_changes(revs: Sequence[str], branch: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    """One change per commit, in the order given; one `git log` for all of them."""
    if not revs:
        return []
    out = git("log", "--no-walk=unsorted", "--name-only", f"--format={_LOG_FORMAT}", "--stdin",
              cwd=cwd, stdin="\n".join(revs) + "\n")
    changes = []
    for record in out.split(_RS)[1:]:
        revision, author, committer, when, comments, files = record.split(_FS, 5)
        changes.append({
            "revision": revision,
            "author": author,
            "committer": committer,
            "when": float(when),
            "comments": comments.rstrip("\n"),
            "files": [f for f in files.splitlines() if f.strip()],
            "branch": branch,
        })
    return changes
