"""Small text formatters shared by the CLI views: durations, sizes, times, result styles."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from clients.models import Result

RESULT_STYLES: dict[Result, str] = {
    Result.SUCCESS: "bold green",
    Result.WARNINGS: "bold orange3",
    Result.FAILURE: "bold red",
    Result.SKIPPED: "grey58",
    Result.EXCEPTION: "bold magenta",
    Result.RETRY: "grey58",
    Result.CANCELLED: "grey58",
}
RESULT_MARKS: dict[Result, str] = {
    Result.SUCCESS: "✔",
    Result.WARNINGS: "⚠",
    Result.FAILURE: "✘",
    Result.SKIPPED: "–",
    Result.EXCEPTION: "✘",
    Result.RETRY: "↻",
    Result.CANCELLED: "■",
}
RUNNING_STYLE = "cyan"


def result_text(result: Result | None, running: str = "running") -> Text:
    """The result as a coloured word ("success", "failure"...); `running` when None."""
    if result is None:
        return Text(running, style=RUNNING_STYLE)
    return Text(result.name.lower(), style=RESULT_STYLES[result])


def result_mark(result: Result) -> Text:
    return Text(RESULT_MARKS[result], style=RESULT_STYLES[result])


def is_good(result: Result | None) -> bool:
    """SUCCESS and WARNINGS pass; everything else (or no result) does not."""
    return result in (Result.SUCCESS, Result.WARNINGS)


def format_duration(seconds: float | None) -> str:
    """"0.3s", "12.4s", "3m04s", "2h05m", "3d04h"; "" when unknown."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 60:
        # Round first, so 59.96 does not print as "60.0s".
        tenths = round(seconds, 1)
        if tenths < 60:
            return f"{tenths:.1f}s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_size(size: int) -> str:
    """"512 B", "1.5 KiB", "3.2 MiB"."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_ago(when: datetime | None, now: datetime | None = None) -> str:
    """"just now", "42s ago", "5m ago", "3h ago", "2d ago"; "" when unknown."""
    if when is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = (now - when).total_seconds()
    if seconds < 1:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def format_clock(when: datetime | None, now: datetime | None = None) -> str:
    """Local time: "18:02:11" today, "2024-05-03 18:02" otherwise; "" when unknown."""
    if when is None:
        return ""
    local = when.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def elapsed_since(when: datetime | None, end: datetime | None = None) -> float | None:
    """Seconds from `when` to `end` (default: now)."""
    if when is None:
        return None
    return max(0.0, ((end or datetime.now(UTC)) - when).total_seconds())


def until(when: datetime, now: datetime | None = None) -> float:
    """Seconds from now (or `now`) to `when`; 0 once it has passed."""
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def short_revision(revision: str) -> str:
    return revision[:12]


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
