"""How values look on a page: a result as icon + text + colour class, durations, times, the
favicon. Colour is never the only signal (colour-blind users read the icon and the word)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

from coordinator.web.ui.views import seconds

ICONS = {
    "SUCCESS": ("✔", "success"), "WARNINGS": ("⚠", "warnings"), "FAILURE": ("✖", "failure"),
    "SKIPPED": ("⤼", "skipped"), "EXCEPTION": ("⚡", "exception"), "RETRY": ("↻", "retry"),
    "CANCELLED": ("⊘", "cancelled"), "RUNNING": ("▶", "running"), "PENDING": ("…", "pending"),
    "NONE": ("○", "no build"),
}
COLOURS = {"SUCCESS": "#2e9b4f", "WARNINGS": "#d49a00", "FAILURE": "#d3343a", "EXCEPTION": "#a23cc0",
           "RETRY": "#8a6d3b", "RUNNING": "#d49a00", "NONE": "#8a8f98", "SKIPPED": "#8a8f98"}


def icon(status: str) -> str:
    return ICONS.get(status, ("?", status.lower()))[0]


def label(status: str) -> str:
    return ICONS.get(status, ("?", status.lower()))[1]


def css(status: str) -> str:
    return "r-" + status.lower()


def duration(value: float | None) -> str:
    if value is None or value < 0:
        return ""
    s = int(round(value))
    if s < 60:
        return f"{value:.1f} s" if value < 10 else f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def span(value: str | None) -> str:
    """A protobuf Duration as the API's JSON writes it ("1.500s") as a page shows it ("1.5 s")."""
    if not value or not value.endswith("s"):
        return ""
    try:
        return duration(float(value[:-1]))
    except ValueError:
        return ""


def took(item: dict[str, Any]) -> str:
    """How long a build or step ran (so far, while it runs)."""
    start = seconds(item.get("started_at"))
    if start is None:
        return ""
    return duration((seconds(item.get("finished_at")) or time.time()) - start)


def when(ts: str | None) -> str:
    """A timestamp as the page shows it; app.js turns <time> elements into "3 min ago"."""
    t = seconds(ts)
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def when_unix(t: float | None) -> str:
    """A time given as seconds since the epoch (a pending request's expected start), as `when`."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def iso_unix(t: float | None) -> str:
    """The same as an RFC 3339 UTC timestamp, for <time datetime=...>."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


def favicon(status: str) -> str:
    """A circle in the colour of the page's result, as an SVG data URL."""
    colour = COLOURS.get(status, COLOURS["NONE"])
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
           f"<circle cx='8' cy='8' r='7' fill='{colour}'/></svg>")
    return "data:image/svg+xml," + quote(svg)


def unix(ts: str | None) -> str:
    t = seconds(ts)
    return "" if t is None else f"{t:.3f}"


def link(url: str) -> str:
    """A URL safe to put in href: http(s), or a path relative to the UI (a step's link to a
    triggered build is "builders/child/builds/3"); anything else (javascript:...) becomes "#"."""
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://")):
        return url
    if ":" in lowered.split("/", 1)[0] or lowered.startswith("//"):
        return "#"
    return url if url.startswith("/") else "/" + url


PARENT = re.compile(r"triggered this build \(from (.+)/(\d+)\)$")


def parent(reason: str) -> dict[str, str] | None:
    """The build whose Trigger step started this one, read from the buildset's reason (what the
    Triggerable scheduler writes there)."""
    m = PARENT.search(reason)
    return None if m is None else {"builder": m.group(1), "number": m.group(2)}


def hold(worker: dict[str, Any]) -> str:
    """A worker's hold as words, e.g. "paused: kernel upgrade" or "draining" ("" when active):
    what `gantry workers` appends to "connected"."""
    state = worker.get("state") or "active"
    if state == "active":
        return ""
    reason = worker.get("state_reason") or ""
    return f"{state}: {reason}" if reason else state


def capacity(worker: dict[str, Any]) -> str:
    """The effective capacity and why, e.g. "4 (config)", "2 (agent --max-builds; config 4)"."""
    reason = worker.get("capacity_reason") or ""
    return f"{worker.get('max_builds', 0)} ({reason})" if reason else str(worker.get("max_builds", 0))


FILTERS = {"link": link, "hold": hold, "capacity": capacity,
           "parent": parent, "icon": icon, "label": label, "css": css, "duration": duration,
           "took": took, "span": span, "when": when, "unix": unix, "when_unix": when_unix,
           "iso_unix": iso_unix}
GLOBALS = {"favicon": favicon, "RESULTS": list(ICONS)[:6]}
