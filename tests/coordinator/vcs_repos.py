"""Real Mercurial and Subversion repositories for the tests (Debian's mercurial, subversion)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TIMEOUT = 60
ENV = dict(os.environ, HGPLAIN="1", LC_ALL="C", HGUSER="Jane Doe <jane@example.org>")


def need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install {package})")


def run(cwd: Path, *argv: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


class HgRepo:
    def __init__(self, path: Path, clone_of: Path | None = None) -> None:
        need("hg", "mercurial")
        self.path = path
        if clone_of is None:
            run(path.parent, "hg", "init", str(path))
        else:
            run(path.parent, "hg", "clone", "-q", str(clone_of), str(path))

    def commit(self, n: int = 1, prefix: str = "c") -> list[str]:
        """n commits on the current branch, each adding one file; their node ids, oldest first."""
        for i in range(n):
            name = f"{prefix}{i}.txt"
            (self.path / name).write_text(f"{prefix} {i}\n")
            run(self.path, "hg", "commit", "-q", "--addremove", "-m", f"{prefix} commit {i}\n\nbody {i}")
        # One hg run for the ids (each hg start is a Python start-up).
        return run(self.path, "hg", "log", "-r", f"last(::., {n})", "--template", "{node}\n").split()

    def node(self, rev: str) -> str:
        return run(self.path, "hg", "log", "-r", rev, "--template", "{node}")

    def hg(self, *args: str) -> str:
        return run(self.path, "hg", *args)


class SvnRepo:
    """A repository (svnadmin create) with trunk/ and branches/, and a working copy of its root."""

    def __init__(self, tmp: Path) -> None:
        need("svnadmin", "subversion")
        self.root = tmp / "svnrepo"
        run(tmp, "svnadmin", "create", str(self.root))
        self.url = self.root.as_uri()
        self.wc = tmp / "svnwc"
        run(tmp, "svn", "checkout", "-q", self.url, str(self.wc))
        (self.wc / "trunk").mkdir()
        (self.wc / "branches").mkdir()
        run(self.wc, "svn", "add", "-q", "trunk", "branches")
        self.commit_wc("layout")

    def commit_wc(self, message: str) -> int:
        run(self.wc, "svn", "commit", "-q", "--username", "jane", "-m", message)
        run(self.wc, "svn", "update", "-q")
        return int(run(self.wc, "svn", "info", "--show-item", "revision").strip())

    def commit(self, where: str, name: str, message: str) -> int:
        """Add (or change) the file `where/name`; returns the new revision."""
        path = self.wc / where / name
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{message}\n")
        if not existed:
            run(self.wc, "svn", "add", "-q", "--parents", f"{where}/{name}")
        return self.commit_wc(message)

    def branch(self, name: str) -> int:
        run(self.wc, "svn", "copy", "-q", "trunk", f"branches/{name}")
        return self.commit_wc(f"branch {name}")
