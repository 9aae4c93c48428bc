"""What a Mercurial push (a changegroup) means as Gantry changes, read with hg itself; and
the hook's lines in the repository's .hg/hgrc."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from clients.errors import LocalError

_LOG = "\x1e{node}\x1f{author}\x1f{date|hgdate}\x1f{desc}\x1f{branch}\x1f{join(files, '\x1d')}"
HOOK_NAME = "changegroup.gantry"


class HgError(LocalError):
    """An hg command failed."""


def hg(*args: str, cwd: Path | None = None) -> str:
    env = dict(os.environ, HGPLAIN="1", HGENCODING="utf-8")
    try:
        proc = subprocess.run(["hg", "--noninteractive", *args], cwd=cwd, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", env=env, check=False, timeout=120)
    except FileNotFoundError:
        raise HgError("hg is not installed (or not on PATH)") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise HgError(f"hg {args[0]} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc.stdout


def root_of(path: Path | None) -> Path | None:
    """The root of the Mercurial repository at `path` (None: the current directory), or None."""
    start = (path or Path.cwd()).resolve()
    for p in (start, *start.parents):
        if (p / ".hg").is_dir():
            return p
    return None


def changegroup_changes(first: str, last: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    """One change per changeset from `first` to `last` (the hook's HG_NODE and HG_NODE_LAST),
    oldest first, each on its named branch."""
    out = hg("log", "-r", f"{first}:{last or 'tip'}", "--template", _LOG, cwd=cwd)
    changes = []
    for record in out.split("\x1e")[1:]:
        node, author, date, desc, branch, files = record.split("\x1f", 5)
        changes.append({
            "revision": node, "author": author, "committer": author, "when": float(date.split()[0]),
            "comments": desc, "files": [f for f in files.split("\x1d") if f], "branch": branch,
        })
    return changes


def install_hook(hgrc: Path, command: str, mark: str) -> bool:
    """Put `[hooks] changegroup.gantry = COMMAND` into `hgrc` (replacing our earlier lines);
    True when it replaced an earlier installation. Other hooks stay: ours has its own name."""
    lines = hgrc.read_text().splitlines() if hgrc.exists() else []
    kept: list[str] = []
    skip = 0
    replaced = False
    for line in lines:
        if skip:
            skip -= 1
            continue
        if line.startswith(mark):
            skip, replaced = 2, True  # our marker, "[hooks]", our hook line
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [f"{mark}: installed by `gantry hook install` (settings in .hg/gantry-hook.json)",
             "[hooks]", f"{HOOK_NAME} = {command}"]
    hgrc.write_text("\n".join([*kept, *([""] if kept else []), *block]) + "\n")
    return replaced
