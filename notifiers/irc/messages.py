"""What the bot says about builds: Buildbot's IRC wording, optionally with mIRC colours."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.domain.model import Build
from coordinator.domain.results import Result

# Buildbot's words.results_descriptions and IrcStatusBot.results_colors (mIRC colour numbers).
DESCRIPTIONS = {
    Result.SUCCESS: "completed successfully",
    Result.WARNINGS: "completed with warnings",
    Result.FAILURE: "failed",
    Result.SKIPPED: "was skipped",
    Result.EXCEPTION: "stopped with exception",
    Result.RETRY: "has been retried",
    Result.CANCELLED: "was cancelled",
}
COLORS = {
    Result.SUCCESS: 3,  # green
    Result.WARNINGS: 8,  # yellow
    Result.FAILURE: 4,  # red
    Result.SKIPPED: 12,  # royal blue
    Result.EXCEPTION: 6,  # purple
    Result.RETRY: 11,  # light aqua
    Result.CANCELLED: 13,  # pink
}


@dataclass(frozen=True)
class Formatter:
    url: str = ""  # the web UI's base URL (MasterConfig.url); "" = no links
    use_revisions: bool = False
    show_blame_list: bool = True
    use_colors: bool = True

    def link(self, builder: str, number: int) -> str:
        return f"{self.url.rstrip('/')}/builders/{builder}/builds/{number}" if self.url else ""

    def result(self, result: Result | None) -> str:
        if result is None:
            return "is running"
        text = DESCRIPTIONS[result]
        return f"\x03{COLORS[result]:02d}{text}\x0f" if self.use_colors else text

    def subject(self, build: Build, url: str = "") -> str:
        """``Build #3 of `full``` or, with useRevisions, ``Build on `full` containing revision(s) …``."""
        if self.use_revisions:
            return f"Build on `{build.builder}` containing revision(s) {', '.join(revisions(build)) or '(none)'}"
        url = url or self.link(build.builder, build.number)
        return f"Build #{build.number} of `{build.builder}`" + (f" ({url})" if url else "")

    def started(self, build: Build, url: str = "") -> str:
        return f"{self.subject(build, url)} started."

    def finished(self, build: Build, url: str = "") -> str:
        text = f"{self.subject(build, url)} {self.result(build.result)}"
        if build.result != Result.SUCCESS and build.state_string:
            text += f": {build.state_string}"
        else:
            text += "."
        if self.show_blame_list and build.result not in (Result.SUCCESS, None):
            blame = list(dict.fromkeys(c.author for c in build.changes if c.author))
            if blame:
                text += f"  blamelist: {', '.join(blame)}"
        return text

    def last(self, build: Build | None, now: float) -> str:
        """``last build #3 failed (5 minutes ago): failed test`` (Buildbot's ``last``)."""
        if build is None or build.result is None:
            return "no build has finished yet"
        ago = fuzzy_interval(now - (build.finished_at or now))
        text = f"last build #{build.number} {self.result(build.result)} ({ago} ago)"
        if build.result != Result.SUCCESS and build.state_string:
            text += f": {build.state_string}"
        return text


def revisions(build: Build) -> list[str]:
    revs = [s.revision[:12] for s in build.sourcestamps if s.revision]
    revs += [c.revision[:12] for c in build.changes if c.revision]
    return list(dict.fromkeys(revs))


def fuzzy_interval(seconds: float) -> str:
    """Buildbot's util.fuzzyInterval, roughly: '12 seconds', '5 minutes', '3 hours', '2 days'."""
    s = max(0, int(seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if s >= size:
            n = s // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{s} second{'s' if s != 1 else ''}"
