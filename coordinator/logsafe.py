"""Client-supplied text in log lines: length-limited and escaped, so a hostile header or name
can neither flood the log nor forge lines (newlines, terminal escapes)."""

from __future__ import annotations

from typing import Any

LIMIT = 200


def clip(value: Any, limit: int = LIMIT) -> str:
    """`value` as printable, escaped text of at most about `limit` characters."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        shown += f"…(+{len(text) - limit} chars)"
    return shown
