"""Which changes a scheduler looks at (ChangeFilter) and which of those matter (fileIsImportant).

Buildbot's semantics: each ChangeFilter criterion is a value, a list of values, a compiled regex
or a callable; all given criteria must match. The `*_re` and `*_fn` keywords of Buildbot are
accepted too.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.domain.model import Change

FIELDS = ("project", "repository", "branch", "category", "codebase")

Criterion = str | Sequence[str] | re.Pattern[str] | Callable[[str], bool] | None


def _matches(criterion: Any, value: str) -> bool:
    if criterion is None:
        return True
    if isinstance(criterion, re.Pattern):
        return criterion.match(value) is not None
    if callable(criterion):
        return bool(criterion(value))
    if isinstance(criterion, str):
        return value == criterion
    return value in criterion


class ChangeFilter:
    """`ChangeFilter(branch="main")`, `ChangeFilter(branch_re=r"release/.*", project=["a", "b"])`,
    `ChangeFilter(filter_fn=lambda change: ...)`."""

    def __init__(self, filter_fn: Callable[[Change], bool] | None = None, **criteria: Any) -> None:
        self.filter_fn = filter_fn
        self.criteria: dict[str, Any] = {}
        self.errors: list[str] = []
        for key, value in criteria.items():
            name, _, kind = key.partition("_")
            if name not in FIELDS or kind not in ("", "re", "fn"):
                self.errors.append(
                    f"ChangeFilter has no criterion {key!r} (use {', '.join(FIELDS)}, with _re or _fn)"
                )
                continue
            if kind == "re" and value is not None:
                try:
                    value = re.compile(value) if isinstance(value, str) else value
                except re.error as exc:
                    self.errors.append(f"ChangeFilter {key}: bad regular expression: {exc}")
                    continue
            self.criteria[name] = value

    def matches(self, change: Change) -> bool:
        if not all(_matches(c, getattr(change, f)) for f, c in self.criteria.items()):
            return False
        return self.filter_fn is None or bool(self.filter_fn(change))


def importance(file_is_important: Any) -> Callable[[Change], bool] | None:
    """A callable from `fileIsImportant`: a function of the change, or path globs (a change is
    important if any of its files matches any glob)."""
    if file_is_important is None or callable(file_is_important):
        return file_is_important
    if isinstance(file_is_important, str):
        globs = [file_is_important]
    elif isinstance(file_is_important, list | tuple):
        globs = [str(g) for g in file_is_important]
    else:
        return None  # not a valid value: checkconfig reports it
    return lambda change: any(fnmatch.fnmatch(f, g) for f in change.files for g in globs)
