"""Secret providers a configuration names in ``MasterConfig(secretsProviders=[...])``."""

from __future__ import annotations

import os
from pathlib import Path

from coordinator.domain.location import caller_location


class SecretInAFile:
    """Buildbot's ``SecretInAFile(dirname)``: one file per secret in `dirname`, the file name
    (without one of `suffixes`, when given) being the secret's name. With `strip` (the default)
    trailing whitespace, such as the final newline, is removed. Files are read when a build needs
    the secret, so a changed file applies to the next build."""

    def __init__(self, dirname: str | os.PathLike[str], suffixes: list[str] | None = None, strip: bool = True) -> None:
        self.defined_at = caller_location()
        self.dirname = Path(dirname).expanduser()
        self.suffixes = list(suffixes or [""])
        self.strip = strip

    def check(self) -> list[str]:
        """Problems checkconfig reports."""
        if not self.dirname.is_dir():
            return [f"SecretInAFile: the directory {str(self.dirname)!r} does not exist"]
        return []

    def get(self, name: str) -> str | None:
        if not name or "/" in name or name.startswith("."):
            return None
        for suffix in self.suffixes:
            try:
                text = (self.dirname / f"{name}{suffix}").read_text()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            return text.rstrip() if self.strip else text
        return None

    def __repr__(self) -> str:
        return f"SecretInAFile({str(self.dirname)!r})"
